// The terminal client's model of one run: the gateway's updates
// (docs/GATEWAY.md "The wire") folded into what the screen shows, as the web
// page's reducer (gateway/web/reducer.js) folds them for its cards: the run's
// status, the specialists in activation order with their progress, current
// action, latest tool call and partial results, thinking, the synthesis, the
// final `complete` and how the stream ended (`done`).
//
// Pure: no I/O, no clock. Idempotent by seq like the web reducer: an update at
// or below the last applied seq is ignored, so the named copy of an `error`
// or `timeout` (sent after its `message`) and a resume's replay change
// nothing.
#ifndef AGENTSTREAM_GATEWAY_CLI_RUN_VIEW_H_
#define AGENTSTREAM_GATEWAY_CLI_RUN_VIEW_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace agentstream::cli {

struct SpecialistView {
  std::string name;
  std::string display_name;
  std::string icon;
  std::string task;
  int progress = 0;  // 0..100
  std::string current_action;
  std::string last_tool;         // The latest tool call's tool,
  std::string last_tool_detail;  // and its `sql`, or its parameters.
  int tool_calls = 0;
  int partial_results = 0;
  std::string last_partial;  // The latest partial result's title.
  std::string last_thought;
  std::string outcome;  // specialist_complete's; "" while running.
  int64_t duration_ms = 0;
  std::vector<std::string> errors;  // "code: message"
};

struct RunView {
  std::string run_id;
  std::string correlation_id;
  // idle | analyzing | delegating | synthesizing | complete | cancelled |
  // failed
  std::string status = "idle";
  std::string status_message;
  std::vector<SpecialistView> specialists;  // Activation order.
  std::string orchestrator_thought;         // The latest visible one.
  std::string synthesis;                    // The synthesis message.
  // The final `complete`: its `result` and `outcome`.
  std::optional<nlohmann::json> final_result;
  std::string outcome;
  std::string answer;               // final_result's `answer`, when a string.
  std::vector<std::string> errors;  // Run-level errors, "code: message".
  std::vector<std::string> timeouts;
  std::string done;  // done's status: "" until it came.
  int64_t last_seq = 0;
  int resumes = 0;  // `connected` with status "resumed".
  // A retryable gateway error the stream does not survive (the client
  // reconnects): its message, until the next `connected`.
  std::string notice;
};

// Folds one update (the parsed JSON of an event's data: an update with
// `type`, or the gateway's `connected`, `done`, `error`, `heartbeat`) into
// `view`. A `batch` is folded update by update. Malformed input changes
// nothing. Returns whether anything changed.
bool Reduce(RunView& view, const nlohmann::json& update);

// True for a gateway error the stream ends after without `done`, and that a
// client resumes from (docs/GATEWAY.md "The wire": `slow_consumer`, retryable
// `unavailable`); a specialist's error never is. As session.js decides.
bool IsReconnectError(const nlohmann::json& update);

// Clamps a progress to 0..100 (rounded).
int ClampProgress(double progress);

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_RUN_VIEW_H_
