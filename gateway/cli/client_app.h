// The terminal client's run: starts the question through the gateway,
// follows it across dropped connections (stream_follower.h), shows it
// (screen.h, or --json lines) and handles Ctrl-C (docs/CLIENT.md "Terminal
// client").
#ifndef AGENTSTREAM_GATEWAY_CLI_CLIENT_APP_H_
#define AGENTSTREAM_GATEWAY_CLI_CLIENT_APP_H_

#include "gateway/cli/options.h"

namespace agentstream::cli {

// Runs the question to its end; returns the exit code (options.h).
int RunClient(const CliOptions& options);

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_CLIENT_APP_H_
