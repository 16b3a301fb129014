// Issue 10, "Why": every request an attacker tried against ./run.sh, sent to
// the real gateway binary in front of the real orchestrator and Synthetic
// specialist. Each test checks the right answer (4xx/405/408/429/431), that
// the gateway is still the same process, and that a normal run completes
// right after. The gateway runs with the smallest handler stacks it accepts
// (--thread-stack-kib=64): nothing a request holds may recurse by its input.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"
#include "tests/testing/loopback.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

class HostileRequestsTest : public TopologyTest {
 protected:
  void SetUp() override { Start({}); }
  void Start(std::vector<std::string> extra_gateway_args) {
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_gateway_args = {"--thread-stack-kib=64",
                                  "--header-timeout-ms=1000",
                                  "--body-timeout-ms=1000"};
    for (auto& a : extra_gateway_args) {
      options.extra_gateway_args.push_back(std::move(a));
    }
    StartTopology(options);
    gateway_pid_ = topology_->process("gateway")->pid();
  }

  int port() const { return topology_->gateway_port(); }

  // Sends raw bytes on a new connection; what came back until the gateway
  // closed it (or `timeout`).
  std::string Send(const std::string& bytes,
                   absl::Duration timeout = absl::Seconds(10)) {
    Socket s(ConnectLoopback(port()));
    EXPECT_GE(s.get(), 0);
    return SendAndRead(s.get(), bytes, timeout);
  }

  // The gateway is the process it was, answers /healthz, and a normal run
  // completes through it.
  void ExpectGatewayUpAndARunCompletes() {
    ASSERT_TRUE(topology_->process("gateway")->Running());
    EXPECT_EQ(topology_->process("gateway")->pid(), gateway_pid_);
    EXPECT_THAT(
        Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        StartsWith("HTTP/1.1 200 "));
    const RawSseResult run = RawSse(
        NewRunRequest(port(), SyntheticChatPath({{"count", 5}, {"rate", 0}}),
                      absl::StrCat("after-", ++runs_)));
    EXPECT_EQ(run.status, 200) << run.error;
    ASSERT_FALSE(run.events.empty());
    EXPECT_EQ(run.events.back().event, "done");
    EXPECT_EQ(run.events.back().json.value("status", ""), "complete");
  }

  double RunsStarted() {
    auto v = OrchestratorMetric(*topology_, "runs_started_total");
    return v;
  }

  pid_t gateway_pid_ = 0;
  int runs_ = 0;
};

TEST_F(HostileRequestsTest, LongPathsAre404Or414NeverACrash) {
  for (size_t n : {300u, 5000u, 60000u}) {
    const std::string r =
        Send(absl::StrCat("GET /", std::string(n, 'a'),
                          " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_THAT(r, StartsWith("HTTP/1.1 404 ")) << n;
    EXPECT_THAT(r, HasSubstr("\"error\":\"not_found\""));
  }
  EXPECT_THAT(Send(absl::StrCat("GET /", std::string(1 << 20, 'a'),
                                " HTTP/1.1\r\nHost: x\r\n\r\n")),
              StartsWith("HTTP/1.1 414 "));
  // A path of many segments and escapes.
  std::string odd = "/api/runs/";
  for (int i = 0; i < 5000; ++i) odd += "%2e%2E/";
  EXPECT_THAT(
      Send("GET " + odd + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      StartsWith("HTTP/1.1 404 "));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, RangeHeadersAreIgnoredOnAnyRoute) {
  std::string ranges = "bytes=0-1";
  while (ranges.size() < 260) ranges += ",0-1";
  for (const char* path : {"/healthz", "/", "/api/specialists"}) {
    const std::string r = Send(
        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\nRange: ", ranges,
                     "\r\nConnection: close\r\n\r\n"));
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 ")) << path;
  }
  std::string huge = "bytes=0-1";
  while (huge.size() < 30000) huge += ",0-1";
  EXPECT_THAT(Send(absl::StrCat("GET /healthz HTTP/1.1\r\nHost: x\r\nRange: ",
                                huge, "\r\nConnection: close\r\n\r\n")),
              StartsWith("HTTP/1.1 200 "));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, AMillionHeadersAre431AndLeaveNoMemoryBehind) {
  std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 1000000; ++i) request += "X-A: b\r\n";
  request += "\r\n";
  const int64_t before_kib = RssKibOrFail(gateway_pid_);
  for (int i = 0; i < 4; ++i) {
    const std::string r = Send(request);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 431 ")) << r.substr(0, 200);
    EXPECT_THAT(r, HasSubstr("header_fields_too_large"));
  }
  const int64_t after_kib = RssKibOrFail(gateway_pid_);
  std::cout << "[figure] gateway RSS " << before_kib << " KiB before, "
            << after_kib << " KiB after four requests of " << request.size()
            << " bytes (1,000,000 headers each)\n";
  if (RssBoundsApply()) {
    EXPECT_LT(after_kib - before_kib, 8 * 1024);
  }
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest,
       AClientThatNeverReadsLargeUpdatesCostsOnlyItsBound) {
  // A run of 1 MiB updates, 20 a second, whose client reads the response
  // head and nothing more (with a small receive window). The gateway holds
  // at most --stream-buffer-kib unsent (1 MiB) and --stream-queue-kib of
  // updates (1 MiB), each past its bound by one event, then stops reading
  // the call; what it cannot hold stays in the orchestrator's log.
  const int64_t before_kib = RssKibOrFail(gateway_pid_);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  Socket s(fd);
  const int rcvbuf = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_TRUE(SendAll(
      fd, absl::StrCat("GET ",
                       SyntheticChatPath(
                           {{"count", 200}, {"size", 1 << 20}, {"rate", 20}}),
                       " HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_THAT(ReadUntil(fd, "\r\n\r\n", absl::Seconds(10)),
              StartsWith("HTTP/1.1 200 "));
  // Sampled for 8 s while the run makes 20 MiB a second: the growth must
  // stop (the second half adds no more than allocator noise), and stay
  // under the bound.
  int64_t max_kib = before_kib;
  int64_t half_kib = 0;
  const absl::Time start = absl::Now();
  while (absl::Now() < start + absl::Seconds(8)) {
    max_kib = std::max(max_kib, RssKibOrFail(gateway_pid_));
    if (half_kib == 0 && absl::Now() > start + absl::Seconds(4)) {
      half_kib = max_kib;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  const int64_t growth_kib = max_kib - before_kib;
  // The two bounds (1 MiB each), an event past each, gRPC's receive window
  // for the call and the allocator's slack.
  const int64_t bound_kib = 32 * 1024;
  std::cout << "[figure] a client that never reads 1 MiB updates (20 MiB/s) "
            << "for 8 s: gateway RSS +" << half_kib - before_kib
            << " KiB after 4 s, +" << growth_kib << " KiB after 8 s (bound "
            << bound_kib << " KiB)\n";
  if (RssBoundsApply()) {
    EXPECT_LE(growth_kib, bound_kib);
    EXPECT_LE(max_kib - half_kib, 4 * 1024);
  }
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, HeadNeverStartsARun) {
  const double started = RunsStarted();
  const std::string r = Send(
      "HEAD /api/chat/stream?message=x HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(r, HasSubstr("Allow: GET, OPTIONS, POST\r\n"));
  // A HEAD answer has no body.
  EXPECT_THAT(r.substr(r.find("\r\n\r\n") + 4), ::testing::IsEmpty());
  EXPECT_THAT(Send("HEAD /api/runs/x/stream HTTP/1.1\r\nHost: x\r\n"
                   "Connection: close\r\n\r\n"),
              StartsWith("HTTP/1.1 405 "));
  // HEAD where a GET does no work is answered like GET without a body.
  const std::string h =
      Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(h, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(h, HasSubstr("Content-Length: 15\r\n"));
  EXPECT_EQ(h.substr(h.find("\r\n\r\n") + 4), "");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(RunsStarted(), started);
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, OtherMethodsOnKnownRoutesAre405WithAllow) {
  const std::string put = Send(
      "PUT /api/chat/stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_THAT(put, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(put, HasSubstr("Allow: GET, OPTIONS, POST\r\n"));
  EXPECT_THAT(put, HasSubstr("\"error\":\"method_not_allowed\""));
  const std::string brew = Send(
      "BREW /api/runs/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(brew, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(brew, HasSubstr("Allow: DELETE, OPTIONS\r\n"));
  const std::string options = Send(
      "OPTIONS /api/chat/stream HTTP/1.1\r\nHost: x\r\nConnection: "
      "close\r\n\r\n");
  EXPECT_THAT(options, StartsWith("HTTP/1.1 204 "));
  EXPECT_THAT(options, HasSubstr("Allow: GET, OPTIONS, POST\r\n"));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, PipelinedRequestsAreAllAnsweredInOrder) {
  const std::string r = Send(
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\n\r\n"
      "GET /api/specialists HTTP/1.1\r\nHost: x\r\nX-Request-Id: two\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: three\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: four\r\n"
      "Connection: close\r\n\r\n");
  std::vector<size_t> at;
  for (const char* id : {"X-Request-Id: one", "X-Request-Id: two",
                         "X-Request-Id: three", "X-Request-Id: four"}) {
    at.push_back(r.find(id));
    ASSERT_NE(at.back(), std::string::npos) << id << "\n" << r;
  }
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
  EXPECT_THAT(r, HasSubstr("Synthetic"));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, Http10ClientsGetResponsesTheyCanRead) {
  const std::string h = Send("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_THAT(h, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(h, HasSubstr("Content-Length: 15\r\n"));
  EXPECT_THAT(h, Not(HasSubstr("chunked")));
  // A whole run over HTTP/1.0: the stream is plain SSE ended by closing.
  const std::string s =
      Send(absl::StrCat("GET ", SyntheticChatPath({{"count", 3}, {"rate", 0}}),
                        " HTTP/1.0\r\n\r\n"));
  EXPECT_THAT(s, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(s, Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(s, HasSubstr("Connection: close\r\n"));
  const std::string body = s.substr(s.find("\r\n\r\n") + 4);
  EXPECT_THAT(body, StartsWith("retry: "));
  EXPECT_THAT(body, HasSubstr("event: done\ndata: {\"type\":\"done\""));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, MalformedBodiesAreRefusedAtOnce) {
  const absl::Time start = absl::Now();
  EXPECT_THAT(Send("POST /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
              StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Send("POST /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n"),
              StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Send("POST /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"),
              StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Send("POST /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 999999999\r\n\r\n"),
              StartsWith("HTTP/1.1 413 "));
  // A short body whose client is done sending.
  Socket s(ConnectLoopback(port()));
  ASSERT_TRUE(SendAll(s.get(),
                      "POST /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 50\r\n\r\n{\"message\":"));
  ::shutdown(s.get(), SHUT_WR);
  bool closed;
  EXPECT_THAT(ReadUntilClosed(s.get(), absl::Seconds(5), &closed),
              StartsWith("HTTP/1.1 400 "));
  const absl::Duration refused_in = absl::Now() - start;
  std::cout << "[figure] five malformed bodies refused in "
            << absl::FormatDuration(refused_in) << "\n";
  EXPECT_LT(refused_in, absl::Seconds(2));
  // A short body from a client that stays: the body deadline (1 s here).
  const absl::Time slow_start = absl::Now();
  EXPECT_THAT(Send("POST /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 50\r\n\r\n{\"mess"),
              StartsWith("HTTP/1.1 408 "));
  EXPECT_LT(absl::Now() - slow_start, absl::Seconds(5));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, ASlowHeadIs408AtTheDeadlineWhateverItSends) {
  Socket s(ConnectLoopback(port()));
  const absl::Time start = absl::Now();
  const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  std::string got;
  bool closed = false;
  for (size_t i = 0; i < head.size() + 100 && !closed; ++i) {
    if (!SendAll(s.get(), std::string(1, i < head.size() ? head[i] : 'a'))) {
      break;
    }
    got += ReadUntilClosed(s.get(), absl::Milliseconds(50), &closed);
  }
  if (!closed) got += ReadUntilClosed(s.get(), absl::Seconds(5), &closed);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 408 "));
  EXPECT_THAT(got, HasSubstr("request_timeout"));
  EXPECT_TRUE(closed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ExpectGatewayUpAndARunCompletes();
}

TEST_F(HostileRequestsTest, OneClientCannotStartRunsWithoutBound) {
  // 150 runs at once from one address: the burst (100) passes, the rest
  // are 429 with Retry-After until tokens come back (50 a second).
  std::vector<int> statuses(150, 0);
  std::vector<std::string> retry_after(150);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 150; ++i) {
    threads.emplace_back([&, i] {
      Socket s(ConnectLoopbackFrom(port(), "127.0.0.20"));
      const std::string r = SendAndRead(
          s.get(),
          absl::StrCat("GET ", SyntheticChatPath({{"count", 1}, {"rate", 0}}),
                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
          absl::Seconds(30));
      if (r.size() > 12) statuses[i] = std::stoi(r.substr(9, 3));
      const size_t ra = r.find("Retry-After: ");
      if (ra != std::string::npos) retry_after[i] = r.substr(ra + 13, 1);
      if (statuses[i] == 429) {
        EXPECT_THAT(r, HasSubstr("too many runs started by this client"));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  int ok = 0, limited = 0, other = 0;
  for (int i = 0; i < 150; ++i) {
    if (statuses[i] == 200) {
      ++ok;
    } else if (statuses[i] == 429) {
      ++limited;
      EXPECT_FALSE(retry_after[i].empty());
    } else {
      ++other;
    }
  }
  std::cout << "[figure] 150 runs at once from one address in " << elapsed
            << " s: " << ok << " started, " << limited << " refused 429, "
            << other << " other\n";
  EXPECT_EQ(other, 0);
  EXPECT_GE(ok, 100);
  EXPECT_LE(ok, 100 + static_cast<int>(50 * elapsed) + 1);
  EXPECT_GT(limited, 0);
  // Another client is not affected.
  Socket other_client(ConnectLoopbackFrom(port(), "127.0.0.21"));
  EXPECT_THAT(
      SendAndRead(other_client.get(),
                  absl::StrCat("GET ", SyntheticChatPath({{"count", 1}}),
                               " HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\n\r\n"),
                  absl::Seconds(30)),
      StartsWith("HTTP/1.1 200 "));
  ExpectGatewayUpAndARunCompletes();
}

// The stream bound at 8 (256 by default), to hold it with a few streams.
class SmallStreamBoundTest : public HostileRequestsTest {
 protected:
  void SetUp() override { Start({"--max-streams-per-client=8"}); }
};

TEST_F(SmallStreamBoundTest, OneClientCannotHoldMoreThanItsStreams) {
  std::vector<Socket> held;
  for (int i = 0; i < 8; ++i) {
    held.emplace_back(ConnectLoopbackFrom(port(), "127.0.0.30"));
    ASSERT_TRUE(SendAll(
        held.back().get(),
        absl::StrCat("GET ", SyntheticChatPath({{"count", 1000}, {"rate", 2}}),
                     " HTTP/1.1\r\nHost: x\r\n\r\n")));
    EXPECT_THAT(
        ReadUntil(held.back().get(), "event: connected", absl::Seconds(10)),
        StartsWith("HTTP/1.1 200 "));
  }
  Socket ninth(ConnectLoopbackFrom(port(), "127.0.0.30"));
  const std::string r = SendAndRead(
      ninth.get(),
      absl::StrCat("GET ", SyntheticChatPath({{"count", 1}}),
                   " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      absl::Seconds(10));
  EXPECT_THAT(r, StartsWith("HTTP/1.1 429 "));
  EXPECT_THAT(r, HasSubstr("Retry-After: "));
  EXPECT_THAT(r, HasSubstr("too many open streams from this client"));
  // An attach counts too.
  Socket attach(ConnectLoopbackFrom(port(), "127.0.0.30"));
  EXPECT_THAT(
      SendAndRead(attach.get(),
                  "GET /api/runs/some-run/stream HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n",
                  absl::Seconds(10)),
      StartsWith("HTTP/1.1 429 "));
  // One closed: its place is free again (once the gateway noticed).
  held.pop_back();
  ASSERT_TRUE(WaitFor(
      [&] {
        Socket again(ConnectLoopbackFrom(port(), "127.0.0.30"));
        return SendAndRead(
                   again.get(),
                   absl::StrCat("GET ", SyntheticChatPath({{"count", 1}}),
                                " HTTP/1.1\r\nHost: x\r\n"
                                "Connection: close\r\n\r\n"),
                   absl::Seconds(10))
                   .rfind("HTTP/1.1 200 ", 0) == 0;
      },
      absl::Seconds(10)));
  ExpectGatewayUpAndARunCompletes();
}

}  // namespace
}  // namespace agentstream::testing
