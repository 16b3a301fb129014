#include "gateway/dialects/ag_ui_request.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace agentstream::gateway::dialects {
namespace {

// A threadId or runId: absent or null -> "", else a string within the bound
// without control characters.
absl::StatusOr<std::string> IdField(const nlohmann::json& body,
                                    const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be a string"));
  }
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > kMaxAgUiIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " is longer than ", kMaxAgUiIdBytes, " bytes"));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, " holds a control character"));
    }
  }
  return value;
}

// A message's text: a string `content`, or the "text" parts of an array.
absl::StatusOr<std::string> TextOf(const nlohmann::json& message) {
  auto content = message.find("content");
  if (content == message.end() || content->is_null()) return std::string();
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) {
    return absl::InvalidArgumentError(
        "a message's content must be a string or an array of parts");
  }
  std::string text;
  for (const auto& part : *content) {
    if (!part.is_object()) continue;
    auto type = part.find("type");
    auto t = part.find("text");
    if (type != part.end() && *type == "text" && t != part.end() &&
        t->is_string()) {
      if (!text.empty()) text.push_back('\n');
      text.append(t->get_ref<const std::string&>());
    }
  }
  return text;
}

}  // namespace

absl::StatusOr<AgUiInput> ParseAgUiInput(std::string_view body) {
  absl::StatusOr<nlohmann::json> json = ParseJsonBody(body);
  if (!json.ok()) return json.status();
  AgUiInput input;
  absl::StatusOr<std::string> thread = IdField(*json, "threadId");
  if (!thread.ok()) return thread.status();
  absl::StatusOr<std::string> run = IdField(*json, "runId");
  if (!run.ok()) return run.status();
  input.names = {*thread, *run};

  auto messages = json->find("messages");
  if (messages == json->end() || !messages->is_array()) {
    return absl::InvalidArgumentError("messages must be an array");
  }
  const nlohmann::json* last_user = nullptr;
  for (const auto& m : *messages) {
    if (!m.is_object()) {
      return absl::InvalidArgumentError("messages must hold objects");
    }
    auto role = m.find("role");
    if (role != m.end() && *role == "user") last_user = &m;
  }
  if (last_user == nullptr) {
    return absl::InvalidArgumentError(
        "messages holds no user message: the question is the last one");
  }
  absl::StatusOr<std::string> question = TextOf(*last_user);
  if (!question.ok()) return question.status();

  nlohmann::json chat = {{"message", *question}};
  if (auto props = json->find("forwardedProps");
      props != json->end() && !props->is_null()) {
    if (!props->is_object()) {
      return absl::InvalidArgumentError("forwardedProps must be an object");
    }
    for (const char* key : {"specialists", "options", "on_disconnect"}) {
      if (auto it = props->find(key); it != props->end()) chat[key] = *it;
    }
  }
  absl::StatusOr<ChatRequest> request = ChatRequestFromJson(chat);
  if (!request.ok()) return request.status();
  input.chat = *std::move(request);
  return input;
}

}  // namespace agentstream::gateway::dialects
