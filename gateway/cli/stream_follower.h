// Following one run across connections, without sockets: the terminal
// client's HTTP side (gateway/cli/gateway_http.h) hands it each response's
// status and bytes, and it parses the events (common/sse_parser.h), folds
// them into the RunView, remembers the Last-Event-ID, and decides what comes
// after a connection ends (docs/GATEWAY.md "The wire": only `done` ends a
// stream for good; a stream that ends without it is resumed with
// Last-Event-ID, after the server's `retry:`).
#ifndef AGENTSTREAM_GATEWAY_CLI_STREAM_FOLLOWER_H_
#define AGENTSTREAM_GATEWAY_CLI_STREAM_FOLLOWER_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "common/sse_parser.h"
#include "gateway/cli/options.h"
#include "gateway/cli/run_view.h"
#include "nlohmann/json.hpp"

namespace agentstream::cli {

struct NextStep {
  enum class Kind {
    kFinished,   // `done` came (or a resume found nothing more: 204).
    kReconnect,  // Resume after `delay`.
    kGiveUp,     // Cannot go on; `reason` says why.
  };
  Kind kind = Kind::kFinished;
  absl::Duration delay;
  int attempt = 0;  // Of kReconnect: 1 for the first in a row.
  std::string reason;
};

// Not thread-safe.
class StreamFollower final {
 public:
  explicit StreamFollower(const CliOptions& options);

  // A new connection's response: its HTTP status (0: none), the
  // `X-Request-Id` (on a stream: the run's id), and `Retry-After` in
  // seconds when it had one. Each connection is a new event stream.
  void OnResponse(int status, std::string_view request_id,
                  std::optional<int> retry_after_s);
  // Bytes of the response body. `on_update` is called with every update
  // Reduce folded in (the parsed data, and the data as it came), not with
  // heartbeats or repeats.
  void OnBytes(std::string_view bytes,
               const std::function<void(const nlohmann::json& update,
                                        std::string_view raw)>& on_update);
  // The connection ended; `transport_error` is empty when the server closed
  // it. `body` is a non-stream answer's body (an error's JSON).
  NextStep OnConnectionEnd(std::string_view transport_error,
                           std::string_view body = "");

  // The resume request: GET this path with `Last-Event-ID: last_event_id()`.
  std::string ResumePath() const;
  const std::string& last_event_id() const { return last_event_id_; }
  const RunView& view() const { return view_; }
  // The exit code the run's end stands for (options.h).
  int ExitCode() const;

 private:
  const CliOptions options_;
  RunView view_;
  SseStreamParser parser_;
  std::string last_event_id_;
  int status_ = 0;
  std::optional<int> retry_after_s_;
  std::optional<int> server_retry_ms_;
  int64_t seq_at_connect_ = 0;
  int failures_ = 0;  // Connections in a row that brought nothing new.
};

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_STREAM_FOLLOWER_H_
