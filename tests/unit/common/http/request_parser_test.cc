#include "common/http/request_parser.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::http {
namespace {

struct Parsed {
  RequestParser::State state;
  int status = 0;  // error status
  std::string message;
  HttpRequest request;
  size_t consumed = 0;
};

// Feeds `bytes` in pieces of `piece` bytes (0: all at once), as a socket
// would deliver them.
Parsed Parse(const std::string& bytes, size_t piece = 0,
             HttpLimits limits = {}) {
  RequestParser parser(limits);
  Parsed p;
  const size_t step = piece == 0 ? bytes.size() : piece;
  for (size_t off = 0; off < bytes.size(); off += step) {
    const std::string_view chunk =
        std::string_view(bytes).substr(off, std::min(step, bytes.size() - off));
    const size_t n = parser.Feed(chunk);
    p.consumed += n;
    if (n < chunk.size()) break;
    if (parser.state() == RequestParser::State::kDone ||
        parser.state() == RequestParser::State::kError) {
      break;
    }
  }
  p.state = parser.state();
  p.status = parser.error().status;
  p.message = parser.error().message;
  p.request = parser.request();
  return p;
}

class RequestParserPieces : public ::testing::TestWithParam<size_t> {};

TEST_P(RequestParserPieces, ParsesAGetWhateverThePieces) {
  const std::string req =
      "GET /api/chat/stream?message=hi%20there&x=1 HTTP/1.1\r\n"
      "Host: localhost\r\n"
      "Last-Event-ID:  req_1:7 \r\n"
      "\r\n";
  Parsed p = Parse(req, GetParam());
  ASSERT_EQ(p.state, RequestParser::State::kDone) << p.message;
  EXPECT_EQ(p.consumed, req.size());
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.path, "/api/chat/stream");
  EXPECT_EQ(p.request.query, "message=hi%20there&x=1");
  EXPECT_EQ(p.request.version_minor, 1);
  EXPECT_EQ(p.request.headers.GetOr("last-event-id"), "req_1:7");
  EXPECT_TRUE(p.request.keep_alive);
}

TEST_P(RequestParserPieces, DecodesAChunkedBody) {
  const std::string req =
      "POST /api/chat/stream HTTP/1.1\r\nHost: a\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: b\r\n\r\n";
  Parsed p = Parse(req, GetParam());
  ASSERT_EQ(p.state, RequestParser::State::kDone) << p.message;
  EXPECT_EQ(p.request.body, "hello world");
  EXPECT_EQ(p.consumed, req.size());
  EXPECT_FALSE(p.request.headers.Has("Trailer-A"));
}

TEST_P(RequestParserPieces, ReadsAContentLengthBody) {
  const std::string req =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
  Parsed p = Parse(req, GetParam());
  ASSERT_EQ(p.state, RequestParser::State::kDone) << p.message;
  EXPECT_EQ(p.request.body, "hello");
  // The pipelined bytes after the body are left for the next request.
  EXPECT_EQ(p.consumed, req.size() - 3);
}

INSTANTIATE_TEST_SUITE_P(Pieces, RequestParserPieces,
                         ::testing::Values(0, 1, 2, 3, 7, 64));

TEST(RequestParserTest, AcceptsBareLfLineEndingsAndLeadingEmptyLines) {
  Parsed p = Parse("\r\n\nGET / HTTP/1.1\nHost: a\n\n");
  ASSERT_EQ(p.state, RequestParser::State::kDone) << p.message;
  EXPECT_EQ(p.request.path, "/");
}

TEST(RequestParserTest, Http10DefaultsToCloseAndNeedsNoHost) {
  Parsed p = Parse("GET /healthz HTTP/1.0\r\n\r\n");
  ASSERT_EQ(p.state, RequestParser::State::kDone);
  EXPECT_EQ(p.request.version_minor, 0);
  EXPECT_FALSE(p.request.keep_alive);
  Parsed ka = Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(ka.request.keep_alive);
  Parsed close =
      Parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(close.request.keep_alive);
}

TEST(RequestParserTest, AbsoluteFormTargetsGiveTheirPath) {
  Parsed p =
      Parse("GET http://example.test:8080/a/b?c=d HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(p.state, RequestParser::State::kDone);
  EXPECT_EQ(p.request.path, "/a/b");
  EXPECT_EQ(p.request.query, "c=d");
  EXPECT_EQ(Parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").request.path, "*");
  EXPECT_EQ(Parse("GET * HTTP/1.1\r\nHost: a\r\n\r\n").status, 400);
}

struct Refusal {
  std::string name;
  std::string bytes;
  int status;
};

class RequestParserRefuses : public ::testing::TestWithParam<Refusal> {};

TEST_P(RequestParserRefuses, WithTheRightStatus) {
  for (size_t piece : {0, 1, 5}) {
    Parsed p = Parse(GetParam().bytes, piece);
    EXPECT_EQ(p.state, RequestParser::State::kError) << "piece " << piece;
    EXPECT_EQ(p.status, GetParam().status) << p.message;
    EXPECT_FALSE(p.message.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, RequestParserRefuses,
    ::testing::Values(
        Refusal{"NoVersion", "GET /\r\n\r\n", 400},
        Refusal{"BadVersion", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400},
        Refusal{"Http2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        Refusal{"Http09", "GET / HTTP/0.9\r\n\r\n", 505},
        Refusal{"DoubleSpace", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Refusal{"ControlInTarget", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
                400},
        Refusal{"BadMethod", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Refusal{"RelativeTarget", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Refusal{"NoHost", "GET / HTTP/1.1\r\n\r\n", 400},
        Refusal{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                400},
        Refusal{"ObsFold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
                400},
        Refusal{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
        Refusal{"NoColon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
        Refusal{"NulInValue",
                std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29), 400},
        Refusal{"BareCr", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
        Refusal{"TeAndCl",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                "Transfer-Encoding: chunked\r\n\r\n",
                400},
        Refusal{"TeNotChunked",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                501},
        Refusal{"TeChunkedTwice",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, "
                "chunked\r\n\r\n",
                501},
        Refusal{"TeInHttp10",
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        Refusal{"ClDiffers",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                "Content-Length: 4\r\n\r\nabcd",
                400},
        Refusal{"ClNotDigits",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n",
                400},
        Refusal{"ClHuge",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
                "99999999999999999999999\r\n\r\n",
                400},
        Refusal{"ClOverLimit",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n",
                413},
        Refusal{"BadChunkSize",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                "\r\nzz\r\n",
                400},
        Refusal{"ChunkOverLimit",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                "\r\n100001\r\n",
                413},
        Refusal{"ChunkLongerThanSize",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                "\r\n2\r\nabc\r\n0\r\n\r\n",
                400},
        Refusal{"UnknownExpectation",
                "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n"
                "Content-Length: 1\r\n\r\n",
                417},
        Refusal{"EmptyLinesForever", "\r\n\r\n\r\n\r\n\r\n\r\n", 400}),
    [](const auto& info) { return info.param.name; });

TEST(RequestParserTest, LongRequestLineIs414BeforeItEnds) {
  HttpLimits limits;
  limits.max_request_line_bytes = 100;
  // No line ending yet: refused as soon as the limit is passed.
  Parsed p = Parse("GET /" + std::string(200, 'a'), 1, limits);
  EXPECT_EQ(p.status, 414);
  EXPECT_LE(p.consumed, 102u);
  EXPECT_EQ(
      Parse("GET /" + std::string(90, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 0,
            limits)
          .status,
      414);
}

TEST(RequestParserTest, HeaderBytesAndCountAre431) {
  HttpLimits limits;
  limits.max_header_bytes = 1000;
  limits.max_header_count = 10;
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 10; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(Parse(many + "\r\n", 0, limits).status, 431);
  // A million headers never get past the eleventh.
  std::string huge = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 100000; ++i) huge += "X: v\r\n";
  Parsed h = Parse(huge, 4096, limits);
  EXPECT_EQ(h.status, 431);
  EXPECT_LT(h.consumed, 200u);
  // One long header: refused before its end arrives.
  Parsed big = Parse(
      "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(5000, 'v'), 1, limits);
  EXPECT_EQ(big.status, 431);
  EXPECT_LT(big.consumed, 1100u);
}

TEST(RequestParserTest, ExpectContinueIsReportedForABody) {
  RequestParser parser(HttpLimits{});
  const std::string head =
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
      "Content-Length: 5\r\n\r\n";
  EXPECT_EQ(parser.Feed(head), head.size());
  EXPECT_EQ(parser.state(), RequestParser::State::kBody);
  EXPECT_TRUE(parser.request().expect_continue);
  EXPECT_EQ(parser.body_bytes_expected(), 5u);
  EXPECT_EQ(parser.Feed("hello"), 5u);
  EXPECT_EQ(parser.state(), RequestParser::State::kDone);
}

TEST(RequestParserTest, ResetParsesTheNextPipelinedRequest) {
  RequestParser parser(HttpLimits{});
  const std::string two =
      "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  const size_t first = parser.Feed(two);
  ASSERT_EQ(parser.state(), RequestParser::State::kDone);
  EXPECT_EQ(parser.request().path, "/a");
  parser.Reset();
  EXPECT_EQ(parser.Feed(std::string_view(two).substr(first)),
            two.size() - first);
  ASSERT_EQ(parser.state(), RequestParser::State::kDone);
  EXPECT_EQ(parser.request().path, "/b");
}

TEST(HttpMessageTest, PercentDecodeAndQuery) {
  EXPECT_EQ(PercentDecode("a%20b+c%zz%4", true), "a b c%zz%4");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  auto q = ParseQuery("message=hi+there&&x&types=a%2Cb&x=2");
  EXPECT_EQ(q.count("x"), 2u);
  EXPECT_EQ(q.find("message")->second, "hi there");
  EXPECT_EQ(q.find("types")->second, "a,b");
}

TEST(HttpMessageTest, HeadersAreCaseInsensitiveAndTokenLists) {
  HttpHeaders h;
  h.Add("Connection", "keep-alive, Upgrade");
  h.Add("X-A", "1");
  EXPECT_TRUE(h.HasToken("connection", "upgrade"));
  EXPECT_FALSE(h.HasToken("connection", "close"));
  h.Set("x-a", "2");
  EXPECT_EQ(h.Count("X-A"), 1u);
  EXPECT_EQ(h.GetOr("X-A"), "2");
  h.Remove("X-A");
  EXPECT_FALSE(h.Has("x-a"));
}

}  // namespace
}  // namespace agentstream::http
