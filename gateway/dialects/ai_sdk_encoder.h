// A run as the AI SDK's UI message stream (the `ai` package's protocol,
// `x-vercel-ai-ui-message-stream: v1`; docs/PROTOCOLS.md, "AI SDK UI
// message stream"): one assistant message whose parts the client's
// readUIMessageStream / useChat build from JSON chunks, one per SSE event:
//
//   start {messageId: "msg_<run id>", messageMetadata: {runId}}, start-step
//   data-status      id "status"     status, statusMessage, synthesis,
//                                    outcome, errors, timeouts (RunView)
//   data-specialist  id <name>       the specialist's RunView entry
//   data-result      id <name>       its partial results, merged
//   reasoning-start/-delta/-end  id "r<seq>"   a visible `thinking`
//   tool-input-available   toolCallId "<run id>-<seq>", toolName, input
//   tool-output-available  the same id; output: the specialist's next
//                          partial result (or, when it completes or the
//                          run ends first, {"result": null, "reason"})
//   text-start/-delta/-end  id "t<seq>"        the answer (`complete`)
//   finish-step, finish {finishReason: "stop" | "error"}, [DONE]
//   abort {reason}, [DONE]                     a cancelled run
//   error {errorText}                          a final error, before finish
//
// A data part is sent when its data differs from what the client last got,
// so the client (which replaces a data part with the same type and id in
// place) holds one part per specialist, kept current. Only these types are
// sent: the client fails its stream on a type it does not know.
//
// `id:` fields carry our resume point (stream_encoder.h): the events of
// update N carry `<run id>:<N-1>`, its last one `<run id>:<N>`; the opening
// and the ending carry the last seq read. A stream that continues after a
// point (Last-Event-ID) sends no `start`: the updates up to the point are
// read into the state without a byte sent, then the stream goes on, so the
// client's message gets every part once. A non-final error (the stream ends
// for the client to reconnect) is an SSE comment: the message stays open.
// Not thread-safe; one per stream.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_AI_SDK_ENCODER_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_AI_SDK_ENCODER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/dialects/run_view.h"
#include "gateway/stream_encoder.h"

namespace agentstream::gateway::dialects {

// The header that names the protocol (the SDK's own server sends it).
inline constexpr char kAiSdkStreamHeader[] = "x-vercel-ai-ui-message-stream";

class AiSdkEncoder final : public StreamEncoder {
 public:
  // What the handler learns of the stream (for the chat index).
  struct Hooks {
    // The stream started (Open).
    std::function<void()> opened;
    // The ending (finish or abort) was written, up to `final_seq`.
    std::function<void(uint64_t final_seq)> finished;
  };

  // `resume_after`: the stream continues after that seq (no `start`).
  AiSdkEncoder(std::string run_id,
               std::optional<uint64_t> resume_after = std::nullopt,
               Hooks hooks = {});

  // "msg_<run id>": the same for every stream of the run, so a replay
  // rebuilds the same message.
  static std::string MessageId(std::string_view run_id);

  void AddHeaders(http::HttpHeaders* headers) const override;
  std::string Open() override;
  int AppendUpdate(const agentstream::v1::Update& update,
                   std::string* out) override;
  std::string Error(std::string_view code, std::string_view message,
                    bool retryable, bool final) const override;
  std::string Heartbeat() const override;
  std::string Done(DoneStatus status) override;

 private:
  // The chunks of one update, before their ids are known.
  using Chunks = std::vector<Json>;
  // Data parts whose data changed since last sent.
  void Status(Chunks* chunks);
  void SpecialistPart(const std::string& name, Chunks* chunks);
  // The open tool calls of `name` (every one when empty) get an output
  // that says why none came.
  void CloseTools(const std::string& name, std::string_view reason,
                  Chunks* chunks);
  // Writes `chunks` as events: all but the last with `<seq-1>`.
  int Write(const Chunks& chunks, uint64_t seq, std::string* out) const;

  const std::optional<uint64_t> resume_after_;
  Hooks hooks_;
  RunView view_;
  // What the client holds of each data part ("status", "specialist:<name>",
  // "result:<name>"), as sent (or, before the resume point, as it was).
  std::map<std::string, Json> sent_;
  // Tool calls without an output yet, per specialist, oldest first.
  std::map<std::string, std::deque<std::string>> open_tools_;
  agentstream::v1::Outcome outcome_ = agentstream::v1::OUTCOME_UNSPECIFIED;
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_AI_SDK_ENCODER_H_
