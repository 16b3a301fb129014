// A run as AG-UI events (docs/PROTOCOLS.md, "AG-UI"): what POST /api/ag-ui
// streams to an AG-UI client (@ag-ui/client's HttpAgent), from the same
// updates as our own wire.
//
//   RUN_STARTED, STATE_SNAPSHOT                    the stream's opening
//   status, progress, synthesis, partial_result,   STATE_DELTA (JSON Patch of
//     specialist_complete, error, timeout            the run's state,
//     run_view.h)
//   specialist_activated                           STEP_STARTED (stepName: the
//                                                    specialist) + STATE_DELTA
//   specialist_complete                            STATE_DELTA + STEP_FINISHED
//   thinking                                       REASONING_START,
//                                                    REASONING_MESSAGE_START/
//                                                    CONTENT/END, REASONING_END
//   tool_call                                      TOOL_CALL_START/ARGS/END
//   the same specialist's next partial_result      TOOL_CALL_RESULT (+ its
//                                                    STATE_DELTA)
//   complete                                       STATE_DELTA, TEXT_MESSAGE_
//                                                    START/CONTENT/END (answer)
//   the end: ok or partial                         RUN_FINISHED (result: the
//                                                    complete's result)
//            cancelled                             RUN_FINISHED (outcome
//                                                    cancelled)
//            failed, timed out, gateway errors     RUN_ERROR
//
// Every step is finished before RUN_FINISHED (AG-UI's verifier refuses one
// with a step open). Events carry our `id:` (stream_encoder.h): a resume
// (POST again with Last-Event-ID) attaches from the run's start, folds the
// updates up to the client's point into the state without sending them, and
// then sends RUN_STARTED, a STATE_SNAPSHOT of the state at that point and a
// STEP_STARTED for each step still open, and goes on: a stream the
// verifier accepts on its own, whose final state is the uncut run's.
//
// AG-UI's client reads no SSE id, so the resume point also rides in every
// event's `metadata.lastEventId`, where its subscribers see it.
//
// Framing: SSE (`data: <json>`, LF only), or AG-UI's protobuf framing (each
// event a 4-byte big-endian length and its bytes, proto/ag_ui/events.proto)
// when the client's Accept asks for application/vnd.ag-ui.event+proto. Not
// thread-safe; one per stream.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_ENCODER_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_ENCODER_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/dialects/run_view.h"
#include "gateway/stream_encoder.h"

namespace agentstream::gateway::dialects {

inline constexpr std::string_view kAgUiProtoMediaType =
    "application/vnd.ag-ui.event+proto";

enum class AgUiFraming { kSse, kProto };

// The framing an Accept header asks for: protobuf when it names AG-UI's
// media type with a q-value above text/event-stream's (absent: 0).
AgUiFraming AgUiFramingFor(std::string_view accept);

// The client's names for the run (RUN_STARTED's threadId and runId).
struct AgUiRunNames {
  std::string thread_id;
  std::string run_id;
};

class AgUiEncoder final : public StreamEncoder {
 public:
  // `request_id`: our run id. `resume_after`: the client resumes after that
  // seq; the stream must then be attached from seq 0.
  AgUiEncoder(std::string request_id, AgUiRunNames names, AgUiFraming framing,
              std::optional<uint64_t> resume_after = std::nullopt);

  void AddHeaders(http::HttpHeaders* headers) const override;
  std::string Open() override;
  int AppendUpdate(const agentstream::v1::Update& update,
                   std::string* out) override;
  // A final error is sent as RUN_ERROR by Done(); one the client resumes
  // from is an SSE comment (nothing in protobuf framing).
  std::string Error(std::string_view code, std::string_view message,
                    bool retryable, bool final) const override;
  std::string Heartbeat() const override;
  std::string Done(DoneStatus status) override;

  const RunView& view() const { return view_; }

 private:
  void Queue(Json event);
  // Writes the queued events. `of_update`: they are update `seq`'s, so all
  // but the last carry `<seq - 1>` as their id and the last `<seq>`;
  // otherwise (an opening, an ending) all carry `<seq>`. Returns how many.
  int Flush(uint64_t seq, bool of_update, std::string* out);
  void QueuePreamble();
  // The events of `update` (queued), and what they leave open.
  void Render(const agentstream::v1::Update& update, const ViewChange& change);
  void QueueCloseSteps();
  std::string Frame(Json& event, const std::string& id) const;

  RunView view_;
  const AgUiRunNames names_;
  const AgUiFraming framing_;
  const uint64_t resume_after_;
  bool replaying_;
  bool ended_ = false;
  // Steps open, in the order they started.
  std::vector<std::string> open_steps_;
  // A specialist's tool call whose result (its next partial result) has not
  // come yet: specialist -> toolCallId.
  std::map<std::string, std::string> awaiting_result_;
  Json result_;  // The complete's result.
  std::vector<Json> queued_;
  // A final error from the gateway, sent as RUN_ERROR by Done().
  mutable std::optional<std::pair<std::string, std::string>> final_error_;
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_ENCODER_H_
