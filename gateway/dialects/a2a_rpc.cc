#include "gateway/dialects/a2a_rpc.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/chat_request.h"

namespace agentstream::gateway::dialects {
namespace {

struct MethodName {
  std::string_view name;
  A2aMethod method;
  A2aVersion version;
};

constexpr MethodName kMethods[] = {
    {"SendStreamingMessage", A2aMethod::kSendStreamingMessage, A2aVersion::kV1},
    {"SendMessage", A2aMethod::kSendMessage, A2aVersion::kV1},
    {"SubscribeToTask", A2aMethod::kSubscribeToTask, A2aVersion::kV1},
    {"GetTask", A2aMethod::kGetTask, A2aVersion::kV1},
    {"CancelTask", A2aMethod::kCancelTask, A2aVersion::kV1},
    {"message/stream", A2aMethod::kSendStreamingMessage, A2aVersion::kV03},
    {"message/send", A2aMethod::kSendMessage, A2aVersion::kV03},
    {"tasks/resubscribe", A2aMethod::kSubscribeToTask, A2aVersion::kV03},
    {"tasks/get", A2aMethod::kGetTask, A2aVersion::kV03},
    {"tasks/cancel", A2aMethod::kCancelTask, A2aVersion::kV03},
};

A2aError Err(int code, std::string message, Json id = nullptr) {
  return A2aError{.code = code, .message = std::move(message), .id = id};
}

// The agentstream metadata of the params or, failing that, of the message.
const Json* AgentstreamMetadata(const Json& params, const Json& message) {
  for (const Json* holder : {&params, &message}) {
    auto metadata = holder->find("metadata");
    if (metadata == holder->end() || !metadata->is_object()) continue;
    auto ours = metadata->find("agentstream");
    if (ours != metadata->end()) return &*ours;
  }
  return nullptr;
}

}  // namespace

std::variant<A2aRequest, A2aError> ParseA2aRequest(std::string_view body) {
  absl::StatusOr<nlohmann::json> parsed = ParseJsonBody(body);
  if (!parsed.ok()) {
    if (!nlohmann::json::accept(body)) {
      return Err(kJsonRpcParseError,
                 absl::StrCat("parse error: ", parsed.status().message()));
    }
    // JSON, but not one request object (a batch, or too deep, too large).
    const size_t first = body.find_first_not_of(" \t\r\n");
    return Err(
        kJsonRpcInvalidRequest,
        first != std::string_view::npos && body[first] == '['
            ? std::string("batch requests are not served: send one "
                          "request per POST")
            : absl::StrCat("invalid request: ", parsed.status().message()));
  }
  const Json json(*parsed);
  Json id = nullptr;
  if (auto it = json.find("id"); it != json.end()) {
    if (!it->is_string() && !it->is_number_integer()) {
      return Err(kJsonRpcInvalidRequest, "`id` must be a string or an integer");
    }
    id = *it;
  }
  auto version = json.find("jsonrpc");
  if (version == json.end() || *version != "2.0") {
    return Err(kJsonRpcInvalidRequest, "`jsonrpc` must be \"2.0\"", id);
  }
  auto method = json.find("method");
  if (method == json.end() || !method->is_string()) {
    return Err(kJsonRpcInvalidRequest, "`method` must be a string", id);
  }
  if (id.is_null()) {
    return Err(kJsonRpcInvalidRequest,
               "notifications are not served: give the request an `id`");
  }
  A2aRequest request;
  request.id = id;
  const std::string& name = method->get_ref<const std::string&>();
  bool known = false;
  for (const MethodName& m : kMethods) {
    if (m.name == name) {
      request.method = m.method;
      request.version = m.version;
      known = true;
      break;
    }
  }
  if (!known) {
    return Err(kJsonRpcMethodNotFound,
               absl::StrCat("method not found: ", name.substr(0, 64)), id);
  }
  if (auto params = json.find("params"); params != json.end()) {
    if (!params->is_object()) {
      return Err(kJsonRpcInvalidParams, "`params` must be an object", id);
    }
    request.params = *params;
  }
  return request;
}

std::variant<A2aMessage, A2aError> ParseA2aMessage(const A2aRequest& request) {
  const Json& params = request.params;
  auto bad = [&](std::string message) {
    return Err(kJsonRpcInvalidParams, std::move(message), request.id);
  };
  auto message_it = params.find("message");
  if (message_it == params.end() || !message_it->is_object()) {
    return bad("`params.message` must be an object");
  }
  const Json& message = *message_it;
  if (auto role = message.find("role"); role != message.end()) {
    if (*role != "ROLE_USER" && *role != "user") {
      return bad("`message.role` must be ROLE_USER (or \"user\")");
    }
  }
  if (message.contains("taskId")) {
    // A task is one question and its answer; a follow-up is a new task
    // (in the same context).
    return Err(kA2aUnsupportedOperation,
               "a task takes one message: send the next one without "
               "`taskId` (a new task, in the same contextId)",
               request.id);
  }
  auto parts = message.find("parts");
  if (parts == message.end() || !parts->is_array() || parts->empty()) {
    return bad("`message.parts` must be a non-empty array");
  }
  std::vector<std::string> texts;
  for (const Json& part : *parts) {
    auto text = part.is_object() ? part.find("text") : part.end();
    if (!part.is_object() || text == part.end() || !text->is_string()) {
      return Err(kA2aContentTypeNotSupported,
                 "only text parts are read (the question, as text/plain)",
                 request.id);
    }
    texts.push_back(text->get<std::string>());
  }
  A2aMessage out;
  out.chat["message"] = absl::StrJoin(texts, "\n\n");
  if (auto context = message.find("contextId"); context != message.end()) {
    if (!context->is_string() ||
        context->get_ref<const std::string&>().empty() ||
        context->get_ref<const std::string&>().size() > kMaxA2aContextIdBytes) {
      return bad(absl::StrCat("`message.contextId` must be a string of 1..",
                              kMaxA2aContextIdBytes, " bytes"));
    }
    for (unsigned char c : context->get_ref<const std::string&>()) {
      if (c < 0x20 || c == 0x7f) {
        return bad("`message.contextId` must not hold control characters");
      }
    }
    out.context_id = context->get<std::string>();
  }
  if (const Json* ours = AgentstreamMetadata(params, message)) {
    if (!ours->is_object()) {
      return bad("`metadata.agentstream` must be an object");
    }
    for (const char* key : {"specialists", "options", "on_disconnect"}) {
      if (auto it = ours->find(key); it != ours->end()) out.chat[key] = *it;
    }
  }
  return out;
}

std::variant<std::string, A2aError> ParseA2aTaskId(const A2aRequest& request) {
  auto id = request.params.find("id");
  if (id == request.params.end() || !id->is_string() ||
      id->get_ref<const std::string&>().empty()) {
    return Err(kJsonRpcInvalidParams, "`params.id` (the task's id) is needed",
               request.id);
  }
  return id->get<std::string>();
}

Json A2aResult(const Json& id, Json result) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json A2aErrorResponse(const A2aError& error) {
  return Json{{"jsonrpc", "2.0"},
              {"id", error.id},
              {"error", {{"code", error.code}, {"message", error.message}}}};
}

bool IsSafeHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != ':' &&
        c != '[' && c != ']') {
      return false;
    }
  }
  return true;
}

Json A2aAgentCard(const agentstream::v1::ListSpecialistsResponse& specialists,
                  std::string_view base_url, bool bearer) {
  const std::string url = absl::StrCat(std::string(base_url), "/api/a2a");
  Json skills = Json::array();
  for (const auto& info : specialists.specialists()) {
    const auto& card = info.card();
    Json tags = Json::array();
    for (const auto& tag : card.skills()) tags.push_back(tag);
    for (const auto& tag : card.keywords()) {
      if (std::find(tags.begin(), tags.end(), Json(tag)) == tags.end()) {
        tags.push_back(tag);
      }
    }
    Json skill = {
        {"id", card.name()},
        {"name",
         card.display_name().empty() ? card.name() : card.display_name()},
        {"description", card.description()},
        {"tags", std::move(tags)},
    };
    if (card.explicit_only()) {
      // Planned only when named: say how.
      skill["description"] =
          absl::StrCat(card.description(),
                       " (only when named: metadata.agentstream."
                       "specialists = [\"",
                       card.name(), "\"])");
    }
    skills.push_back(std::move(skill));
  }
  Json out = {
      {"name", "agentstream"},
      {"description",
       "Multi-agent analysis: an orchestrator plans the question onto "
       "specialists, streams their progress and partial results, and "
       "synthesizes their answer."},
      {"version", "1.0.0"},
      {"supportedInterfaces", Json::array({{{"url", url},
                                            {"protocolBinding", "JSONRPC"},
                                            {"protocolVersion", "1.0"}}})},
      // A2A 0.3's fields for the same endpoint (0.3 clients read these).
      {"url", url},
      {"preferredTransport", "JSONRPC"},
      {"protocolVersion", "0.3.0"},
      {"capabilities",
       {{"streaming", true},
        {"pushNotifications", false},
        {"stateTransitionHistory", false}}},
      {"defaultInputModes", Json::array({"text/plain"})},
      {"defaultOutputModes", Json::array({"text/plain", "application/json"})},
      {"skills", std::move(skills)},
  };
  if (bearer) {
    out["securitySchemes"] = {
        {"bearer", {{"type", "http"}, {"scheme", "bearer"}}}};
    out["security"] = Json::array({{{"bearer", Json::array()}}});
  }
  return out;
}

}  // namespace agentstream::gateway::dialects
