#include "gateway/dialects/a2a_encoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/update_json.h"
#include "gateway/sse_encoder.h"

namespace agentstream::gateway::dialects {
namespace {

using agentstream::v1::Update;

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ISO 8601 in UTC with milliseconds, as A2A's timestamps are written.
std::string IsoTime(int64_t unix_nanos) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::FromUnixNanos(unix_nanos), absl::UTCTimeZone());
}

std::string ArtifactId(const std::string& specialist) {
  return absl::StrCat("result-", specialist);
}

constexpr std::string_view kAnswerArtifactId = "answer";

}  // namespace

std::string A2aStateName(A2aState state, A2aVersion version) {
  const bool v1 = version == A2aVersion::kV1;
  switch (state) {
    case A2aState::kSubmitted:
      return v1 ? "TASK_STATE_SUBMITTED" : "submitted";
    case A2aState::kWorking:
      return v1 ? "TASK_STATE_WORKING" : "working";
    case A2aState::kCompleted:
      return v1 ? "TASK_STATE_COMPLETED" : "completed";
    case A2aState::kFailed:
      return v1 ? "TASK_STATE_FAILED" : "failed";
    case A2aState::kCanceled:
      return v1 ? "TASK_STATE_CANCELED" : "canceled";
  }
  return v1 ? "TASK_STATE_FAILED" : "failed";
}

A2aEncoder::A2aEncoder(std::string run_id, std::string context_id,
                       A2aVersion version, Json rpc_id, bool resumed)
    : StreamEncoder(run_id, resumed, 0),
      context_id_(std::move(context_id)),
      version_(version),
      rpc_id_(std::move(rpc_id)),
      view_(std::move(run_id)) {}

void A2aEncoder::Seed(const std::vector<Update>& updates) {
  for (const Update& update : updates) {
    Observe(update);
    const Artifact* artifact = nullptr;
    bool answer = false;
    const std::string text = Fold(update, &artifact, &answer);
    if (!text.empty()) status_text_ = text;
  }
}

A2aState A2aEncoder::state() const {
  if (terminal_) return *terminal_;
  const std::string& status =
      view_.state()["status"].get_ref<const std::string&>();
  if (status == "complete") return A2aState::kCompleted;
  if (status == "cancelled") return A2aState::kCanceled;
  if (status == "failed") return A2aState::kFailed;
  if (status == "idle") return A2aState::kSubmitted;
  return A2aState::kWorking;
}

std::string A2aEncoder::DisplayName(const std::string& specialist) const {
  const Json* s = view_.specialist(specialist);
  if (s == nullptr) return specialist;
  const std::string& display =
      (*s)["displayName"].get_ref<const std::string&>();
  return display.empty() ? specialist : display;
}

std::string A2aEncoder::Fold(const Update& update, const Artifact** artifact,
                             bool* answer) {
  // A replayed update (at or below the last one applied) changes nothing.
  if (update.seq() != 0 && update.seq() <= view_.last_seq()) return "";
  const ViewChange change = view_.Apply(update);
  if (update.emitted_at() > 0) timestamp_ = IsoTime(update.emitted_at());
  const std::string name = SpecialistOf(update);
  const std::string who = name.empty() ? "" : DisplayName(name);
  switch (update.kind_case()) {
    case Update::kStatus: {
      const auto& s = update.status();
      switch (s.status()) {
        case agentstream::v1::RUN_STATUS_COMPLETE:
        case agentstream::v1::RUN_STATUS_CANCELLED:
        case agentstream::v1::RUN_STATUS_FAILED:
          // The run's end is the terminal statusUpdate of Done().
          if (!s.message().empty()) final_text_ = s.message();
          return "";
        default:
          return s.message().empty() ? RunStatusName(s.status()) : s.message();
      }
    }
    case Update::kThinking: {
      const auto& t = update.thinking();
      if (!t.visible() || t.thought().empty()) return "";
      // A specialist by its display name, as in the other statuses.
      const std::string agent = !who.empty() ? who
                                : !t.agent().empty()
                                    ? t.agent()
                                    : std::string(kOrchestratorAgent);
      return absl::StrCat(agent, ": ", t.thought());
    }
    case Update::kSpecialistActivated:
      if (who.empty()) return "";
      return update.specialist_activated().task().empty()
                 ? absl::StrCat(who, " started")
                 : absl::StrCat(
                       who, " started: ", update.specialist_activated().task());
    case Update::kProgress: {
      // Progress comes often: one that moves nothing is not worth a status.
      if (who.empty() || change.patch.empty()) return "";
      const Json& s = *view_.specialist(name);
      const std::string& action =
          s["currentAction"].get_ref<const std::string&>();
      return action.empty()
                 ? absl::StrCat(who, " ", s["progress"].get<int>(), "%")
                 : absl::StrCat(who, " ", s["progress"].get<int>(),
                                "% \xE2\x80\x94 ", action);
    }
    case Update::kToolCall:
      if (who.empty()) return "";
      return absl::StrCat(who, " calls ", update.tool_call().tool());
    case Update::kSpecialistComplete:
      if (who.empty()) return "";
      return absl::StrCat(who, " finished (",
                          OutcomeName(update.specialist_complete().outcome()),
                          ", ", update.specialist_complete().duration_ms(),
                          " ms)");
    case Update::kSynthesis:
      return update.synthesis().message().empty()
                 ? "Writing the answer"
                 : update.synthesis().message();
    case Update::kError: {
      const auto& e = update.error();
      return absl::StrCat(who.empty() ? std::string(kOrchestratorAgent) : who,
                          " error ", e.code(), ": ", e.message());
    }
    case Update::kTimeout: {
      const auto& t = update.timeout();
      return absl::StrCat(who.empty() ? std::string(kOrchestratorAgent) : who,
                          " timed out (", TimeoutActionName(t.action()),
                          "): ", t.message());
    }
    case Update::kPartialResult: {
      if (name.empty() || !change.result) return "";
      auto it =
          std::find_if(artifacts_.begin(), artifacts_.end(),
                       [&](const Artifact& a) { return a.specialist == name; });
      if (it == artifacts_.end()) {
        artifacts_.push_back(Artifact{.specialist = name});
        it = artifacts_.end() - 1;
      }
      it->parts.push_back(
          DataPart(Json(StructToJson(update.partial_result().result()))));
      *artifact = &*it;
      return "";
    }
    case Update::kComplete:
      *answer = true;
      return "";
    case Update::KIND_NOT_SET:
      return "";
  }
  return "";
}

Json A2aEncoder::TextPart(std::string_view text) const {
  if (version_ == A2aVersion::kV1) return Json{{"text", text}};
  return Json{{"kind", "text"}, {"text", text}};
}

Json A2aEncoder::DataPart(const Json& data) const {
  if (version_ == A2aVersion::kV1) return Json{{"data", data}};
  return Json{{"kind", "data"}, {"data", data}};
}

Json A2aEncoder::AgentMessage(std::string_view text,
                              std::string_view id) const {
  Json m = Json::object();
  if (version_ == A2aVersion::kV03) m["kind"] = "message";
  m["messageId"] = id;
  m["role"] = version_ == A2aVersion::kV1 ? "ROLE_AGENT" : "agent";
  m["parts"] = Json::array({TextPart(text)});
  m["taskId"] = request_id();
  m["contextId"] = context_id_;
  return m;
}

Json A2aEncoder::Status(A2aState state, const std::string& text,
                        std::string_view message_id) const {
  Json s = {{"state", A2aStateName(state, version_)}};
  if (!text.empty()) s["message"] = AgentMessage(text, message_id);
  if (!timestamp_.empty()) s["timestamp"] = timestamp_;
  return s;
}

Json A2aEncoder::ArtifactJson(const Artifact& artifact) const {
  return Json{{"artifactId", ArtifactId(artifact.specialist)},
              {"name", DisplayName(artifact.specialist)},
              {"description",
               absl::StrCat("The partial results of ", artifact.specialist)},
              {"parts", artifact.parts},
              {"metadata", {{"specialist", artifact.specialist}}}};
}

Json A2aEncoder::AnswerArtifact() const {
  const Json& answer = view_.state()["answer"];
  return Json{{"artifactId", kAnswerArtifactId},
              {"name", "answer"},
              {"description", "The answer, synthesized from the specialists"},
              {"parts", Json::array({TextPart(answer.is_string()
                                                  ? answer.get<std::string>()
                                                  : std::string())})},
              {"metadata", {{"outcome", view_.state()["outcome"]}}}};
}

Json A2aEncoder::Task() const {
  Json task = Json::object();
  if (version_ == A2aVersion::kV03) task["kind"] = "task";
  task["id"] = request_id();
  task["contextId"] = context_id_;
  task["status"] =
      Status(state(), final_text_.empty() ? status_text_ : final_text_,
             absl::StrCat(request_id(), ":status:", last_seq()));
  Json artifacts = Json::array();
  for (const Artifact& a : artifacts_) artifacts.push_back(ArtifactJson(a));
  // As in the stream: an empty answer (a cancelled run's) is no artifact.
  const Json& answer = view_.state()["answer"];
  if (answer.is_string() && !answer.get_ref<const std::string&>().empty()) {
    artifacts.push_back(AnswerArtifact());
  }
  if (!artifacts.empty()) task["artifacts"] = std::move(artifacts);
  task["metadata"] = {{"runId", request_id()}};
  return task;
}

void A2aEncoder::AppendResult(std::string_view kind, Json payload, uint64_t seq,
                              std::string* out) const {
  Json result;
  if (version_ == A2aVersion::kV1) {
    result = Json{{std::string(kind), std::move(payload)}};
  } else {
    const std::string_view v03_kind = kind == "task" ? "task"
                                      : kind == "statusUpdate"
                                          ? "status-update"
                                          : "artifact-update";
    result = Json{{"kind", v03_kind}};
    for (auto& [key, value] : payload.items()) {
      if (key != "kind") result[key] = std::move(value);
    }
  }
  const Json response = {
      {"jsonrpc", "2.0"}, {"id", rpc_id_}, {"result", std::move(result)}};
  AppendEvent(EventId(seq), "", Dump(response), out);
}

std::string A2aEncoder::Open() {
  std::string out;
  AppendResult("task", Task(), last_seq(), &out);
  return out;
}

int A2aEncoder::AppendUpdate(const Update& update, std::string* out) {
  Observe(update);
  const Artifact* artifact = nullptr;
  bool answer = false;
  const std::string text = Fold(update, &artifact, &answer);
  const Json ids = {{"taskId", request_id()}, {"contextId", context_id_}};
  if (artifact != nullptr) {
    Json u = ids;
    Json a = ArtifactJson(*artifact);
    a["parts"] = Json::array({artifact->parts.back()});
    u["artifact"] = std::move(a);
    u["append"] = artifact->parts.size() > 1;
    u["lastChunk"] = false;
    AppendResult("artifactUpdate", std::move(u), update.seq(), out);
    return 1;
  }
  if (answer) {
    const Json& a = view_.state()["answer"];
    if (!a.is_string() || a.get_ref<const std::string&>().empty()) return 0;
    Json u = ids;
    u["artifact"] = AnswerArtifact();
    u["append"] = false;
    u["lastChunk"] = true;
    AppendResult("artifactUpdate", std::move(u), update.seq(), out);
    return 1;
  }
  if (text.empty()) return 0;
  status_text_ = text;
  Json u = ids;
  u["status"] = Status(A2aState::kWorking, text,
                       absl::StrCat(request_id(), ":status:", update.seq()));
  if (version_ == A2aVersion::kV03) u["final"] = false;
  AppendResult("statusUpdate", std::move(u), update.seq(), out);
  return 1;
}

std::string A2aEncoder::Error(std::string_view code, std::string_view message,
                              bool /*retryable*/, bool final) const {
  if (final) {
    final_text_ = absl::StrCat(std::string(code), ": ", std::string(message));
    return "";
  }
  // The stream ends for the client to resubscribe: no state that ends the
  // task in its eyes.
  return EncodeComment(
      absl::StrCat(std::string(code), ": ", std::string(message)));
}

std::string A2aEncoder::Heartbeat() const { return EncodeComment("heartbeat"); }

std::string A2aEncoder::Done(DoneStatus status) {
  switch (status) {
    case DoneStatus::kCancelled:
      terminal_ = A2aState::kCanceled;
      break;
    case DoneStatus::kFailed:
      terminal_ = A2aState::kFailed;
      break;
    case DoneStatus::kComplete: {
      // A `complete` whose outcome failed (or was cancelled) says so.
      const A2aState from_view = state();
      terminal_ =
          from_view == A2aState::kFailed || from_view == A2aState::kCanceled
              ? from_view
              : A2aState::kCompleted;
      break;
    }
  }
  std::string text = final_text_;
  if (text.empty()) {
    const Json& outcome = view_.state()["outcome"];
    text = outcome.is_string()
               ? absl::StrCat("run ", outcome.get<std::string>())
               : std::string(DoneStatusName(status));
  }
  Json u = {{"taskId", request_id()}, {"contextId", context_id_}};
  u["status"] =
      Status(*terminal_, text, absl::StrCat(request_id(), ":status:end"));
  if (version_ == A2aVersion::kV03) u["final"] = true;
  std::string out;
  AppendResult("statusUpdate", std::move(u), last_seq(), &out);
  return out;
}

}  // namespace agentstream::gateway::dialects
