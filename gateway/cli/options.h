// The terminal client's command line (docs/CLIENT.md "Terminal client"):
// every option with its default, the --help text and the exit codes.
#ifndef AGENTSTREAM_GATEWAY_CLI_OPTIONS_H_
#define AGENTSTREAM_GATEWAY_CLI_OPTIONS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentstream::cli {

// Exit codes.
inline constexpr int kExitComplete = 0;     // The run completed.
inline constexpr int kExitFailed = 1;       // Failed, or the stream was lost.
inline constexpr int kExitUsage = 2;        // Bad command line.
inline constexpr int kExitCancelled = 130;  // Cancelled (128 + SIGINT).

struct CliOptions {
  std::string message;
  // The gateway's base URL: run.sh's (and the gateway's) default port.
  std::string gateway = "http://127.0.0.1:8080";
  std::vector<std::string> specialists;  // Empty: the planner chooses.
  std::string token;  // Sent as `Authorization: Bearer`; empty: none.
  bool json = false;
  bool help = false;
  // Reconnects in a row without an update before the client gives up.
  int max_reconnects = 8;
  // Reconnect delays: the server's `retry:` (this until it sent one),
  // doubled per attempt in a row, at most max_retry_delay.
  absl::Duration retry_delay = absl::Seconds(2);
  absl::Duration max_retry_delay = absl::Seconds(30);
  // How long a cancelled run may take to end its stream (`done cancelled`)
  // before the client exits anyway.
  absl::Duration cancel_wait = absl::Seconds(10);
  // A stream that sends no byte for this long (the gateway's heartbeats
  // come every 15 s by default) is taken as dropped and resumed.
  absl::Duration read_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(5);
};

// Parses argv (without argv[0]). `getenv` reads AGENTSTREAM_TOKEN and
// AGENTSTREAM_GATEWAY (the flags win). An error's message is for the user
// (exit kExitUsage).
absl::StatusOr<CliOptions> ParseArgs(
    const std::vector<std::string>& args,
    const std::function<std::optional<std::string>(const char*)>& getenv);

// The --help text.
std::string HelpText();

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_OPTIONS_H_
