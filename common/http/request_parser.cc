#include "common/http/request_parser.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/http/ascii.h"

namespace agentstream::http {
namespace {

// RFC 9110 section 5.6.2.
bool IsTokenChar(unsigned char c) {
  if (absl::ascii_isalnum(c)) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// A request-target byte: visible ASCII, or any byte >= 0x80 (raw UTF-8 from
// clients that do not encode it); never a control, space or DEL.
bool IsTargetChar(unsigned char c) { return c > 0x20 && c != 0x7f; }

// Empty lines tolerated before a request line (RFC 9112 section 2.2).
constexpr size_t kMaxEmptyLinesBeforeRequest = 4;
// A chunk-size line: the size in hex and any chunk extensions.
constexpr size_t kMaxChunkSizeLineBytes = 1024;

}  // namespace

void RequestParser::Reset() {
  state_ = State::kStart;
  request_ = HttpRequest();
  error_ = ParseError();
  line_.clear();
  have_request_line_ = false;
  empty_lines_before_request_ = 0;
  header_bytes_ = 0;
  header_count_ = 0;
  body_mode_ = BodyMode::kNone;
  content_remaining_ = 0;
  chunk_state_ = ChunkState::kSize;
  chunk_remaining_ = 0;
  saw_cr_ = false;
}

bool RequestParser::Fail(int status, std::string message) {
  state_ = State::kError;
  error_.status = status;
  error_.message = std::move(message);
  line_.clear();
  line_.shrink_to_fit();
  return false;
}

size_t RequestParser::Feed(std::string_view data) {
  size_t consumed = 0;
  while (consumed < data.size()) {
    const std::string_view rest = data.substr(consumed);
    switch (state_) {
      case State::kStart:
        state_ = State::kHead;
        [[fallthrough]];
      case State::kHead:
        consumed += FeedHead(rest);
        break;
      case State::kBody:
        consumed += FeedBody(rest);
        break;
      case State::kDone:
      case State::kError:
        return consumed;
    }
  }
  return consumed;
}

size_t RequestParser::CollectLine(std::string_view data, size_t limit,
                                  int status, std::string_view what,
                                  bool* complete, std::string* line) {
  *complete = false;
  const void* nl = std::memchr(data.data(), '\n', data.size());
  const size_t piece =
      nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data())
         : data.size();
  // One byte more than the limit for the CR of a CRLF.
  if (line_.size() + piece > limit + 1) {
    Fail(status,
         absl::StrCat(std::string(what), " longer than ", limit, " bytes"));
    return piece;
  }
  if (!nl) {
    line_.append(data);
    return data.size();
  }
  line_.append(data.substr(0, piece));
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.size() > limit) {
    Fail(status,
         absl::StrCat(std::string(what), " longer than ", limit, " bytes"));
    return piece + 1;
  }
  line->swap(line_);
  line_.clear();
  *complete = true;
  return piece + 1;
}

size_t RequestParser::FeedHead(std::string_view data) {
  bool complete = false;
  std::string line;
  size_t consumed;
  if (!have_request_line_) {
    consumed = CollectLine(data, limits_.max_request_line_bytes, 414,
                           "the request line is", &complete, &line);
    if (!complete) return consumed;
    if (line.empty()) {
      if (++empty_lines_before_request_ > kMaxEmptyLinesBeforeRequest) {
        Fail(400, "empty lines instead of a request line");
      }
      return consumed;
    }
    OnRequestLine(line);
    return consumed;
  }
  const size_t budget = limits_.max_header_bytes > header_bytes_
                            ? limits_.max_header_bytes - header_bytes_
                            : 0;
  consumed =
      CollectLine(data, budget, 431, "the header section is", &complete, &line);
  if (!complete) return consumed;
  header_bytes_ += consumed;
  if (line.empty()) {
    OnHeadDone();
  } else {
    OnHeaderLine(line, /*trailer=*/false);
  }
  return consumed;
}

bool RequestParser::OnRequestLine(std::string_view line) {
  have_request_line_ = true;
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Fail(400, "malformed request line");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Fail(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, "malformed method");
  if (target.empty()) return Fail(400, "empty request target");
  for (unsigned char c : target) {
    if (!IsTargetChar(c)) {
      return Fail(400, "the request target holds a space or control byte");
    }
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    return Fail(400, "malformed HTTP version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return Fail(505, absl::StrCat("HTTP version ", std::string(version),
                                  " is not supported (HTTP/1.1 and 1.0 are)"));
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.version_minor = version[7] - '0';

  std::string_view path_and_query = target;
  if (target == "*") {
    if (method != "OPTIONS")
      return Fail(400, "'*' is a target for OPTIONS only");
    request_.path = "*";
    return true;
  }
  if (target.front() != '/') {
    // absolute-form (RFC 9112 section 3.2.2): the path is what follows the
    // authority.
    const size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos ||
        !(EqualsIgnoreCase(target.substr(0, scheme_end), "http") ||
          EqualsIgnoreCase(target.substr(0, scheme_end), "https"))) {
      return Fail(400, "malformed request target");
    }
    const size_t path_start = target.find_first_of("/?", scheme_end + 3);
    path_and_query = path_start == std::string_view::npos
                         ? std::string_view("/")
                         : target.substr(path_start);
  }
  // A fragment is never sent by a conforming client; drop it if one is.
  path_and_query = path_and_query.substr(0, path_and_query.find('#'));
  const size_t q = path_and_query.find('?');
  request_.path = std::string(path_and_query.substr(0, q));
  if (request_.path.empty()) request_.path = "/";
  if (q != std::string_view::npos) {
    request_.query = std::string(path_and_query.substr(q + 1));
  }
  return true;
}

bool RequestParser::OnHeaderLine(std::string_view line, bool trailer) {
  if (++header_count_ > limits_.max_header_count) {
    return Fail(431, absl::StrCat("more than ", limits_.max_header_count,
                                  " header fields"));
  }
  if (line.front() == ' ' || line.front() == '\t') {
    return Fail(400, "obsolete line folding in the header section");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Fail(400, "a header field without a colon");
  }
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Fail(400, "malformed header field name");
  const std::string_view value = StripOws(line.substr(colon + 1));
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Fail(400, "a control character in a header field value");
    }
  }
  // Trailer fields are checked and counted, never used.
  if (!trailer) request_.headers.Add(std::string(name), std::string(value));
  return true;
}

bool RequestParser::OnHeadDone() {
  HttpHeaders& h = request_.headers;
  const size_t hosts = h.Count("Host");
  if (hosts > 1 || (hosts == 0 && request_.version_minor == 1)) {
    return Fail(400, "an HTTP/1.1 request needs exactly one Host field");
  }
  const bool has_te = h.Has("Transfer-Encoding");
  const bool has_cl = h.Has("Content-Length");
  if (has_te && has_cl) {
    return Fail(400, "both Transfer-Encoding and Content-Length");
  }
  if (has_te) {
    if (h.Count("Transfer-Encoding") != 1 ||
        !EqualsIgnoreCase(StripOws(*h.Get("Transfer-Encoding")), "chunked")) {
      return Fail(501, "only the chunked transfer coding is supported");
    }
    if (request_.version_minor == 0) {
      return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    body_mode_ = BodyMode::kChunked;
  } else if (has_cl) {
    std::string_view first;
    for (const auto& f : h.fields()) {
      if (!EqualsIgnoreCase(f.name, "Content-Length")) continue;
      const std::string_view v = f.value;
      if (v.empty() || v.size() > 18 ||
          !std::all_of(v.begin(), v.end(), [](unsigned char c) {
            return absl::ascii_isdigit(c);
          })) {
        return Fail(400, "malformed Content-Length");
      }
      if (first.empty()) {
        first = v;
      } else if (v != first) {
        return Fail(400, "Content-Length fields that differ");
      }
    }
    uint64_t length = 0;
    for (char c : first) length = length * 10 + static_cast<uint64_t>(c - '0');
    if (length > limits_.max_body_bytes) {
      return Fail(413, absl::StrCat("the body is ", length, " bytes; at most ",
                                    limits_.max_body_bytes, " are accepted"));
    }
    content_remaining_ = length;
    body_mode_ = length > 0 ? BodyMode::kLength : BodyMode::kNone;
  }
  if (auto expect = h.Get("Expect")) {
    if (!EqualsIgnoreCase(StripOws(*expect), "100-continue")) {
      return Fail(417, "the only expectation understood is 100-continue");
    }
    request_.expect_continue = body_mode_ != BodyMode::kNone;
  }
  request_.keep_alive = request_.version_minor == 1
                            ? !h.HasToken("Connection", "close")
                            : h.HasToken("Connection", "keep-alive");
  if (body_mode_ == BodyMode::kLength) {
    request_.body.reserve(content_remaining_);
  }
  state_ = body_mode_ == BodyMode::kNone ? State::kDone : State::kBody;
  return true;
}

bool RequestParser::OnChunkSizeLine(std::string_view line) {
  const std::string_view size_text = line.substr(0, line.find(';'));
  const std::string_view digits = StripOws(size_text);
  if (digits.empty() || digits.size() > 15) {
    return Fail(400, "malformed chunk size");
  }
  uint64_t size = 0;
  for (unsigned char c : digits) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return Fail(400, "malformed chunk size");
    }
    size = size * 16 + static_cast<uint64_t>(v);
  }
  for (unsigned char c : line) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Fail(400, "a control character in a chunk size line");
    }
  }
  if (size > limits_.max_body_bytes - request_.body.size()) {
    return Fail(413,
                absl::StrCat("the body is more than ", limits_.max_body_bytes,
                             " bytes, the most accepted"));
  }
  chunk_remaining_ = size;
  chunk_state_ = size == 0 ? ChunkState::kTrailers : ChunkState::kData;
  return true;
}

size_t RequestParser::FeedBody(std::string_view data) {
  if (body_mode_ == BodyMode::kLength) {
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(content_remaining_, data.size()));
    request_.body.append(data.substr(0, n));
    content_remaining_ -= n;
    if (content_remaining_ == 0) state_ = State::kDone;
    return n;
  }
  bool complete = false;
  std::string line;
  switch (chunk_state_) {
    case ChunkState::kSize: {
      const size_t consumed =
          CollectLine(data, kMaxChunkSizeLineBytes, 400, "a chunk size line is",
                      &complete, &line);
      if (complete) OnChunkSizeLine(line);
      return consumed;
    }
    case ChunkState::kData: {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(chunk_remaining_, data.size()));
      request_.body.append(data.substr(0, n));
      chunk_remaining_ -= n;
      if (chunk_remaining_ == 0) {
        chunk_state_ = ChunkState::kDataEnd;
        saw_cr_ = false;
      }
      return n;
    }
    case ChunkState::kDataEnd: {
      const char c = data.front();
      if (c == '\r' && !saw_cr_) {
        saw_cr_ = true;
        return 1;
      }
      if (c == '\n') {
        chunk_state_ = ChunkState::kSize;
        return 1;
      }
      Fail(400, "chunk data longer than its size");
      return 0;
    }
    case ChunkState::kTrailers: {
      const size_t budget = limits_.max_header_bytes > header_bytes_
                                ? limits_.max_header_bytes - header_bytes_
                                : 0;
      const size_t consumed = CollectLine(
          data, budget, 431, "the header section is", &complete, &line);
      if (!complete) return consumed;
      header_bytes_ += consumed;
      if (line.empty()) {
        state_ = State::kDone;
      } else {
        OnHeaderLine(line, /*trailer=*/true);
      }
      return consumed;
    }
  }
  return 0;
}

}  // namespace agentstream::http
