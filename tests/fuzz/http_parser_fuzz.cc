// Fuzz target: the HTTP/1.x request parser, router and response framing
// (common/http/, docs/HTTP.md). Checks, for any bytes:
//  - parsing in pieces (sizes taken from the input) gives exactly what
//    parsing all at once gives: state, error status, every field of each
//    request, and the bytes consumed unless refused (the parser is
//    incremental);
//  - pipelined requests parse one after the other, each within its limits
//    (header count and bytes, body size), with a path that starts with '/'
//    (or is "*"), header names that are tokens and values without CR, LF or
//    NUL;
//  - routing any parsed path against the gateway's routes terminates and
//    answers one of found / 404 / 405 / OPTIONS with a well-formed Allow;
//  - a response whose header values echo the request's never gets a line
//    break that the response writer did not put there.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/request_parser.h"
#include "common/http/response_writer.h"
#include "common/http/router.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::http::HttpHeaders;
using agentstream::http::HttpLimits;
using agentstream::http::HttpRequest;
using agentstream::http::RequestParser;
using agentstream::http::Router;

constexpr HttpLimits kLimits{.max_request_line_bytes = 2048,
                             .max_header_bytes = 4096,
                             .max_header_count = 32,
                             .max_body_bytes = 8192};

struct Outcome {
  RequestParser::State state;
  int status = 0;
  size_t consumed = 0;
  std::vector<HttpRequest> requests;
};

// Parses every request in `bytes` (up to 8), feeding `piece` bytes at a time
// (0: all at once).
Outcome ParseAll(std::string_view bytes, size_t piece) {
  Outcome out;
  RequestParser parser(kLimits);
  for (int n = 0; n < 8; ++n) {
    size_t used = 0;
    while (used < bytes.size()) {
      const size_t len = piece == 0 ? bytes.size() - used
                                    : std::min(piece, bytes.size() - used);
      const size_t took = parser.Feed(bytes.substr(used, len));
      FUZZ_CHECK(took <= len, "consumed more than it was given");
      used += took;
      if (parser.state() == RequestParser::State::kDone ||
          parser.state() == RequestParser::State::kError) {
        break;
      }
      FUZZ_CHECK(took == len, "stopped early without an end");
    }
    out.consumed += used;
    bytes.remove_prefix(used);
    out.state = parser.state();
    if (parser.state() == RequestParser::State::kError) {
      out.status = parser.error().status;
      FUZZ_CHECK(!parser.error().message.empty(), "an error without a message");
      return out;
    }
    if (parser.state() != RequestParser::State::kDone) return out;
    out.requests.push_back(parser.request());
    parser.Reset();
    if (bytes.empty()) return out;
  }
  return out;
}

bool IsTokenChar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

void CheckRequest(const HttpRequest& r) {
  FUZZ_CHECK(!r.method.empty(), "empty method");
  for (unsigned char c : r.method) FUZZ_CHECK(IsTokenChar(c), "method byte");
  FUZZ_CHECK(r.path == "*" || (!r.path.empty() && r.path.front() == '/'),
             "path " + r.path);
  FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1, "version");
  FUZZ_CHECK(r.headers.size() <= kLimits.max_header_count, "header count");
  FUZZ_CHECK(r.body.size() <= kLimits.max_body_bytes, "body size");
  for (const auto& f : r.headers.fields()) {
    FUZZ_CHECK(!f.name.empty(), "empty header name");
    for (unsigned char c : f.name) FUZZ_CHECK(IsTokenChar(c), "name byte");
    for (unsigned char c : f.value) {
      FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0', "value byte");
    }
  }
}

bool SameRequest(const HttpRequest& a, const HttpRequest& b) {
  if (a.method != b.method || a.target != b.target || a.path != b.path ||
      a.query != b.query || a.version_minor != b.version_minor ||
      a.body != b.body || a.keep_alive != b.keep_alive ||
      a.expect_continue != b.expect_continue ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers.fields()[i].name != b.headers.fields()[i].name ||
        a.headers.fields()[i].value != b.headers.fields()[i].value) {
      return false;
    }
  }
  return true;
}

const Router& GatewayRoutes() {
  static const Router* router = [] {
    auto* r = new Router();
    size_t id = 0;
    for (const auto& [m, p] : std::vector<std::pair<const char*, const char*>>{
             {"GET", "/api/chat/stream"},
             {"POST", "/api/chat/stream"},
             {"GET", "/api/runs/{id}/stream"},
             {"DELETE", "/api/runs/{id}"},
             {"GET", "/api/specialists"},
             {"GET", "/healthz"},
             {"GET", "/{path...}"}}) {
      FUZZ_CHECK(r->Add(m, p, id++, std::string_view(m) == "GET").ok(),
                 "route");
    }
    return r;
  }();
  return *router;
}

void CheckRouting(const HttpRequest& r) {
  if (r.path == "*") return;
  const Router::Match m = GatewayRoutes().Find(r.method, r.path);
  switch (m.kind) {
    case Router::Match::Kind::kFound:
      FUZZ_CHECK(m.route < 7, "route id");
      break;
    case Router::Match::Kind::kNotFound:
      break;
    case Router::Match::Kind::kMethodNotAllowed:
    case Router::Match::Kind::kOptions:
      FUZZ_CHECK(m.allow.find("OPTIONS") != std::string::npos, "allow");
      FUZZ_CHECK(m.allow.find_first_of("\r\n") == std::string::npos, "allow");
      break;
  }
}

void CheckResponseFraming(const HttpRequest& r) {
  HttpHeaders h;
  for (const auto& f : r.headers.fields()) h.Add(f.name, f.value);
  h.Add("X-Echo-Target", r.target);
  std::string out;
  agentstream::http::AppendResponseHead(
      {.status = 200, .headers = &h, .content_length = 0, .keep_alive = true},
      &out);
  // Every line ends in CRLF and holds no other CR or LF.
  FUZZ_CHECK(out.size() >= 4 && out.substr(out.size() - 4) == "\r\n\r\n",
             "head end");
  size_t start = 0;
  while (start < out.size()) {
    const size_t end = out.find("\r\n", start);
    FUZZ_CHECK(end != std::string::npos, "unterminated line");
    const std::string_view line(out.data() + start, end - start);
    FUZZ_CHECK(line.find_first_of("\r\n") == std::string_view::npos,
               "a line break inside a header line");
    start = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  agentstream::fuzz::FuzzInput in(data, size);
  const size_t piece = 1 + in.TakeByte() % 16;
  const std::string bytes(in.TakeBytes(size));

  const Outcome whole = ParseAll(bytes, 0);
  const Outcome pieces = ParseAll(bytes, piece);
  FUZZ_CHECK(whole.state == pieces.state, "state differs in pieces");
  FUZZ_CHECK(whole.status == pieces.status, "error status differs in pieces");
  // Where in the input a refusal stops is left open by the parser's
  // contract (the connection closes); a complete parse is exact.
  FUZZ_CHECK(whole.state == RequestParser::State::kError ||
                 whole.consumed == pieces.consumed,
             "consumed differs in pieces");
  FUZZ_CHECK(whole.requests.size() == pieces.requests.size(),
             "request count differs in pieces");
  FUZZ_CHECK(whole.consumed <= bytes.size(), "consumed past the input");
  if (whole.state == RequestParser::State::kError) {
    const int s = whole.status;
    FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 ||
                   s == 501 || s == 505,
               "unexpected error status " + std::to_string(s));
  }
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    FUZZ_CHECK(SameRequest(whole.requests[i], pieces.requests[i]),
               "request differs in pieces");
    CheckRequest(whole.requests[i]);
    CheckRouting(whole.requests[i]);
    CheckResponseFraming(whole.requests[i]);
  }
  return 0;
}
