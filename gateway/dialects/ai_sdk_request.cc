#include "gateway/dialects/ai_sdk_request.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::dialects {
namespace {

using nlohmann::json;

absl::Status Invalid(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// The question: the text parts of the last user message.
absl::StatusOr<std::string> Question(const json& messages) {
  for (auto m = messages.rbegin(); m != messages.rend(); ++m) {
    if (!m->is_object()) return Invalid("messages must be UIMessage objects");
    auto role = m->find("role");
    if (role == m->end() || !role->is_string()) {
      return Invalid("every message needs a role");
    }
    if (*role != "user") continue;
    auto parts = m->find("parts");
    if (parts == m->end() || !parts->is_array()) {
      return Invalid("the last user message has no parts array");
    }
    std::vector<std::string> texts;
    for (const json& part : *parts) {
      if (!part.is_object()) return Invalid("message parts must be objects");
      auto type = part.find("type");
      auto text = part.find("text");
      if (type == part.end() || *type != "text") continue;
      if (text == part.end() || !text->is_string()) {
        return Invalid("a text part needs a string text");
      }
      texts.push_back(text->get<std::string>());
    }
    std::string question = absl::StrJoin(texts, "\n");
    if (question.empty()) {
      return Invalid("the last user message has no text");
    }
    return question;
  }
  return Invalid("messages holds no user message");
}

}  // namespace

bool IsValidChatId(std::string_view chat_id) {
  if (chat_id.empty() || chat_id.size() > kMaxChatIdBytes) return false;
  if (chat_id == "." || chat_id == "..") return false;
  for (char c : chat_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<AiSdkChatRequest> ParseAiSdkChatBody(std::string_view body) {
  absl::StatusOr<json> parsed = ParseJsonBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  AiSdkChatRequest out;
  auto id = j.find("id");
  if (id == j.end() || !id->is_string()) {
    return Invalid("id (the chat id) is required, a string");
  }
  out.chat_id = id->get<std::string>();
  if (!IsValidChatId(out.chat_id)) {
    return Invalid(absl::StrCat("id must be 1..", kMaxChatIdBytes,
                                " characters of [A-Za-z0-9._-]"));
  }
  if (auto trigger = j.find("trigger"); trigger != j.end()) {
    if (*trigger == "regenerate-message") {
      out.regenerate = true;
    } else if (*trigger != "submit-message") {
      return Invalid(
          "trigger must be \"submit-message\" or \"regenerate-message\"");
    }
  }
  auto messages = j.find("messages");
  if (messages == j.end() || !messages->is_array()) {
    return Invalid("messages (an array of UIMessage) is required");
  }
  absl::StatusOr<std::string> question = Question(*messages);
  if (!question.ok()) return question.status();
  // Our request, from the fields we read: the others (the transport's own,
  // or a stream format our wire would take) are not ours to apply here.
  json ours = {{"message", *std::move(question)}};
  for (const char* field : {"specialists", "options", "on_disconnect"}) {
    if (auto it = j.find(field); it != j.end()) ours[field] = *it;
  }
  absl::StatusOr<ChatRequest> chat = ChatRequestFromJson(ours);
  if (!chat.ok()) return chat.status();
  out.chat = *std::move(chat);
  return out;
}

}  // namespace agentstream::gateway::dialects
