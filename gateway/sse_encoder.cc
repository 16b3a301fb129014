#include "gateway/sse_encoder.h"

#include "absl/strings/str_cat.h"

namespace agentstream::gateway {
namespace {

// Appends `prefix` + line + "\n" for every line of `text`, splitting on CR,
// LF and CRLF. An empty `text` is one empty line.
void AppendLines(std::string_view prefix, std::string_view text,
                 std::string* out) {
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '\r' && text[i] != '\n') continue;
    std::string_view line = text.substr(start, i - start);
    out->append(prefix);
    if (!line.empty()) {
      out->push_back(' ');
      out->append(line);
    }
    out->push_back('\n');
    if (i < text.size() && text[i] == '\r' && i + 1 < text.size() &&
        text[i + 1] == '\n') {
      ++i;
    }
    start = i + 1;
  }
}

}  // namespace

std::string SanitizeFieldValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n' && c != '\0') out.push_back(c);
  }
  return out;
}

std::string EncodeRetry(int64_t retry_ms) {
  return absl::StrCat("retry: ", retry_ms < 0 ? 0 : retry_ms, "\n\n");
}

std::string EncodeEvent(std::string_view id, std::string_view event,
                        std::string_view data) {
  std::string out;
  out.reserve(data.size() + id.size() + event.size() + 32);
  const std::string clean_id = SanitizeFieldValue(id);
  const std::string clean_event = SanitizeFieldValue(event);
  if (!clean_id.empty()) absl::StrAppend(&out, "id: ", clean_id, "\n");
  if (!clean_event.empty()) absl::StrAppend(&out, "event: ", clean_event, "\n");
  AppendLines("data:", data, &out);
  out.push_back('\n');
  return out;
}

std::string EncodeComment(std::string_view text) {
  std::string out;
  AppendLines(":", text, &out);
  out.push_back('\n');
  return out;
}

std::string EncodeHeartbeat(HeartbeatStyle style, std::string_view data_json) {
  if (style == HeartbeatStyle::kComment) return EncodeComment("heartbeat");
  return EncodeEvent("", "heartbeat", data_json);
}

}  // namespace agentstream::gateway
