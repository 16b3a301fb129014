// An incremental HTTP/1.0 and 1.1 request parser with a bound on every
// resource a request can make it spend (docs/HTTP.md, "Limits"). No sockets,
// no recursion, no regular expressions: every byte is looked at once, and
// memory grows only up to the limits.
//
// Feed() consumes bytes until one request is complete (state kDone) or the
// request is refused (state kError, with the HTTP status to answer: 400
// malformed, 413 body too large, 414 request line too long, 431 header
// section too large or too many fields, 417 unknown expectation, 501 an
// unsupported transfer coding, 505 an HTTP version other than 1.0/1.1).
// Bytes after a complete request belong to the next one (pipelining): the
// caller keeps them and feeds them after Reset().
//
// What is refused, on purpose (request smuggling, RFC 9112 section 6.3):
// Transfer-Encoding other than exactly `chunked`; Transfer-Encoding together
// with Content-Length; Content-Length fields that differ or are not digits;
// obsolete line folding; whitespace before a field's colon; control
// characters (other than tab) in a field value; a bare CR. A bare LF ends a
// line like CRLF does (as RFC 9112 section 2.2 allows).
//
// Thread-compatible.
#ifndef AGENTSTREAM_COMMON_HTTP_REQUEST_PARSER_H_
#define AGENTSTREAM_COMMON_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/http/http_message.h"

namespace agentstream::http {

struct HttpLimits {
  // The request line (method, target, version) without its line ending: 414.
  size_t max_request_line_bytes = 64 * 1024;
  // Every header field line (and trailer line) together, line endings
  // included: 431.
  size_t max_header_bytes = 32 * 1024;
  // Header fields (and trailer fields) at most: 431.
  size_t max_header_count = 100;
  // The body after chunked decoding: 413, refused as soon as a length or a
  // chunk says so, before the bytes arrive.
  size_t max_body_bytes = 1024 * 1024;
};

struct ParseError {
  int status = 400;
  std::string message;
};

class RequestParser final {
 public:
  enum class State {
    kStart,  // No byte of a request yet.
    kHead,   // In the request line or the header section.
    kBody,   // The head is complete (request() is valid but the body).
    kDone,   // A whole request: request() is complete.
    kError,  // Refused: error() says why. Feed() consumes nothing more.
  };

  explicit RequestParser(const HttpLimits& limits) : limits_(limits) {}

  // Consumes a prefix of `data` and returns its length: everything up to the
  // end of the request (kDone), all of it (still in the request), or, once
  // refused (kError), some prefix (the connection ends there anyway).
  size_t Feed(std::string_view data);

  State state() const { return state_; }
  bool head_done() const {
    return state_ == State::kBody || state_ == State::kDone;
  }
  // Body bytes still to come when the length is known (Content-Length), for
  // an interim `100 Continue`; 0 for chunked bodies and when done.
  uint64_t body_bytes_expected() const { return content_remaining_; }
  HttpRequest& request() { return request_; }
  const ParseError& error() const { return error_; }

  // Forgets the request, ready for the next one on the same connection.
  void Reset();

 private:
  enum class BodyMode { kNone, kLength, kChunked };
  enum class ChunkState { kSize, kData, kDataEnd, kTrailers };

  size_t FeedHead(std::string_view data);
  size_t FeedBody(std::string_view data);
  // Each gets one line without its line ending.
  bool OnRequestLine(std::string_view line);
  bool OnHeaderLine(std::string_view line, bool trailer);
  bool OnHeadDone();
  bool OnChunkSizeLine(std::string_view line);
  // The bytes of a line being collected, with their limit and the error when
  // it is exceeded. `line` gets the line when complete (ending stripped).
  // Returns consumed bytes; sets *complete.
  size_t CollectLine(std::string_view data, size_t limit, int status,
                     std::string_view what, bool* complete, std::string* line);
  bool Fail(int status, std::string message);

  const HttpLimits limits_;
  State state_ = State::kStart;
  HttpRequest request_;
  ParseError error_;

  std::string line_;  // A line collected across Feed() calls.
  bool have_request_line_ = false;
  size_t empty_lines_before_request_ = 0;
  size_t header_bytes_ = 0;
  size_t header_count_ = 0;

  BodyMode body_mode_ = BodyMode::kNone;
  uint64_t content_remaining_ = 0;
  ChunkState chunk_state_ = ChunkState::kSize;
  uint64_t chunk_remaining_ = 0;
  bool saw_cr_ = false;  // kDataEnd: the CR of the chunk's CRLF was seen.
};

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_REQUEST_PARSER_H_
