// The bytes of an HTTP/1.1 response: status line and header section, the
// body framing (Content-Length, chunked, or ended by closing the connection
// for HTTP/1.0 clients, which cannot read chunked framing), and the frames
// of a chunked body. No sockets. docs/HTTP.md.
//
// Header names and values reach the wire without CR, LF or NUL (each is
// replaced by a space): no handler can split a response.
#ifndef AGENTSTREAM_COMMON_HTTP_RESPONSE_WRITER_H_
#define AGENTSTREAM_COMMON_HTTP_RESPONSE_WRITER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "common/http/http_message.h"

namespace agentstream::http {

enum class BodyFraming {
  kContentLength,  // `Content-Length: N` (also for HEAD: the GET's length).
  kChunked,        // `Transfer-Encoding: chunked` (HTTP/1.1 clients).
  kUntilClose,     // No length: the body ends when the connection closes.
  kNone,           // 1xx, 204, 304: no body and no length.
};

struct ResponseHead {
  int status = 200;
  const HttpHeaders* headers = nullptr;  // May be null.
  BodyFraming framing = BodyFraming::kContentLength;
  size_t content_length = 0;  // For kContentLength.
  bool keep_alive = true;     // `Connection: keep-alive|close`.
};

// Appends the status line and the header section (ending in an empty line)
// to `out`. Framing and Connection fields set by the handler are ignored:
// the server decides them.
void AppendResponseHead(const ResponseHead& head, std::string* out);

// Appends one chunk (nothing for empty data: an empty chunk would end the
// body).
void AppendChunk(std::string_view data, std::string* out);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// Whether a response with this status to this method carries a body.
bool StatusHasBody(int status);

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_RESPONSE_WRITER_H_
