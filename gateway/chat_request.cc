#include "gateway/chat_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace agentstream::gateway {
namespace {

absl::Status ValidateMessage(const std::string& message, size_t max_bytes) {
  if (absl::StripAsciiWhitespace(message).empty()) {
    return absl::InvalidArgumentError(
        "message is required and must not be empty");
  }
  if (message.size() > max_bytes) {
    return absl::OutOfRangeError(
        absl::StrCat("message is ", message.size(), " bytes; the limit is ",
                     max_bytes, " bytes (use POST for long messages)"));
  }
  if (!IsValidUtf8(message)) {
    return absl::InvalidArgumentError("message is not valid UTF-8");
  }
  return absl::OkStatus();
}

absl::Status AddSpecialist(std::string_view raw, ChatRequest& request) {
  std::string name(
      absl::StripAsciiWhitespace(absl::string_view(raw.data(), raw.size())));
  if (name.empty()) return absl::OkStatus();
  if (name.size() > kMaxSpecialistNameBytes || !IsValidUtf8(name)) {
    return absl::InvalidArgumentError("invalid specialist name");
  }
  for (const auto& existing : request.specialists) {
    if (existing == name) return absl::OkStatus();
  }
  if (request.specialists.size() >= kMaxSpecialists) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxSpecialists, " specialists"));
  }
  request.specialists.push_back(std::move(name));
  return absl::OkStatus();
}

// nlohmann::json reads a NUL byte as the end of its input, so that
// `{"message":"hi"}\0<anything>` would parse as the text before the NUL.
// JSON text never holds a raw NUL (control characters in strings are
// escaped): such text is refused, as anything else that is not JSON.
nlohmann::json ParseJson(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  return nlohmann::json::parse(text, nullptr, false);
}

absl::StatusOr<nlohmann::json> ParseOptionsText(std::string_view text) {
  if (JsonNestingDepth(text) > kMaxOptionsDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("options are nested deeper than ", kMaxOptionsDepth));
  }
  nlohmann::json options = ParseJson(text);
  if (options.is_discarded()) {
    return absl::InvalidArgumentError("options is not valid JSON");
  }
  if (!options.is_object()) {
    return absl::InvalidArgumentError("options must be a JSON object");
  }
  return options;
}

}  // namespace

absl::StatusOr<agentstream::v1::DisconnectPolicy> ParseDisconnectPolicy(
    std::string_view value) {
  if (value.empty() || value == "grace") {
    return agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED;
  }
  if (value == "cancel") return agentstream::v1::DISCONNECT_POLICY_CANCEL;
  if (value == "continue") return agentstream::v1::DISCONNECT_POLICY_CONTINUE;
  return absl::InvalidArgumentError(
      "on_disconnect must be \"grace\", \"cancel\" or \"continue\"");
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

int JsonNestingDepth(std::string_view text) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) max_depth = depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

absl::StatusOr<ChatRequest> ParseChatQuery(
    const std::multimap<std::string, std::string>& params) {
  ChatRequest request;
  auto message = params.find("message");
  if (message == params.end()) {
    return absl::InvalidArgumentError("message is required");
  }
  if (auto s = ValidateMessage(message->second, kMaxGetMessageBytes); !s.ok()) {
    return s;
  }
  request.message = message->second;
  auto [begin, end] = params.equal_range("specialists");
  for (auto it = begin; it != end; ++it) {
    for (absl::string_view name : absl::StrSplit(it->second, ',')) {
      if (auto s = AddSpecialist(std::string_view(name.data(), name.size()),
                                 request);
          !s.ok()) {
        return s;
      }
    }
  }
  if (auto options = params.find("options");
      options != params.end() && !options->second.empty()) {
    auto parsed = ParseOptionsText(options->second);
    if (!parsed.ok()) return parsed.status();
    request.options = *std::move(parsed);
  }
  auto format = ParseStreamFormatQuery(params);
  if (!format.ok()) return format.status();
  request.format = *format;
  if (auto policy = params.find("on_disconnect"); policy != params.end()) {
    auto parsed = ParseDisconnectPolicy(policy->second);
    if (!parsed.ok()) return parsed.status();
    request.on_disconnect = *parsed;
  }
  return request;
}

absl::StatusOr<nlohmann::json> ParseJsonBody(std::string_view body) {
  if (body.size() > kMaxPostBodyBytes) {
    return absl::OutOfRangeError(absl::StrCat("body is ", body.size(),
                                              " bytes; the limit is ",
                                              kMaxPostBodyBytes, " bytes"));
  }
  if (JsonNestingDepth(body) > kMaxOptionsDepth + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("body is nested deeper than ", kMaxOptionsDepth + 1));
  }
  const nlohmann::json json = ParseJson(body);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("body is not valid JSON");
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError("body must be a JSON object");
  }
  return json;
}

absl::StatusOr<ChatRequest> ParseChatBody(std::string_view body) {
  absl::StatusOr<nlohmann::json> json = ParseJsonBody(body);
  if (!json.ok()) return json.status();
  return ChatRequestFromJson(*json);
}

absl::StatusOr<ChatRequest> ChatRequestFromJson(const nlohmann::json& json) {
  ChatRequest request;
  auto message = json.find("message");
  if (message == json.end() || message->is_null()) {
    return absl::InvalidArgumentError("message is required");
  }
  if (!message->is_string()) {
    return absl::InvalidArgumentError("message must be a string");
  }
  request.message = message->get<std::string>();
  // The body limit already bounds the message; POST allows all of it.
  if (auto s = ValidateMessage(request.message, kMaxPostBodyBytes); !s.ok()) {
    return s;
  }
  if (auto it = json.find("specialists"); it != json.end() && !it->is_null()) {
    if (!it->is_array()) {
      return absl::InvalidArgumentError(
          "specialists must be an array of strings");
    }
    for (const auto& name : *it) {
      if (!name.is_string()) {
        return absl::InvalidArgumentError(
            "specialists must be an array of strings");
      }
      if (auto s = AddSpecialist(name.get_ref<const std::string&>(), request);
          !s.ok()) {
        return s;
      }
    }
  }
  if (auto it = json.find("options"); it != json.end() && !it->is_null()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError("options must be a JSON object");
    }
    request.options = *it;
  }
  if (absl::Status s = MergeStreamFormatJson(json, &request.format); !s.ok()) {
    return s;
  }
  if (auto it = json.find("on_disconnect");
      it != json.end() && !it->is_null()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError("on_disconnect must be a string");
    }
    auto policy = ParseDisconnectPolicy(it->get_ref<const std::string&>());
    if (!policy.ok()) return policy.status();
    request.on_disconnect = *policy;
  }
  return request;
}

}  // namespace agentstream::gateway
