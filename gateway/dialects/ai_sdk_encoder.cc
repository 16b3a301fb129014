#include "gateway/dialects/ai_sdk_encoder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/update_json.h"
#include "gateway/sse_encoder.h"

namespace agentstream::gateway::dialects {
namespace {

using agentstream::v1::Update;

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Our name for the run's id in metadata (the AI SDK's providerMetadata is
// keyed by provider).
constexpr char kProvider[] = "agentstream";

}  // namespace

AiSdkEncoder::AiSdkEncoder(std::string run_id,
                           std::optional<uint64_t> resume_after, Hooks hooks)
    : StreamEncoder(run_id, resume_after.has_value(), resume_after.value_or(0)),
      resume_after_(resume_after),
      hooks_(std::move(hooks)),
      view_(run_id) {}

std::string AiSdkEncoder::MessageId(std::string_view run_id) {
  return absl::StrCat("msg_", std::string(run_id));
}

void AiSdkEncoder::AddHeaders(http::HttpHeaders* headers) const {
  StreamEncoder::AddHeaders(headers);
  headers->Add(kAiSdkStreamHeader, "v1");
}

std::string AiSdkEncoder::Open() {
  if (hooks_.opened) hooks_.opened();
  if (resume_after_) {
    // The client keeps the message it has: no `start` (which would make
    // useChat start it again).
    return EncodeComment(absl::StrCat("continuing run ", request_id(),
                                      " after ", *resume_after_));
  }
  std::string out;
  const std::string id = EventId(last_seq());
  AppendEvent(id, "",
              Dump(Json{{"type", "start"},
                        {"messageId", MessageId(request_id())},
                        {"messageMetadata", {{"runId", request_id()}}}}),
              &out);
  AppendEvent(id, "", Dump(Json{{"type", "start-step"}}), &out);
  return out;
}

void AiSdkEncoder::Status(Chunks* chunks) {
  const Json& s = view_.state();
  Json data = {{"runId", s["runId"]},
               {"status", s["status"]},
               {"statusMessage", s["statusMessage"]},
               {"synthesis", s["synthesis"]},
               {"outcome", s["outcome"]},
               {"errors", s["errors"]},
               {"timeouts", s["timeouts"]}};
  Json& sent = sent_["status"];
  if (sent == data) return;
  chunks->push_back(
      Json{{"type", "data-status"}, {"id", "status"}, {"data", data}});
  sent = std::move(data);
}

void AiSdkEncoder::SpecialistPart(const std::string& name, Chunks* chunks) {
  if (const Json* entry = view_.specialist(name); entry != nullptr) {
    Json& sent = sent_[absl::StrCat("specialist:", name)];
    if (sent != *entry) {
      chunks->push_back(
          Json{{"type", "data-specialist"}, {"id", name}, {"data", *entry}});
      sent = *entry;
    }
  }
  if (const Json* result = view_.result(name); result != nullptr) {
    Json& sent = sent_[absl::StrCat("result:", name)];
    if (sent != *result) {
      chunks->push_back(
          Json{{"type", "data-result"}, {"id", name}, {"data", *result}});
      sent = *result;
    }
  }
}

void AiSdkEncoder::CloseTools(const std::string& name, std::string_view reason,
                              Chunks* chunks) {
  for (auto it = open_tools_.begin(); it != open_tools_.end();) {
    if (!name.empty() && it->first != name) {
      ++it;
      continue;
    }
    for (const std::string& id : it->second) {
      chunks->push_back(
          Json{{"type", "tool-output-available"},
               {"toolCallId", id},
               {"output", {{"result", nullptr}, {"reason", reason}}}});
    }
    it = open_tools_.erase(it);
  }
}

int AiSdkEncoder::Write(const Chunks& chunks, uint64_t seq,
                        std::string* out) const {
  const std::string before = EventId(seq == 0 ? 0 : seq - 1);
  const std::string after = EventId(seq);
  for (size_t i = 0; i < chunks.size(); ++i) {
    AppendEvent(i + 1 == chunks.size() ? after : before, "", Dump(chunks[i]),
                out);
  }
  return static_cast<int>(chunks.size());
}

int AiSdkEncoder::AppendUpdate(const Update& update, std::string* out) {
  Observe(update);
  if (update.seq() != 0 && update.seq() <= view_.last_seq()) return 0;
  view_.Apply(update);
  const std::string name = SpecialistOf(update);
  const std::string seq = absl::StrCat(update.seq());
  // In this order: tool chunks and data parts (replaced in place by the
  // client, so a resend is harmless), then reasoning and text (appended).
  Chunks chunks;
  Chunks appended;
  switch (update.kind_case()) {
    case Update::kThinking: {
      const auto& t = update.thinking();
      if (!t.visible() || t.thought().empty()) break;
      const std::string id = absl::StrCat("r", seq);
      appended.push_back(
          Json{{"type", "reasoning-start"},
               {"id", id},
               {"providerMetadata", {{kProvider, {{"agent", t.agent()}}}}}});
      appended.push_back(Json{
          {"type", "reasoning-delta"}, {"id", id}, {"delta", t.thought()}});
      appended.push_back(Json{{"type", "reasoning-end"}, {"id", id}});
      break;
    }
    case Update::kToolCall: {
      if (name.empty()) break;
      const std::string id = absl::StrCat(request_id(), "-", seq);
      chunks.push_back(
          Json{{"type", "tool-input-available"},
               {"toolCallId", id},
               {"toolName", update.tool_call().tool()},
               {"input", StructToJson(update.tool_call().parameters())},
               {"providerMetadata", {{kProvider, {{"specialist", name}}}}}});
      open_tools_[name].push_back(id);
      break;
    }
    case Update::kPartialResult: {
      // The partial result is what the specialist's oldest open tool call
      // gave.
      auto it = open_tools_.find(name);
      if (it == open_tools_.end()) break;
      chunks.push_back(
          Json{{"type", "tool-output-available"},
               {"toolCallId", it->second.front()},
               {"output", StructToJson(update.partial_result().result())}});
      it->second.pop_front();
      if (it->second.empty()) open_tools_.erase(it);
      break;
    }
    case Update::kSpecialistComplete:
      CloseTools(
          name,
          absl::StrCat("the specialist ended (",
                       OutcomeName(update.specialist_complete().outcome()),
                       ") with no result after this call"),
          &chunks);
      break;
    case Update::kComplete: {
      CloseTools("", "the run ended with no result after this call", &chunks);
      outcome_ = update.complete().outcome();
      const Json& answer = view_.state()["answer"];
      if (answer.is_string() && !answer.get_ref<const std::string&>().empty()) {
        const std::string id = absl::StrCat("t", seq);
        appended.push_back(Json{{"type", "text-start"}, {"id", id}});
        appended.push_back(
            Json{{"type", "text-delta"}, {"id", id}, {"delta", answer}});
        appended.push_back(Json{{"type", "text-end"}, {"id", id}});
      }
      break;
    }
    default:
      break;
  }
  Status(&chunks);
  if (!name.empty()) SpecialistPart(name, &chunks);
  for (Json& chunk : appended) chunks.push_back(std::move(chunk));
  // Up to the resume point the client has all of it: the state is built,
  // nothing is sent.
  if (resume_after_ && update.seq() <= *resume_after_) return 0;
  return Write(chunks, update.seq(), out);
}

std::string AiSdkEncoder::Error(std::string_view code, std::string_view message,
                                bool /*retryable*/, bool final) const {
  if (!final) {
    // An `error` chunk would end the chat in useChat's eyes: the stream
    // ends for a reconnect instead.
    return EncodeComment(
        absl::StrCat(std::string(code), ": ", std::string(message)));
  }
  std::string out;
  AppendEvent(EventId(last_seq()), "",
              Dump(Json{{"type", "error"},
                        {"errorText", absl::StrCat(std::string(code), ": ",
                                                   std::string(message))}}),
              &out);
  return out;
}

std::string AiSdkEncoder::Heartbeat() const {
  return EncodeComment("heartbeat");
}

std::string AiSdkEncoder::Done(DoneStatus status) {
  Chunks chunks;
  CloseTools("",
             status == DoneStatus::kCancelled
                 ? "the run was cancelled"
                 : "the run ended with no result after this call",
             &chunks);
  switch (status) {
    case DoneStatus::kCancelled:
      chunks.push_back(Json{{"type", "abort"}, {"reason", "cancelled"}});
      break;
    case DoneStatus::kComplete:
    case DoneStatus::kFailed: {
      const bool failed = status == DoneStatus::kFailed ||
                          outcome_ == agentstream::v1::OUTCOME_FAILED ||
                          outcome_ == agentstream::v1::OUTCOME_TIMED_OUT;
      chunks.push_back(Json{{"type", "finish-step"}});
      chunks.push_back(Json{{"type", "finish"},
                            {"finishReason", failed ? "error" : "stop"}});
      break;
    }
  }
  std::string out;
  const std::string id = EventId(last_seq());
  for (const Json& chunk : chunks) AppendEvent(id, "", Dump(chunk), &out);
  AppendEvent(id, "", "[DONE]", &out);
  if (hooks_.finished) hooks_.finished(last_seq());
  return out;
}

}  // namespace agentstream::gateway::dialects
