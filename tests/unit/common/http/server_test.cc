// The HTTP server over real loopback sockets: limits, deadlines, framing,
// pipelining, streaming and its bound, per-address connection caps.
#include "common/http/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback.h"

namespace agentstream::http {
namespace {

using ::agentstream::testing::ConnectLoopback;
using ::agentstream::testing::ConnectLoopbackFrom;
using ::agentstream::testing::ReadUntil;
using ::agentstream::testing::ReadUntilClosed;
using ::agentstream::testing::SendAll;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<HttpServer>(std::move(options));
    server_->Route("GET", "/hello",
                   [](std::shared_ptr<Exchange> ex) {
                     HttpResponse r;
                     r.headers.Add("Content-Type", "text/plain");
                     r.body = "hello " + std::string(ex->request().query);
                     ex->Respond(std::move(r));
                   },
                   {.inline_handler = true, .serves_head = true});
    server_->Route("GET", "/slow", [](std::shared_ptr<Exchange> ex) {
      absl::SleepFor(absl::Milliseconds(200));
      HttpResponse r;
      r.body = "slow";
      ex->Respond(std::move(r));
    });
    server_->Route("POST", "/echo", [](std::shared_ptr<Exchange> ex) {
      HttpResponse r;
      r.body = ex->request().body;
      ex->Respond(std::move(r));
    });
    server_->Route("GET", "/starts-work", [this](std::shared_ptr<Exchange> ex) {
      work_started_.fetch_add(1);
      ex->Respond(HttpResponse{});
    });
    server_->Route("GET", "/forget", [](std::shared_ptr<Exchange>) {});
    server_->Route("GET", "/stream", [this](std::shared_ptr<Exchange> ex) {
      HttpHeaders h;
      h.Add("Content-Type", "text/event-stream");
      ASSERT_TRUE(ex->StartStream(200, h));
      for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(ex->Write(absl::StrCat("data: ", i, "\n\n")),
                  Exchange::WriteResult::kOk);
      }
      ex->End();
      streams_done_.fetch_add(1);
    });
    server_->Route("GET", "/flood", [this](std::shared_ptr<Exchange> ex) {
      ex->StartStream(200, HttpHeaders());
      const std::string chunk(64 * 1024, 'x');
      size_t most_queued = 0;
      bool saw_full = false;
      while (true) {
        const Exchange::WriteResult r = ex->Write(chunk);
        most_queued = std::max(most_queued, ex->queued_bytes());
        if (r == Exchange::WriteResult::kClosed) break;
        if (r == Exchange::WriteResult::kFull) {
          saw_full = true;
          if (!ex->WaitWritable(absl::Seconds(10))) break;
        }
      }
      flood_most_queued_ = most_queued;
      flood_saw_full_ = saw_full;
      flood_done_.Notify();
    });
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  std::string Roundtrip(const std::string& request,
                        absl::Duration timeout = absl::Seconds(5)) {
    Fd fd(ConnectLoopback(port_));
    EXPECT_TRUE(SendAll(fd.get(), request));
    bool closed;
    return ReadUntilClosed(fd.get(), timeout, &closed);
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::atomic<int> work_started_{0};
  std::atomic<int> streams_done_{0};
  absl::Notification flood_done_;
  std::atomic<size_t> flood_most_queued_{0};
  std::atomic<bool> flood_saw_full_{false};
};

TEST_F(HttpServerTest, AnswersAndKeepsTheConnection) {
  Start();
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(fd.get(), "GET /hello?x HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::string r = ReadUntil(fd.get(), "hello x", absl::Seconds(5));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 7\r\n"));
  EXPECT_THAT(r, HasSubstr("Connection: keep-alive\r\n"));
  ASSERT_TRUE(SendAll(fd.get(), "GET /hello?y HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd.get(), "hello y", absl::Seconds(5)),
              HasSubstr("hello y"));
}

TEST_F(HttpServerTest, UnknownPathsAre404AndOtherMethods405WithAllow) {
  Start();
  EXPECT_THAT(
      Roundtrip("GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
      StartsWith("HTTP/1.1 404 "));
  const std::string r =
      Roundtrip("PUT /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(r, HasSubstr("Allow: OPTIONS, POST\r\n"));
  const std::string o = Roundtrip(
      "OPTIONS /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(o, StartsWith("HTTP/1.1 204 "));
  EXPECT_THAT(o, HasSubstr("Allow: OPTIONS, POST\r\n"));
}

TEST_F(HttpServerTest, HeadGetsNoBodyAndNeverStartsWork) {
  Start();
  const std::string r = Roundtrip(
      "HEAD /hello?abc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(r, HasSubstr("Content-Length: 9\r\n"));
  EXPECT_THAT(r, Not(HasSubstr("hello")));
  const std::string w = Roundtrip(
      "HEAD /starts-work HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(w, StartsWith("HTTP/1.1 405 "));
  EXPECT_EQ(work_started_.load(), 0);
}

TEST_F(HttpServerTest, Http10GetsNoChunkedFramingAndTheStreamEndsByClosing) {
  Start();
  const std::string r = Roundtrip("GET /stream HTTP/1.0\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(r, Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(r, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\n\r\ndata: 0\n\ndata: 1\n\ndata: 2\n\n"));
  const std::string h = Roundtrip("GET /hello HTTP/1.0\r\n\r\n");
  EXPECT_THAT(h, HasSubstr("Content-Length: 6\r\n"));
}

TEST_F(HttpServerTest, Http11StreamsAreChunkedAndEndWithTheLastChunk) {
  Start();
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(fd.get(), "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::string r = ReadUntil(fd.get(), "0\r\n\r\n", absl::Seconds(5));
  EXPECT_THAT(r, HasSubstr("Transfer-Encoding: chunked\r\n"));
  EXPECT_THAT(r, HasSubstr("9\r\ndata: 0\n\n\r\n"));
  // The connection stays for the next request.
  ASSERT_TRUE(SendAll(fd.get(), "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd.get(), "hello ", absl::Seconds(5)),
              HasSubstr("hello "));
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  const std::string r = Roundtrip(
      "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /hello?2 HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nfour"
      "GET /hello?4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  const size_t a = r.find("slow");
  const size_t b = r.find("hello 2");
  const size_t c = r.find("four");
  const size_t d = r.find("hello 4");
  ASSERT_NE(a, std::string::npos) << r;
  ASSERT_NE(b, std::string::npos) << r;
  ASSERT_NE(c, std::string::npos) << r;
  ASSERT_NE(d, std::string::npos) << r;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
}

TEST_F(HttpServerTest, LimitsAreAnsweredBeforeRoutingAndTheServerLivesOn) {
  HttpServerOptions o;
  o.limits.max_request_line_bytes = 1024;
  Start(o);
  const std::string long_path(300000, 'a');
  EXPECT_THAT(Roundtrip("GET /" + long_path + " HTTP/1.1\r\nHost: a\r\n\r\n"),
              StartsWith("HTTP/1.1 414 "));
  std::string many = "GET /hello HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 200000; ++i) many += "X: y\r\n";
  EXPECT_THAT(Roundtrip(many + "\r\n"), StartsWith("HTTP/1.1 431 "));
  EXPECT_THAT(Roundtrip("GET /hello HTTP/1.1\r\nHost: a\r\nRange: bytes=" +
                        std::string(100000, '1') + "\r\n\r\n"),
              StartsWith("HTTP/1.1 431 "));
  EXPECT_THAT(
      Roundtrip("GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
      StartsWith("HTTP/1.1 200 "));
}

TEST_F(HttpServerTest, MalformedBodiesAreRefusedAtOnce) {
  Start();
  const absl::Time start = absl::Now();
  EXPECT_THAT(Roundtrip("POST /echo HTTP/1.1\r\nHost: a\r\n"
                        "Transfer-Encoding: chunked\r\n\r\nxyz\r\n"),
              StartsWith("HTTP/1.1 400 "));
  // A short body whose client half-closes: nothing more can come.
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(fd.get(),
                      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: "
                      "100\r\n\r\nshort"));
  ::shutdown(fd.get(), SHUT_WR);
  bool closed;
  EXPECT_THAT(ReadUntilClosed(fd.get(), absl::Seconds(5), &closed),
              StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(closed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(HttpServerTest, AHeadThatDoesNotArriveInTimeIs408AndClosed) {
  HttpServerOptions o;
  o.header_timeout = absl::Milliseconds(500);
  Start(o);
  Fd fd(ConnectLoopback(port_));
  const absl::Time start = absl::Now();
  // A byte every 100 ms (slowloris): the deadline is not moved by bytes.
  std::string head = "GET /hello HTTP/1.1\r\nHost: a\r\n";
  bool closed = false;
  std::string got;
  for (char c : head) {
    if (!SendAll(fd.get(), std::string(1, c))) break;
    got += ReadUntilClosed(fd.get(), absl::Milliseconds(100), &closed);
    if (closed) break;
  }
  if (!closed) got += ReadUntilClosed(fd.get(), absl::Seconds(5), &closed);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 408 "));
  EXPECT_TRUE(closed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(server_->stats().header_timeouts, 1);

  // A connection that sends nothing is closed without an answer.
  Fd idle(ConnectLoopback(port_));
  EXPECT_EQ(ReadUntilClosed(idle.get(), absl::Seconds(5), &closed), "");
  EXPECT_TRUE(closed);
}

TEST_F(HttpServerTest, ABodyThatDoesNotArriveInTimeIs408) {
  HttpServerOptions o;
  o.body_timeout = absl::Milliseconds(300);
  Start(o);
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(
      fd.get(),
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n123"));
  bool closed;
  EXPECT_THAT(ReadUntilClosed(fd.get(), absl::Seconds(5), &closed),
              StartsWith("HTTP/1.1 408 "));
  EXPECT_TRUE(closed);
  EXPECT_EQ(server_->stats().body_timeouts, 1);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosed) {
  HttpServerOptions o;
  o.idle_timeout = absl::Milliseconds(300);
  Start(o);
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(fd.get(), "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));
  bool closed;
  const std::string r = ReadUntilClosed(fd.get(), absl::Seconds(5), &closed);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
  EXPECT_TRUE(closed);
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimAnswer) {
  Start();
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(
      SendAll(fd.get(),
              "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
              "Content-Length: 5\r\n\r\n"));
  EXPECT_THAT(ReadUntil(fd.get(), "\r\n\r\n", absl::Seconds(5)),
              StartsWith("HTTP/1.1 100 Continue\r\n\r\n"));
  ASSERT_TRUE(SendAll(fd.get(), "hello"));
  EXPECT_THAT(ReadUntil(fd.get(), "hello", absl::Seconds(5)),
              HasSubstr("200 OK"));
}

TEST_F(HttpServerTest, AHandlerThatForgetsToAnswerGives500) {
  Start();
  EXPECT_THAT(
      Roundtrip("GET /forget HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
      StartsWith("HTTP/1.1 500 "));
}

TEST_F(HttpServerTest, AStreamQueuesAtMostItsBoundForAClientThatNeverReads) {
  HttpServerOptions o;
  o.max_queued_response_bytes = 256 * 1024;
  o.write_timeout = absl::Milliseconds(500);
  Start(o);
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(fd.get(), "GET /flood HTTP/1.1\r\nHost: a\r\n\r\n"));
  // Never read: the socket buffers fill, the bound stops the handler, and
  // the write deadline closes the connection.
  ASSERT_TRUE(flood_done_.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(flood_saw_full_.load());
  // The bound and one write's worth (plus chunk framing).
  EXPECT_LE(flood_most_queued_.load(), 256u * 1024 + 64 * 1024 + 64);
  EXPECT_GE(server_->stats().write_timeouts, 1);
}

TEST_F(HttpServerTest, ConnectionsPerAddressAreBounded) {
  HttpServerOptions o;
  o.max_connections_per_address = 3;
  auto exempt = TrustedProxies::Parse({"127.0.0.9"});
  ASSERT_TRUE(exempt.ok());
  o.exempt_proxies = *exempt;
  Start(o);
  std::vector<std::unique_ptr<Fd>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(
        std::make_unique<Fd>(ConnectLoopbackFrom(port_, "127.0.0.2")));
    ASSERT_GE(held.back()->get(), 0);
  }
  // Let the server accept them before the next one.
  absl::SleepFor(absl::Milliseconds(100));
  Fd extra(ConnectLoopbackFrom(port_, "127.0.0.2"));
  bool closed;
  EXPECT_THAT(ReadUntilClosed(extra.get(), absl::Seconds(5), &closed),
              StartsWith("HTTP/1.1 429 "));
  EXPECT_TRUE(closed);
  // Another address, and the exempt proxy, are not bound by it.
  Fd other(ConnectLoopbackFrom(port_, "127.0.0.3"));
  ASSERT_TRUE(SendAll(other.get(), "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_THAT(ReadUntil(other.get(), "hello", absl::Seconds(5)),
              StartsWith("HTTP/1.1 200 "));
  std::vector<std::unique_ptr<Fd>> proxy;
  for (int i = 0; i < 5; ++i) {
    proxy.push_back(
        std::make_unique<Fd>(ConnectLoopbackFrom(port_, "127.0.0.9")));
    ASSERT_TRUE(
        SendAll(proxy.back()->get(), "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_THAT(ReadUntil(proxy.back()->get(), "hello", absl::Seconds(5)),
                StartsWith("HTTP/1.1 200 "));
  }
  // Closing one frees its place.
  held.pop_back();
  absl::SleepFor(absl::Milliseconds(100));
  Fd again(ConnectLoopbackFrom(port_, "127.0.0.2"));
  ASSERT_TRUE(SendAll(again.get(), "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_THAT(ReadUntil(again.get(), "hello", absl::Seconds(5)),
              StartsWith("HTTP/1.1 200 "));
}

TEST_F(HttpServerTest, ConnectionsInAllAreBounded) {
  HttpServerOptions o;
  o.max_connections = 2;
  Start(o);
  Fd a(ConnectLoopback(port_));
  Fd b(ConnectLoopback(port_));
  absl::SleepFor(absl::Milliseconds(100));
  Fd c(ConnectLoopback(port_));
  bool closed;
  const std::string r = ReadUntilClosed(c.get(), absl::Seconds(5), &closed);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(r, HasSubstr("Retry-After: 2\r\n"));
  EXPECT_GE(server_->stats().connections_refused, 1);
}

TEST_F(HttpServerTest, StopEndsOpenConnections) {
  Start();
  Fd fd(ConnectLoopback(port_));
  ASSERT_TRUE(SendAll(fd.get(), "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"));
  ReadUntil(fd.get(), "hello", absl::Seconds(5));
  server_->Stop();
  bool closed;
  ReadUntilClosed(fd.get(), absl::Seconds(5), &closed);
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace agentstream::http
