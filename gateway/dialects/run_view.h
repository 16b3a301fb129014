// A run's state as the updates build it, for the dialects that carry state
// rather than events (AG-UI's STATE_SNAPSHOT/STATE_DELTA, the AI SDK's data
// parts, A2A's task status; docs/PROTOCOLS.md, "The run's state"). It is the
// web client's reducer (gateway/web/reducer.js) in C++, reduced to what a
// client of another ecosystem shows without knowing our types:
//
//   {"runId": "run_...", "status": "delegating", "statusMessage": "...",
//    "specialists": {"DataAnalyst": {"name", "displayName", "icon", "task",
//                    "progress", "currentAction", "toolCalls", "outcome",
//                    "durationMs"}, ...},
//    "order": ["DataAnalyst", ...],          (activation order)
//    "results": {"DataAnalyst": {...every partial_result merged}, ...},
//    "synthesis": null | {"message", "complete", "pending"},
//    "answer": null | "...", "outcome": null | "ok" | ...,
//    "errors": [{"specialist", "code", "message", "retryable"}],
//    "timeouts": [{"specialist", "message", "action"}]}
//
// Apply() changes it and says how, as RFC 6902 JSON Patch operations that
// turn the state before into the state after (AG-UI's STATE_DELTA), and as
// the parts it touched (the AI SDK's data parts). Not thread-safe; one per
// stream. Pure (no I/O, no clock).
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_RUN_VIEW_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_RUN_VIEW_H_

#include <string>
#include <string_view>
#include <vector>

#include "agentstream/v1/update.pb.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::dialects {

using Json = nlohmann::ordered_json;

// The name the orchestrator uses for itself in `thinking` updates.
inline constexpr std::string_view kOrchestratorAgent = "Orchestrator";

// What one update changed.
struct ViewChange {
  // JSON Patch operations (an array), empty when nothing changed.
  Json patch = Json::array();
  bool status = false;     // status / statusMessage / outcome / answer.
  std::string specialist;  // Its entry changed (empty: none).
  bool result = false;     // results[specialist] changed.
  bool synthesis = false;
  bool answer = false;  // `complete` came.
};

class RunView {
 public:
  // `run_id`: our id of the run (what a client passes to our own
  // endpoints, e.g. to resume or cancel it).
  explicit RunView(std::string run_id = "");

  // Folds `update` in. Updates at or below the last seq applied are
  // ignored (a replay never changes anything twice).
  ViewChange Apply(const agentstream::v1::Update& update);

  const Json& state() const { return state_; }
  uint64_t last_seq() const { return last_seq_; }
  // The specialist's entry (null when unknown), and its merged results
  // (null when none).
  const Json* specialist(std::string_view name) const;
  const Json* result(std::string_view name) const;
  // The specialists in activation order.
  const Json& order() const { return state_["order"]; }
  // Whether the run reached a final status (complete, cancelled, failed).
  bool ended() const;

  // "/a/b~1c": a JSON Pointer from its unescaped tokens (RFC 6901).
  static std::string Pointer(std::initializer_list<std::string_view> tokens);

 private:
  // Sets state_[tokens...] = value (the parent must exist), recording an
  // `add` (new member) or `replace` (existing) operation; no operation when
  // the value is unchanged.
  void Put(std::initializer_list<std::string_view> tokens, Json value,
           ViewChange* change);
  // Appends to the array at `tokens`.
  void Append(std::initializer_list<std::string_view> tokens, Json value,
              ViewChange* change);
  // The specialist's entry, added (with its place in `order`) when new.
  Json& Specialist(const std::string& name, ViewChange* change);

  Json state_;
  uint64_t last_seq_ = 0;
};

// The specialist an update is about: the envelope's `specialist`, or for
// `thinking` its agent when that is not the orchestrator ("" for none).
std::string SpecialistOf(const agentstream::v1::Update& update);

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_RUN_VIEW_H_
