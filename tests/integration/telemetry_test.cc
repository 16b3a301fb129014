// Issue 11's telemetry through the real processes (docs/METRICS.md): after
// a run through the gateway, the orchestrator and Synthetic, every process's
// /metrics has its hop histograms counting the updates that passed, the
// in/out counters agree from one process to the next, and the gauges are
// back at 0 once the run has ended.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {
namespace {

constexpr int kCount = 300;  // Synthetic's updates in the run.

class TelemetryTest : public TopologyTest {
 protected:
  void SetUp() override { StartTopology(SyntheticOnlyOptions()); }

  double Gateway(const std::string& name) {
    return GatewayMetric(*topology_, name);
  }
  double Orchestrator(const std::string& name) {
    return OrchestratorMetric(*topology_, name);
  }
  double Synthetic(const std::string& name) {
    return SpecialistMetric(*topology_, "synthetic",
                            absl::StrCat(name, "{specialist=\"Synthetic\"}"));
  }
  std::string AllMetrics() {
    return absl::StrCat(
        ScrapeMetrics(topology_->gateway_port()).value_or("(unreadable)"),
        ScrapeMetrics(topology_->orchestrator_metrics_port())
            .value_or("(unreadable)"),
        ScrapeMetrics(topology_->specialist_metrics_port("synthetic"))
            .value_or("(unreadable)"));
  }
};

TEST_F(TelemetryTest, EveryHopIsMeasuredAndTheGaugesReturnToZero) {
  SseRequest req;
  req.port = topology_->gateway_port();
  req.path = "/api/chat/stream?specialists=Synthetic&message=telemetry&" +
             std::string("options=") +
             UrlEncode(absl::StrCat(R"({"count":)", kCount,
                                    R"(,"size":64,"rate":0})"));
  req.timeout = absl::Seconds(60);
  const SseResponse r = StreamSse(req);
  ASSERT_EQ(r.status, 200) << r.error;
  // The run's updates: every event with an id past `connected`.
  int updates = 0;
  for (const SseEvent& e : r.events) {
    if (e.event == "message" && e.json.contains("seq")) ++updates;
  }
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.back().event, "done") << r.raw.substr(0, 2000);
  ASSERT_GT(updates, kCount);  // Synthetic's, and the orchestrator's own.

  // The last write's bookkeeping may follow the client's receipt by a
  // moment: everything is read once it has settled (bounded).
  const bool settled = WaitFor(
      [&] {
        return Gateway("hop_emit_to_write_seconds_count") >= updates &&
               Gateway("streams_open") == 0 &&
               Orchestrator("runs_active") == 0 &&
               Orchestrator("followers_active") == 0 &&
               Synthetic("analyses_active") == 0 &&
               Synthetic("queued_updates") == 0;
      },
      absl::Seconds(10));
  EXPECT_TRUE(settled) << AllMetrics();

  // Specialist: every update it wrote went through its queue's hop.
  const double sent = Synthetic("updates_sent_total");
  EXPECT_GE(sent, kCount);
  EXPECT_EQ(Synthetic("hop_emit_to_write_seconds_count"), sent);
  EXPECT_GT(Synthetic("update_bytes_sent_total"), sent * 64);
  EXPECT_EQ(Synthetic("analyses_waiting"), 0);

  // Orchestrator: received what Synthetic sent, byte for byte, each timed;
  // sent the client's updates (one follower, no replay), each timed.
  EXPECT_EQ(Orchestrator("specialist_updates_received_total"), sent);
  EXPECT_EQ(Orchestrator("specialist_update_bytes_received_total"),
            Synthetic("update_bytes_sent_total"));
  EXPECT_EQ(Orchestrator("hop_emit_to_receipt_seconds_count"), sent);
  EXPECT_EQ(Orchestrator("updates_total"), updates);
  EXPECT_EQ(Orchestrator("updates_sent_total"), updates);
  EXPECT_EQ(Orchestrator("hop_emit_to_write_seconds_count"), updates);
  EXPECT_GT(Orchestrator("update_bytes_sent_total"),
            Orchestrator("specialist_update_bytes_received_total"));

  // Gateway: received and wrote them, each timed; nothing left queued.
  EXPECT_EQ(Gateway("updates_received_total"), updates);
  EXPECT_GT(Gateway("update_bytes_received_total"), updates * 64.0 * 0.5);
  EXPECT_EQ(Gateway("hop_emit_to_write_seconds_count"), updates);
  EXPECT_GE(Gateway("sse_bytes_sent_total"), kCount * 64.0);
  EXPECT_EQ(Gateway("queued_updates"), 0);
  EXPECT_EQ(Gateway("queued_bytes"), 0);

  // The +Inf bucket of each histogram holds every observation.
  EXPECT_EQ(Gateway("hop_emit_to_write_seconds_bucket{le=\"+Inf\"}"), updates);
  EXPECT_EQ(Orchestrator("hop_emit_to_receipt_seconds_bucket{le=\"+Inf\"}"),
            sent);
  EXPECT_EQ(MetricOrFail(topology_->specialist_metrics_port("synthetic"),
                         "agentstream_specialist_hop_emit_to_write_seconds_"
                         "bucket{specialist=\"Synthetic\",le=\"+Inf\"}"),
            sent);
}

}  // namespace
}  // namespace agentstream::testing
