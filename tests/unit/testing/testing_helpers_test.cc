// The test helpers of tests/testing/ must not turn a failure into a figure:
// an unreachable metrics endpoint is an error, never 0; a temporary
// directory that cannot be made is an error, never an existing one; an
// unreadable VmRSS is an error, never 0. And what ScrapeMetric reads as 0
// (a labelled series absent while its family is declared) is how the real
// exporters render a labelled counter not yet counted.
#include <httplib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "orchestrator/metrics.h"
#include "specialists/sdk/metrics.h"
#include "tests/testing/resumable_sse.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

// Serves `body` at GET /metrics with `status` on a loopback port.
class MetricsServer {
 public:
  MetricsServer(std::string body, int status = 200) {
    server_.Get("/metrics", [body, status](const httplib::Request&,
                                           httplib::Response& res) {
      res.status = status;
      res.set_content(body, "text/plain; version=0.0.4");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs: wait for it (bounded).
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_.is_running() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  ~MetricsServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// A loopback port nothing listens on.
int DeadPort() {
  absl::StatusOr<int> port = UnusedLoopbackPort();
  EXPECT_THAT(port, IsOk());
  return port.value_or(0);
}

constexpr char kText[] =
    "# HELP x_runs_total Runs.\n"
    "# TYPE x_runs_total counter\n"
    "x_runs_total 3\n"
    "# TYPE x_cancelled_total counter\n"
    "x_cancelled_total{reason=\"request\"} 2\n"
    "x_cancelled_total{reason=\"grace\"} 0\n"
    "# TYPE x_calls_total counter\n"
    "# TYPE x_active gauge\n"
    "x_active{specialist=\"Synthetic\"} 1\n";

TEST(ScrapeMetricTest, ReadsExactSeries) {
  MetricsServer server(kText);
  EXPECT_THAT(ScrapeMetric(server.port(), "x_runs_total"), IsOkAndHolds(3.0));
  EXPECT_THAT(
      ScrapeMetric(server.port(), "x_cancelled_total{reason=\"request\"}"),
      IsOkAndHolds(2.0));
  EXPECT_THAT(
      ScrapeMetric(server.port(), "x_cancelled_total{reason=\"grace\"}"),
      IsOkAndHolds(0.0));
  // A bare name: the one sample of that name, whatever its labels.
  EXPECT_THAT(ScrapeMetric(server.port(), "x_active"), IsOkAndHolds(1.0));
  // Not a prefix match: x_runs is not x_runs_total.
  EXPECT_THAT(ScrapeMetric(server.port(), "x_runs"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ScrapeMetricTest, AbsentIsZeroOnlyForALabelledSeriesOfADeclaredFamily) {
  MetricsServer server(kText);
  // Declared, labelled, never counted: how our exporters render it.
  EXPECT_THAT(
      ScrapeMetric(server.port(), "x_calls_total{specialist=\"Synthetic\"}"),
      IsOkAndHolds(0.0));
  // Undeclared family: a typo or a removed metric, not a zero.
  EXPECT_THAT(ScrapeMetric(server.port(), "x_nope_total{a=\"b\"}"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ScrapeMetric(server.port(), "x_nope_total"),
              StatusIs(absl::StatusCode::kNotFound));
  // Declared but a bare name without a sample.
  EXPECT_THAT(ScrapeMetric(server.port(), "x_calls_total"),
              StatusIs(absl::StatusCode::kNotFound));
  // Several samples for a bare name: ambiguous.
  EXPECT_THAT(ScrapeMetric(server.port(), "x_cancelled_total"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ScrapeMetricTest, UnreachableOrNot200IsAnErrorNeverZero) {
  EXPECT_THAT(ScrapeMetric(DeadPort(), "x_runs_total"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(ScrapeMetrics(DeadPort()),
              StatusIs(absl::StatusCode::kUnavailable));
  MetricsServer broken(kText, 503);
  EXPECT_THAT(ScrapeMetric(broken.port(), "x_runs_total"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("503")));
  EXPECT_THAT(ScrapeMetric(0, "x_runs_total"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MetricOrFailTest, AnUnreadableMetricFailsTheTest) {
  const int port = DeadPort();
  double v = 0;
  EXPECT_NONFATAL_FAILURE(v = MetricOrFail(port, "x_runs_total"), "unreadable");
  EXPECT_TRUE(std::isnan(v));
  MetricsServer server(kText);
  EXPECT_NONFATAL_FAILURE(v = MetricOrFail(server.port(), "x_typo_total"),
                          "unreadable");
  EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(MetricOrFail(server.port(), "x_runs_total"), 3);
}

// What ScrapeMetric reads as 0 is how the real exporters look before the
// labelled counter is counted, and each declares what it renders.
TEST(ScrapeMetricTest, RealExportersRenderLabelledCountersOnceCounted) {
  orchestrator::OrchestratorMetrics orchestrator_metrics;
  {
    MetricsServer server(orchestrator_metrics.Render());
    EXPECT_THAT(ScrapeMetric(server.port(),
                             "agentstream_orchestrator_specialist_retries_total"
                             "{specialist=\"Synthetic\"}"),
                IsOkAndHolds(0.0));
    EXPECT_THAT(ScrapeMetric(server.port(),
                             "agentstream_orchestrator_runs_started_total"),
                IsOkAndHolds(0.0));
  }
  orchestrator_metrics.SpecialistRetry("Synthetic");
  {
    MetricsServer server(orchestrator_metrics.Render());
    EXPECT_THAT(ScrapeMetric(server.port(),
                             "agentstream_orchestrator_specialist_retries_total"
                             "{specialist=\"Synthetic\"}"),
                IsOkAndHolds(1.0));
  }
  gateway::GatewayMetrics gateway_metrics;
  {
    MetricsServer server(gateway_metrics.RenderPrometheus());
    EXPECT_THAT(
        ScrapeMetric(server.port(),
                     "agentstream_gateway_http_requests_total{code=\"200\"}"),
        IsOkAndHolds(0.0));
    EXPECT_THAT(
        ScrapeMetric(server.port(), "agentstream_gateway_cancels_total"),
        IsOkAndHolds(0.0));
  }
  specialists::SpecialistMetrics specialist_metrics("Synthetic");
  MetricsServer server(specialist_metrics.RenderPrometheus());
  EXPECT_THAT(
      ScrapeMetric(server.port(), "agentstream_specialist_analyses_active"),
      IsOkAndHolds(0.0));
  EXPECT_THAT(ScrapeMetric(server.port(),
                           "agentstream_specialist_analyses_completed_total{"
                           "specialist=\"Synthetic\",outcome=\"cancelled\"}"),
              IsOkAndHolds(0.0));
}

TEST(MakeTempDirTest, MakesAFreshDirectoryOrFailsNeverFallsBack) {
  absl::StatusOr<std::string> a = MakeTempDir("helpers_");
  absl::StatusOr<std::string> b = MakeTempDir("helpers_");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(access(a->c_str(), W_OK), 0);
  rmdir(a->c_str());
  rmdir(b->c_str());

  const char* old = getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("TMPDIR", "/nonexistent-agentstream-dir", 1);
  absl::StatusOr<std::string> c = MakeTempDir("helpers_");
  if (old != nullptr) {
    setenv("TMPDIR", saved.c_str(), 1);
  } else {
    unsetenv("TMPDIR");
  }
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInternal,
                          HasSubstr("/nonexistent-agentstream-dir")));
}

TEST(ScopedTempDirTest, RemovesItsDirectoryWithEverythingInIt) {
  std::string path;
  {
    absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Make("scoped_");
    ASSERT_THAT(dir, IsOk());
    path = dir->path();
    EXPECT_THAT(path, HasSubstr("/scoped_"));
    ASSERT_EQ(mkdir(dir->File("sub").c_str(), 0755), 0);
    std::ofstream(dir->File("sub/file")) << "x";
    ASSERT_EQ(access(dir->File("sub/file").c_str(), R_OK), 0);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST(ScopedTempDirTest, AMoveHandsOverTheDirectoryAndRemoveIsOnce) {
  absl::StatusOr<ScopedTempDir> made = ScopedTempDir::Make("scoped_");
  ASSERT_THAT(made, IsOk());
  const std::string path = made->path();
  ScopedTempDir owner = *std::move(made);
  EXPECT_TRUE(made->path().empty());
  EXPECT_EQ(owner.path(), path);
  ScopedTempDir other;
  other = std::move(owner);
  EXPECT_TRUE(owner.path().empty());
  made = absl::StatusOr<ScopedTempDir>();  // The moved-from ones own nothing.
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  other.Remove();
  EXPECT_TRUE(other.path().empty());
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  other.Remove();  // Nothing left to do.
}

TEST(ScopedTempDirTest, KeptWhenAskedTo) {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Make("scoped_");
  ASSERT_THAT(dir, IsOk());
  const std::string path = dir->path();
  setenv("AGENTSTREAM_KEEP_TEST_DIRS", "1", 1);
  dir->Remove();
  unsetenv("AGENTSTREAM_KEEP_TEST_DIRS");
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  rmdir(path.c_str());
}

TEST(RssKibTest, ReadsALiveProcessAndFailsForAGoneOne) {
  absl::StatusOr<int64_t> self = RssKib(getpid());
  ASSERT_THAT(self, IsOk());
  EXPECT_GT(*self, 0);
  // PIDs are below /proc/sys/kernel/pid_max (at most 2^22).
  EXPECT_THAT(RssKib(1 << 23), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace agentstream::testing
