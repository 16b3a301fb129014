// Issue 10, "What shows it works": 200 slowloris connections and 200 streams
// whose clients never read, on runs of large updates, against the real
// gateway, orchestrator and Synthetic specialist. Meanwhile /healthz answers,
// other clients' runs complete, and the gateway's and orchestrator's memory
// stay under what their flags promise (docs/GATEWAY.md and
// docs/ORCHESTRATOR.md, "Limits"). Prints the figures it measures.
//
// The abusers come from several loopback addresses, as many clients would;
// the per-client bounds are the defaults.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
using ::testing::StartsWith;

constexpr int kNeverReading = 200;
constexpr int kSlowloris = 200;
constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * 1024;
// Gateway flags of this test and the bound they promise per stream: the
// unsent bytes (--stream-buffer-kib) and the updates read from the
// orchestrator (--stream-queue-kib), each past its bound by at most one
// event, plus the gRPC call's flow-control window and its thread's stack.
constexpr int64_t kStreamBufferKib = 256;
constexpr int64_t kStreamQueueKib = 256;
constexpr int64_t kUpdateBytes = 16 * kKiB;
constexpr int64_t kGatewayPerStreamBytes =
    (kStreamBufferKib + kStreamQueueKib) * kKiB + 2 * 2 * kUpdateBytes +
    64 * kKiB + 128 * kKiB;
// Orchestrator flags: every run's log together, and one run's. Beside the
// logs, each stream may have up to its window (the gateway's
// --stream-queue-kib) sent and not yet credited: serialized, those bytes
// sit in the orchestrator's transport while the gateway is slow to read
// them (a busy machine).
constexpr int64_t kTotalLogBytes = 128 * kMiB;
constexpr int64_t kRunLogBytes = 2 * kMiB;
constexpr int64_t kOrchestratorPerStreamBytes = kStreamQueueKib * kKiB;
// What a process needs besides: allocator slack, gRPC's buffers.
constexpr int64_t kSlackBytes = 64 * kMiB;

// A connection from `source` with a small receive buffer (a client that
// never reads fills it quickly).
int ConnectSmallWindow(int port, const std::string& source) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  const int rcvbuf = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class AbuseTest : public TopologyTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_gateway_args = {
        absl::StrCat("--stream-buffer-kib=", kStreamBufferKib),
        absl::StrCat("--stream-queue-kib=", kStreamQueueKib),
        "--header-timeout-ms=3000"};
    options.extra_orchestrator_args = {
        absl::StrCat("--max-total-log-bytes=", kTotalLogBytes),
        absl::StrCat("--max-log-bytes=", kRunLogBytes)};
    StartTopology(options);
  }
};

TEST_F(AbuseTest, SlowlorisAndNeverReadingClientsDoNotHurtOthers) {
  Topology& t = *topology_;
  const int port = t.gateway_port();
  const int gateway_pid = t.process("gateway")->pid();
  const int orchestrator_pid = t.process("orchestrator")->pid();
  const int64_t gateway_start_kib = RssKibOrFail(gateway_pid);
  const int64_t orchestrator_start_kib = RssKibOrFail(orchestrator_pid);
  ASSERT_GT(gateway_start_kib, 0);
  ASSERT_GT(orchestrator_start_kib, 0);

  std::atomic<bool> running{true};
  int64_t gateway_max_kib = gateway_start_kib;
  int64_t orchestrator_max_kib = orchestrator_start_kib;
  std::thread sampler([&] {
    while (running.load()) {
      gateway_max_kib = std::max(gateway_max_kib, RssKibOrFail(gateway_pid));
      orchestrator_max_kib =
          std::max(orchestrator_max_kib, RssKibOrFail(orchestrator_pid));
      absl::SleepFor(absl::Milliseconds(100));
    }
  });

  // 200 streams on runs of 16 KiB updates whose clients read the response
  // head and nothing more.
  std::vector<int> stuck;
  int stuck_ok = 0;
  for (int i = 0; i < kNeverReading; ++i) {
    const int fd =
        ConnectSmallWindow(port, absl::StrCat("127.0.0.", 40 + i % 4));
    ASSERT_GE(fd, 0);
    stuck.push_back(fd);
    ASSERT_TRUE(SendAll(
        fd, absl::StrCat(
                "GET ",
                SyntheticChatPath(
                    {{"count", 100000}, {"size", kUpdateBytes}, {"rate", 20}}),
                " HTTP/1.1\r\nHost: x\r\n\r\n")));
  }
  for (int fd : stuck) {
    if (ReadUntil(fd, "\r\n\r\n", absl::Seconds(20))
            .rfind("HTTP/1.1 200 ", 0) == 0) {
      ++stuck_ok;
    }
  }
  EXPECT_EQ(stuck_ok, kNeverReading);

  // 200 slowloris connections: a byte of a header every 500 ms each.
  std::vector<int> slow;
  for (int i = 0; i < kSlowloris; ++i) {
    const int fd = ConnectLoopbackFrom(port, "127.0.0.50");
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
    SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  std::atomic<int> slow_408{0};
  std::atomic<int> slow_closed{0};
  std::thread loris([&] {
    std::vector<bool> done(slow.size(), false);
    const absl::Time end = absl::Now() + absl::Seconds(8);
    while (absl::Now() < end) {
      for (size_t i = 0; i < slow.size(); ++i) {
        if (done[i]) continue;
        ::send(slow[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        pollfd pfd{slow[i], POLLIN, 0};
        if (::poll(&pfd, 1, 0) > 0) {
          bool closed;
          const std::string r =
              ReadUntilClosed(slow[i], absl::Milliseconds(200), &closed);
          if (r.rfind("HTTP/1.1 408 ", 0) == 0) slow_408.fetch_add(1);
          if (closed) {
            slow_closed.fetch_add(1);
            done[i] = true;
          }
        }
      }
      absl::SleepFor(absl::Milliseconds(500));
    }
  });

  // Meanwhile: /healthz from another client, and other clients' runs.
  std::vector<double> healthz_ms;
  int healthz_failed = 0;
  std::thread prober([&] {
    const absl::Time end = absl::Now() + absl::Seconds(8);
    while (absl::Now() < end) {
      const int fd = ConnectLoopbackFrom(port, "127.0.0.60");
      const absl::Time start = absl::Now();
      const std::string r = SendAndRead(
          fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
          absl::Seconds(5));
      if (r.rfind("HTTP/1.1 200 ", 0) == 0) {
        healthz_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      } else {
        ++healthz_failed;
      }
      ::close(fd);
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
  int runs_complete = 0;
  for (int i = 0; i < 5; ++i) {
    const RawSseResult run = RawSse(NewRunRequest(
        port, SyntheticChatPath({{"count", 20}, {"size", 1024}, {"rate", 50}}),
        absl::StrCat("bystander-", i), absl::Seconds(30)));
    if (run.status == 200 && !run.events.empty() &&
        run.events.back().event == "done" &&
        run.events.back().json.value("status", "") == "complete") {
      ++runs_complete;
    } else {
      ADD_FAILURE() << "bystander run " << i << ": " << run.status << " "
                    << run.error << " "
                    << (run.events.empty() ? std::string("no events")
                                           : run.events.back().data);
      for (const SseEvent& e : run.events) {
        if (e.event != "message" || e.json.value("type", "") == "error" ||
            e.json.value("type", "") == "complete") {
          std::cout << "  " << e.event << " " << e.data.substr(0, 300) << "\n";
        }
      }
    }
  }
  prober.join();
  loris.join();
  running = false;
  sampler.join();

  std::sort(healthz_ms.begin(), healthz_ms.end());
  const auto pct = [&](double p) {
    return healthz_ms.empty()
               ? -1.0
               : healthz_ms[std::min(
                     healthz_ms.size() - 1,
                     static_cast<size_t>(p * healthz_ms.size()))];
  };
  const int64_t gateway_growth = (gateway_max_kib - gateway_start_kib) * kKiB;
  const int64_t orchestrator_growth =
      (orchestrator_max_kib - orchestrator_start_kib) * kKiB;
  const int64_t gateway_bound =
      kNeverReading * kGatewayPerStreamBytes + kSlackBytes;
  const int64_t orchestrator_bound =
      kTotalLogBytes + kNeverReading * kOrchestratorPerStreamBytes +
      kSlackBytes;
  std::cout << "[figure] " << stuck_ok << " never-reading streams, "
            << slow_408.load() << "/" << kSlowloris
            << " slowloris answered 408 (" << slow_closed.load()
            << " closed); /healthz " << healthz_ms.size() << " answered, "
            << healthz_failed << " failed, p50 " << pct(0.5) << " ms, p99 "
            << pct(0.99) << " ms; " << runs_complete
            << "/5 other runs complete\n"
            << "[figure] gateway RSS +" << gateway_growth / kMiB
            << " MiB (bound " << gateway_bound / kMiB
            << " MiB), orchestrator RSS +" << orchestrator_growth / kMiB
            << " MiB (bound " << orchestrator_bound / kMiB << " MiB)\n";

  EXPECT_EQ(slow_408.load(), kSlowloris);
  EXPECT_EQ(slow_closed.load(), kSlowloris);
  EXPECT_EQ(healthz_failed, 0);
  EXPECT_GT(healthz_ms.size(), 10u);
  EXPECT_EQ(runs_complete, 5);
  if (RssBoundsApply()) {
    EXPECT_LE(gateway_growth, gateway_bound);
    EXPECT_LE(orchestrator_growth, orchestrator_bound);
  }
  ASSERT_TRUE(t.process("gateway")->Running());
  ASSERT_TRUE(t.process("orchestrator")->Running());
  for (int fd : stuck) ::close(fd);
  for (int fd : slow) ::close(fd);
}

}  // namespace
}  // namespace agentstream::testing
