#include "common/sse_parser.h"

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace agentstream {

void SseStreamParser::Feed(std::string_view bytes,
                           const std::function<void(SseFields)>& on_event) {
  for (char c : bytes) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') continue;  // CRLF: the CR already ended the line.
    }
    if (c == '\r' || c == '\n') {
      if (c == '\r') pending_cr_ = true;
      Line(buffer_, on_event);
      buffer_.clear();
    } else {
      buffer_.push_back(c);
    }
  }
}

void SseStreamParser::Line(std::string_view line,
                           const std::function<void(SseFields)>& on_event) {
  if (line.empty()) {
    last_event_id_ = id_buffer_;
    if (has_data_) on_event(std::move(current_));
    current_ = SseFields();
    has_data_ = false;
    return;
  }
  if (line[0] == ':') {
    ++comments_;
    if (on_comment) on_comment(line.substr(1));
    return;
  }
  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      current_.id = std::string(value);
      current_.has_id = true;
      id_buffer_ = current_.id;
    }
  } else if (field == "event") {
    current_.event = std::string(value);
  } else if (field == "retry") {
    int ms = 0;
    if (absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &ms)) {
      retry_ms_ = ms;
    }
  }
}

}  // namespace agentstream
