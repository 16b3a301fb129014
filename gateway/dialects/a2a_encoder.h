// A run as an A2A task (docs/PROTOCOLS.md, "A2A"): the JSON-RPC stream of
// `SendStreamingMessage` / `SubscribeToTask` (v1.0) and `message/stream` /
// `tasks/resubscribe` (v0.3), and the Task that `GetTask` / `tasks/get`
// answer, rendered from the same state so that both always agree.
//
// The task's id is our run id; its state is read from the run's updates
// (RunView, run_view.h):
//
//   Open()              {"task": Task}       (the state so far: SUBMITTED for
//                                             a new run, everything read
//                                             before for a resubscribe)
//   status, thinking, specialist_activated, progress, tool_call,
//   specialist_complete, synthesis, error, timeout
//                       {"statusUpdate"}     WORKING, with an agent message
//                                             that says what happened (a
//                                             progress that changes nothing,
//                                             an invisible thought and the
//                                             run's own final status are
//                                             skipped: nothing moved)
//   partial_result      {"artifactUpdate"}   artifact "result-<specialist>",
//                                             one data part per partial
//                                             result, append after the first
//   complete            {"artifactUpdate"}   artifact "answer", a text part,
//                                             lastChunk
//   Done()              {"statusUpdate"}     COMPLETED | FAILED | CANCELED
//                                             (v0.3: final:true); the
//                                             response then ends
//   Error(final)        nothing: its message goes in Done()'s status
//   Error(not final)    an SSE comment; the response ends, the client
//                       resubscribes
//
// Every event's data is one JSON-RPC response with the request's id. v0.3
// renders the same events with `kind` fields, lowercase states and `final`.
// Not thread-safe; one per stream or per answer.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_A2A_ENCODER_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_A2A_ENCODER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentstream/v1/update.pb.h"
#include "gateway/dialects/run_view.h"
#include "gateway/stream_encoder.h"

namespace agentstream::gateway::dialects {

// Which A2A the client speaks, told by the method's name (a2a_rpc.h).
enum class A2aVersion {
  kV1,   // A2A 1.0: {"task": ...} wrappers, TASK_STATE_*, ROLE_*.
  kV03,  // A2A 0.3: `kind` fields, lowercase states, `final`.
};

enum class A2aState { kSubmitted, kWorking, kCompleted, kFailed, kCanceled };
// "TASK_STATE_WORKING" (v1.0) or "working" (v0.3).
std::string A2aStateName(A2aState state, A2aVersion version);

class A2aEncoder final : public StreamEncoder {
 public:
  // `run_id`: the task's id; `context_id`: the client's contextId (or the
  // one the gateway chose); `rpc_id`: the JSON-RPC request's id, echoed in
  // every event. `resumed`: the stream follows a run it did not start (a
  // resubscribe): an unknown run is then a gap.
  A2aEncoder(std::string run_id, std::string context_id, A2aVersion version,
             Json rpc_id, bool resumed = false);

  // Folds updates in without sending anything: the state of a run read from
  // its log (a resubscribe's snapshot, GetTask, CancelTask).
  void Seed(const std::vector<agentstream::v1::Update>& updates);
  // The run's state as an A2A Task (the `Task` object, without wrapper).
  Json Task() const;
  // The run was cancelled by the caller: the Task says CANCELED even before
  // the run's log holds its end.
  void MarkCanceled() { terminal_ = A2aState::kCanceled; }
  A2aState state() const;

  std::string Open() override;
  int AppendUpdate(const agentstream::v1::Update& update,
                   std::string* out) override;
  std::string Error(std::string_view code, std::string_view message,
                    bool retryable, bool final) const override;
  std::string Heartbeat() const override;
  std::string Done(DoneStatus status) override;

 private:
  struct Artifact {
    std::string specialist;
    Json parts = Json::array();
  };
  // Applies `update` to the state; returns the status text it makes (empty:
  // none) and sets *artifact to the artifact it extended (or null).
  std::string Fold(const agentstream::v1::Update& update,
                   const Artifact** artifact, bool* answer);
  // The display name of `specialist` in the run's state.
  std::string DisplayName(const std::string& specialist) const;
  Json AgentMessage(std::string_view text, std::string_view id) const;
  Json Status(A2aState state, const std::string& text,
              std::string_view message_id) const;
  Json ArtifactJson(const Artifact& artifact) const;
  Json AnswerArtifact() const;
  Json TextPart(std::string_view text) const;
  Json DataPart(const Json& data) const;
  // One SSE event: the JSON-RPC response whose result is `kind`'s wrapper
  // (v1.0) or `payload` with its `kind` (v0.3).
  void AppendResult(std::string_view kind, Json payload, uint64_t seq,
                    std::string* out) const;

  const std::string context_id_;
  const A2aVersion version_;
  const Json rpc_id_;
  RunView view_;
  std::vector<Artifact> artifacts_;
  // The last status text sent (the Task's status message) and when the run
  // last said anything (ISO 8601; empty: never).
  std::string status_text_;
  std::string timestamp_;
  // Set by Done() or MarkCanceled(): the state the run ended in.
  std::optional<A2aState> terminal_;
  // What the end's status says: a final error (Error() is const in the
  // interface, and Done() always follows a final error), or the run's own
  // final status message.
  mutable std::string final_text_;
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_A2A_ENCODER_H_
