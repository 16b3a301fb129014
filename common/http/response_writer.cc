#include "common/http/response_writer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/http/ascii.h"

namespace agentstream::http {
namespace {

void AppendClean(std::string_view s, std::string* out) {
  for (char c : s) {
    out->push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
  }
}

bool IsFramingField(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") ||
         EqualsIgnoreCase(name, "Transfer-Encoding") ||
         EqualsIgnoreCase(name, "Connection");
}

}  // namespace

bool StatusHasBody(int status) {
  return status >= 200 && status != 204 && status != 304;
}

void AppendResponseHead(const ResponseHead& head, std::string* out) {
  absl::StrAppend(out, "HTTP/1.1 ", head.status, " ",
                  std::string(ReasonPhrase(head.status)), "\r\n");
  if (head.headers != nullptr) {
    for (const auto& f : head.headers->fields()) {
      if (IsFramingField(f.name)) continue;
      AppendClean(f.name, out);
      out->append(": ");
      AppendClean(f.value, out);
      out->append("\r\n");
    }
  }
  switch (head.framing) {
    case BodyFraming::kContentLength:
      absl::StrAppend(out, "Content-Length: ", head.content_length, "\r\n");
      break;
    case BodyFraming::kChunked:
      out->append("Transfer-Encoding: chunked\r\n");
      break;
    case BodyFraming::kUntilClose:
    case BodyFraming::kNone:
      break;
  }
  if (head.status >= 200) {
    out->append(head.keep_alive && head.framing != BodyFraming::kUntilClose
                    ? "Connection: keep-alive\r\n"
                    : "Connection: close\r\n");
  }
  out->append("\r\n");
}

void AppendChunk(std::string_view data, std::string* out) {
  if (data.empty()) return;
  absl::StrAppendFormat(out, "%x\r\n", data.size());
  out->append(data);
  out->append("\r\n");
}

}  // namespace agentstream::http
