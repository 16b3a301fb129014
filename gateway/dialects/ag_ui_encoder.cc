#include "gateway/dialects/ag_ui_encoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/update_json.h"
#include "gateway/dialects/ag_ui_proto.h"
#include "gateway/sse_encoder.h"

namespace agentstream::gateway::dialects {
namespace {

using agentstream::v1::Update;

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The q-value of `type` in an Accept header (0 when absent; 1 when named
// without one).
double QualityOf(std::string_view accept, std::string_view type) {
  // absl's string_view is not std's in Debian's build.
  const absl::string_view wanted(type.data(), type.size());
  for (absl::string_view range :
       absl::StrSplit(absl::string_view(accept.data(), accept.size()), ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(range, ';');
    if (absl::StripAsciiWhitespace(parts[0]) != wanted) continue;
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
      if (absl::StartsWith(p, "q=") && !absl::SimpleAtod(p.substr(2), &q)) {
        q = 0;
      }
    }
    return q;
  }
  return 0;
}

}  // namespace

AgUiFraming AgUiFramingFor(std::string_view accept) {
  const double proto = QualityOf(accept, kAgUiProtoMediaType);
  return proto > 0 && proto > QualityOf(accept, "text/event-stream")
             ? AgUiFraming::kProto
             : AgUiFraming::kSse;
}

AgUiEncoder::AgUiEncoder(std::string request_id, AgUiRunNames names,
                         AgUiFraming framing,
                         std::optional<uint64_t> resume_after)
    : StreamEncoder(request_id, resume_after.has_value(),
                    resume_after.value_or(0)),
      view_(request_id),
      names_(std::move(names)),
      framing_(framing),
      resume_after_(resume_after.value_or(0)),
      replaying_(resume_after.value_or(0) > 0) {}

void AgUiEncoder::AddHeaders(http::HttpHeaders* headers) const {
  if (framing_ == AgUiFraming::kProto) {
    // Compared by AG-UI's client as it is: no parameters.
    headers->Add("Content-Type", std::string(kAgUiProtoMediaType));
  } else {
    headers->Add("Content-Type", "text/event-stream; charset=utf-8");
  }
}

void AgUiEncoder::Queue(Json event) { queued_.push_back(std::move(event)); }

std::string AgUiEncoder::Frame(Json& event, const std::string& id) const {
  if (framing_ == AgUiFraming::kProto) return AgUiProtoFrame(event, id);
  // AG-UI's client reads no SSE id: the resume point also rides in the
  // event's metadata, where its subscribers see it.
  event["metadata"] = Json{{"lastEventId", id}};
  std::string out;
  AppendEvent(id, "", Dump(event), &out);
  return out;
}

int AgUiEncoder::Flush(uint64_t seq, bool of_update, std::string* out) {
  const int n = static_cast<int>(queued_.size());
  for (int i = 0; i < n; ++i) {
    const uint64_t at = of_update && i + 1 < n && seq > 0 ? seq - 1 : seq;
    out->append(Frame(queued_[i], EventId(at)));
  }
  queued_.clear();
  return n;
}

void AgUiEncoder::QueuePreamble() {
  Queue(Json{{"type", "RUN_STARTED"},
             {"threadId", names_.thread_id},
             {"runId", names_.run_id}});
  Queue(Json{{"type", "STATE_SNAPSHOT"}, {"snapshot", view_.state()}});
  for (const std::string& step : open_steps_) {
    Queue(Json{{"type", "STEP_STARTED"}, {"stepName", step}});
  }
}

std::string AgUiEncoder::Open() {
  std::string out;
  if (replaying_) return out;  // The preamble comes at the client's point.
  QueuePreamble();
  Flush(last_seq(), /*of_update=*/false, &out);
  return out;
}

void AgUiEncoder::Render(const Update& update, const ViewChange& change) {
  const std::string name = SpecialistOf(update);
  const std::string at = absl::StrCat(request_id(), "-", update.seq());
  auto delta = [&] {
    if (!change.patch.empty()) {
      Queue(Json{{"type", "STATE_DELTA"}, {"delta", change.patch}});
    }
  };
  auto start_step = [&] {
    if (name.empty() || std::find(open_steps_.begin(), open_steps_.end(),
                                  name) != open_steps_.end()) {
      return;
    }
    // A specialist seen for the first time (by whatever update) is a step.
    if (view_.specialist(name) == nullptr) return;
    open_steps_.push_back(name);
    Queue(Json{{"type", "STEP_STARTED"}, {"stepName", name}});
  };
  switch (update.kind_case()) {
    case Update::kThinking: {
      const std::string id = absl::StrCat("reasoning-", at);
      Queue(Json{{"type", "REASONING_START"}, {"messageId", id}});
      Queue(Json{{"type", "REASONING_MESSAGE_START"},
                 {"messageId", id},
                 {"role", "reasoning"}});
      Queue(Json{{"type", "REASONING_MESSAGE_CONTENT"},
                 {"messageId", id},
                 {"delta", update.thinking().thought()}});
      Queue(Json{{"type", "REASONING_MESSAGE_END"}, {"messageId", id}});
      Queue(Json{{"type", "REASONING_END"}, {"messageId", id}});
      return;
    }
    case Update::kToolCall: {
      start_step();
      const std::string id = absl::StrCat("tool-", at);
      Queue(Json{{"type", "TOOL_CALL_START"},
                 {"toolCallId", id},
                 {"toolCallName", update.tool_call().tool()}});
      Queue(Json{{"type", "TOOL_CALL_ARGS"},
                 {"toolCallId", id},
                 {"delta",
                  StructToJson(update.tool_call().parameters())
                      .dump(-1, ' ', false, Json::error_handler_t::replace)}});
      Queue(Json{{"type", "TOOL_CALL_END"}, {"toolCallId", id}});
      if (!name.empty()) awaiting_result_[name] = id;
      delta();
      return;
    }
    case Update::kPartialResult: {
      start_step();
      if (auto it = awaiting_result_.find(name); it != awaiting_result_.end()) {
        Queue(Json{{"type", "TOOL_CALL_RESULT"},
                   {"messageId", absl::StrCat("tool-result-", at)},
                   {"toolCallId", it->second},
                   {"content",
                    StructToJson(update.partial_result().result())
                        .dump(-1, ' ', false, Json::error_handler_t::replace)},
                   {"role", "tool"}});
        awaiting_result_.erase(it);
      }
      delta();
      return;
    }
    case Update::kSpecialistComplete: {
      delta();
      awaiting_result_.erase(name);
      auto it = std::find(open_steps_.begin(), open_steps_.end(), name);
      if (it != open_steps_.end()) {
        open_steps_.erase(it);
        Queue(Json{{"type", "STEP_FINISHED"}, {"stepName", name}});
      }
      return;
    }
    case Update::kComplete: {
      delta();
      result_ = Json::parse(StructToJson(update.complete().result()).dump());
      const std::string id = absl::StrCat("answer-", request_id());
      const Json& answer = view_.state()["answer"];
      Queue(Json{{"type", "TEXT_MESSAGE_START"},
                 {"messageId", id},
                 {"role", "assistant"}});
      if (answer.is_string() && !answer.get_ref<const std::string&>().empty()) {
        Queue(Json{{"type", "TEXT_MESSAGE_CONTENT"},
                   {"messageId", id},
                   {"delta", answer}});
      }
      Queue(Json{{"type", "TEXT_MESSAGE_END"}, {"messageId", id}});
      return;
    }
    default:
      start_step();
      delta();
      return;
  }
}

int AgUiEncoder::AppendUpdate(const Update& update, std::string* out) {
  Observe(update);
  if (ended_) return 0;
  const ViewChange change = view_.Apply(update);
  int events = 0;
  if (replaying_) {
    if (update.seq() <= resume_after_) {
      Render(update, change);
      queued_.clear();  // Folded into the state; the client has them.
      if (update.seq() < resume_after_) return 0;
      replaying_ = false;
      QueuePreamble();
      return Flush(update.seq(), /*of_update=*/false, out);
    }
    // The log went past the client's point without reaching it: the
    // preamble comes before this update's events.
    replaying_ = false;
    QueuePreamble();
    events = Flush(resume_after_, /*of_update=*/false, out);
  }
  Render(update, change);
  return events + Flush(update.seq(), /*of_update=*/true, out);
}

void AgUiEncoder::QueueCloseSteps() {
  for (const std::string& step : open_steps_) {
    Queue(Json{{"type", "STEP_FINISHED"}, {"stepName", step}});
  }
  open_steps_.clear();
}

std::string AgUiEncoder::Error(std::string_view code, std::string_view message,
                               bool /*retryable*/, bool final) const {
  if (final) {
    if (!final_error_) {
      final_error_.emplace(std::string(code), std::string(message));
    }
    return "";
  }
  // The stream ends for the client to resume: nothing the client would
  // read as the run's end.
  if (framing_ == AgUiFraming::kProto) return "";
  return EncodeComment(
      absl::StrCat(std::string(code), ": ", std::string(message)));
}

std::string AgUiEncoder::Heartbeat() const {
  if (framing_ == AgUiFraming::kProto) return "";  // No comments in protobuf.
  return EncodeHeartbeat(HeartbeatStyle::kComment, "");
}

std::string AgUiEncoder::Done(DoneStatus status) {
  std::string out;
  if (ended_) return out;
  ended_ = true;
  if (replaying_) {
    // The run ended at or before the client's point: the client sees its
    // state, then its end.
    replaying_ = false;
    QueuePreamble();
  }
  const std::string outcome = view_.state()["outcome"].is_string()
                                  ? view_.state()["outcome"].get<std::string>()
                                  : "";
  if (final_error_) {
    Queue(Json{{"type", "RUN_ERROR"},
               {"message", final_error_->second},
               {"code", final_error_->first}});
  } else if (status == DoneStatus::kCancelled) {
    QueueCloseSteps();
    Queue(Json{{"type", "RUN_FINISHED"},
               {"threadId", names_.thread_id},
               {"runId", names_.run_id},
               {"result", result_},
               {"outcome", Json{{"type", "cancelled"}}}});
  } else if (status == DoneStatus::kComplete &&
             (outcome == "ok" || outcome == "partial")) {
    QueueCloseSteps();
    Queue(Json{{"type", "RUN_FINISHED"},
               {"threadId", names_.thread_id},
               {"runId", names_.run_id},
               {"result", result_},
               {"outcome", Json{{"type", "success"}}}});
  } else {
    Queue(Json{{"type", "RUN_ERROR"},
               {"message", outcome.empty()
                               ? std::string("the run ended without an answer")
                               : absl::StrCat("the run ended ", outcome)},
               {"code", outcome.empty() ? std::string("failed") : outcome}});
  }
  Flush(last_seq(), /*of_update=*/false, &out);
  return out;
}

}  // namespace agentstream::gateway::dialects
