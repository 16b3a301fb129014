// Random disconnects with the real binaries: hundreds of Synthetic runs, each
// client cut 1-3 times at random byte offsets (mid-event too, and before
// `connected`), resuming with Last-Event-ID through the same URL or
// /api/runs/{id}/stream. Every run's updates, joined, must be seq 1..N exactly
// once each and in order, ending in complete + done (or a 204 when the cut
// fell after `complete`), and every run must have been started exactly once
// (orchestrator and Synthetic metrics).
#include <algorithm>
#include <atomic>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"

namespace agentstream::testing {
namespace {

constexpr int kRuns = 400;
constexpr int kParallel = 4;
constexpr int kCount = 300;  // Synthetic partial results per run.

struct Tally {
  absl::Mutex mu;
  std::vector<std::string> failures ABSL_GUARDED_BY(mu);
  int cuts ABSL_GUARDED_BY(mu) = 0;
  int cuts_mid_event ABSL_GUARDED_BY(mu) = 0;
  int cuts_before_connected ABSL_GUARDED_BY(mu) = 0;
  int resumes_same_url ABSL_GUARDED_BY(mu) = 0;
  int resumes_run_stream ABSL_GUARDED_BY(mu) = 0;
  int ended_204 ABSL_GUARDED_BY(mu) = 0;
  int posts ABSL_GUARDED_BY(mu) = 0;
  int64_t updates ABSL_GUARDED_BY(mu) = 0;
  std::vector<int> cuts_per_run ABSL_GUARDED_BY(mu);
};

class RandomDisconnectTest : public TopologyTest {
 protected:
  void SetUp() override {
    // Every run comes from one loopback address, back to back, and a run
    // now takes milliseconds: the per-client start rate (50/s, bursts of
    // 100; docs/GATEWAY.md, "Limits") is not what this test is about.
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_gateway_args = {"--run-starts-per-second=2000",
                                  "--run-start-burst=2000"};
    StartTopology(options);
  }
};

TEST_F(RandomDisconnectTest, EveryRunJoinsToDenseSeqStartedOnce) {
  const uint64_t seed = TestSeed(4242);
  std::cout << "[random-disconnect] seed=" << seed
            << " (AGENTSTREAM_TEST_SEED overrides)" << std::endl;
  Topology& t = *topology_;
  const int port = t.gateway_port();

  const double runs_before = OrchestratorMetric(t, "runs_started_total");
  const double orch_resumes_before = OrchestratorMetric(t, "resumes_total");
  const double gateway_resumes_before = GatewayMetric(t, "resumes_total");
  const double analyses_before =
      SpecialistMetric(t, "synthetic", "analyses_started_total");

  // Calibration: one uncut run gives the length of a whole stream.
  const std::string calib_rid = absl::StrCat("rdcal", seed);
  const RawSseResult whole = RawSse(NewRunRequest(
      port, SyntheticChatPath({{"count", kCount}, {"size", 64}, {"rate", 0}}),
      calib_rid));
  ASSERT_EQ(whole.status, 200) << whole.body;
  ASSERT_TRUE(whole.EndedWithDone()) << whole.error;
  ASSERT_EQ(CheckDenseRun(MessagesOf(whole), whole.RunId()), "");
  const int64_t whole_bytes = static_cast<int64_t>(whole.body.size());
  const size_t whole_updates = whole.Messages().size();
  std::cout << "[random-disconnect] one run: " << whole_updates << " updates, "
            << whole_bytes << " body bytes" << std::endl;

  Tally tally;
  std::atomic<int> next{0};
  const absl::Time start = absl::Now();
  auto worker = [&] {
    while (true) {
      const int i = next.fetch_add(1);
      if (i >= kRuns) return;
      std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(i));
      auto uniform = [&](int64_t lo, int64_t hi) {  // [lo, hi]
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
      };
      const std::string rid = absl::StrCat("rd", seed, "-", i);
      const int cuts_wanted = static_cast<int>(uniform(1, 3));
      const bool post = uniform(0, 3) == 0;
      // Unpaced runs finish while the client is away (replay from the log);
      // paced ones (~100 ms) are resumed live.
      const int rate = uniform(0, 1) == 0 ? 0 : 3000;
      const nlohmann::json options = {
          {"count", kCount}, {"size", 64}, {"rate", rate}};

      ResumeOptions ro;
      ro.first = NewRunRequest(port, SyntheticChatPath(options), rid,
                               absl::Seconds(30));
      if (post) {
        ro.first.method = "POST";
        ro.first.path = "/api/chat/stream";
        ro.first.body = nlohmann::json({{"message", "synthetic load"},
                                        {"specialists", {"Synthetic"}},
                                        {"options", options}})
                            .dump();
      }
      std::vector<bool> via_run_stream;
      ro.resume_path = [&](int, const std::string& run_id) -> std::string {
        const bool run_stream = uniform(0, 1) == 1;
        via_run_stream.push_back(run_stream);
        return run_stream ? RunStreamPath(run_id) : "";
      };
      ro.cut_for_attempt =
          [&](int attempt,
              const ResumeResult& so_far) -> std::optional<int64_t> {
        if (attempt >= cuts_wanted) return std::nullopt;
        // Rough bytes left in this connection.
        const double left_fraction =
            1.0 - static_cast<double>(so_far.messages.size()) /
                      static_cast<double>(whole_updates);
        const int64_t left = std::max<int64_t>(
            200, static_cast<int64_t>(left_fraction * whole_bytes * 0.97));
        // One cut in ten lands in the first 300 bytes: before, inside or
        // just after `connected`.
        if (uniform(0, 9) == 0) return uniform(0, 300);
        return uniform(0, left);
      };
      ResumeResult r = ResumeUntilEnd(ro);
      // The gateway's id of the run (`rid` went as the correlation id).
      const std::string& run_id = r.run_id;

      std::vector<std::string> problems;
      if (!r.error.empty()) problems.push_back("ended: " + r.error);
      if (std::string dense = CheckDenseRun(r.messages, run_id);
          !dense.empty()) {
        problems.push_back(dense);
      }
      if (r.got_done) {
        const RawSseResult& last = r.connections.back();
        const auto& ev = last.events;
        if (ev.size() < 2 || ev[ev.size() - 2].event != "message" ||
            ev[ev.size() - 2].json.value("type", "") != "complete") {
          problems.push_back("done not preceded by complete");
        }
        if (ev.back().json.value("status", "") != "complete") {
          problems.push_back("done status: " + ev.back().data);
        }
      }
      for (const SseEvent& e : r.others) {
        if (e.event == "error") problems.push_back("error event: " + e.data);
      }
      // Every resumed `connected` says resumed with the point asked.
      for (size_t c = 1; c < r.connections.size(); ++c) {
        const RawSseResult& conn = r.connections[c];
        if (conn.status != 200 || conn.events.empty()) continue;
        if (conn.events[0].event != "connected" ||
            conn.events[0].json.value("status", "") != "resumed") {
          problems.push_back(
              "resumed stream did not start with connected "
              "resumed: " +
              conn.events[0].data);
        }
      }
      // After the final event: 204, through either URL.
      const RawSseResult after_end = RawSse(ResumeRequest(
          port,
          uniform(0, 1) ? RunStreamPath(run_id) : SyntheticChatPath(options),
          r.last_event_id, absl::Seconds(10)));
      if (after_end.status != 204) {
        problems.push_back(absl::StrCat(
            "reconnect after the end with ", r.last_event_id, " got ",
            after_end.status, ": ", after_end.body.substr(0, 300)));
      }

      absl::MutexLock lock(&tally.mu);
      for (const auto& p : problems) {
        tally.failures.push_back(
            absl::StrCat("run ", i, " (", rid, ", ", r.cuts, " cuts): ", p));
      }
      tally.cuts += r.cuts;
      tally.cuts_per_run.push_back(r.cuts);
      tally.updates += static_cast<int64_t>(r.messages.size());
      if (r.ended_with_204) ++tally.ended_204;
      if (post) ++tally.posts;
      for (bool b : via_run_stream) {
        ++(b ? tally.resumes_run_stream : tally.resumes_same_url);
      }
      for (const RawSseResult& conn : r.connections) {
        if (!conn.cut) continue;
        if (!absl::EndsWith(conn.body, "\n\n") && !conn.body.empty()) {
          ++tally.cuts_mid_event;
        }
        bool connected = false;
        for (const auto& e : conn.events) connected |= e.event == "connected";
        if (!connected) ++tally.cuts_before_connected;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int k = 0; k < kParallel; ++k) threads.emplace_back(worker);
  for (auto& th : threads) th.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  const double runs_after = OrchestratorMetric(t, "runs_started_total");
  const double orch_resumes =
      OrchestratorMetric(t, "resumes_total") - orch_resumes_before;
  const double gateway_resumes =
      GatewayMetric(t, "resumes_total") - gateway_resumes_before;
  const double analyses_after =
      SpecialistMetric(t, "synthetic", "analyses_started_total");

  absl::MutexLock lock(&tally.mu);
  int runs_cut_twice_or_more = 0;
  int runs_not_cut = 0;
  for (int c : tally.cuts_per_run) {
    runs_cut_twice_or_more += c >= 2;
    runs_not_cut += c == 0;
  }
  std::cout << "[random-disconnect] runs=" << kRuns << " parallel=" << kParallel
            << " seconds=" << seconds << " updates=" << tally.updates
            << " cuts=" << tally.cuts << " mid_event=" << tally.cuts_mid_event
            << " before_connected=" << tally.cuts_before_connected
            << " runs_cut_2plus=" << runs_cut_twice_or_more
            << " runs_not_cut=" << runs_not_cut
            << " resumes_same_url=" << tally.resumes_same_url
            << " resumes_run_stream=" << tally.resumes_run_stream
            << " ended_204=" << tally.ended_204 << " posts=" << tally.posts
            << " orchestrator_runs_started_delta=" << runs_after - runs_before
            << " synthetic_analyses_started_delta="
            << analyses_after - analyses_before
            << " orchestrator_resumes_delta=" << orch_resumes
            << " gateway_resumes_delta=" << gateway_resumes << std::endl;

  for (size_t k = 0; k < std::min<size_t>(tally.failures.size(), 20); ++k) {
    ADD_FAILURE() << tally.failures[k];
  }
  EXPECT_EQ(tally.failures.size(), 0u);
  // Each run (and the calibration run) was started exactly once.
  EXPECT_EQ(runs_after - runs_before, kRuns + 1);
  EXPECT_EQ(analyses_after - analyses_before, kRuns + 1);
  // The test did what it says: mostly cut mid-event, some several times.
  EXPECT_GE(tally.cuts, kRuns);
  EXPECT_GT(tally.cuts_mid_event, kRuns / 2);
  EXPECT_GT(runs_cut_twice_or_more, kRuns / 4);
  EXPECT_GT(tally.cuts_before_connected, 0);
  EXPECT_GT(tally.resumes_run_stream, 0);
  EXPECT_GT(tally.resumes_same_url, 0);
  // Every reconnect was a resume at the gateway (the 204 checks included).
  EXPECT_GE(gateway_resumes, tally.cuts);
}

}  // namespace
}  // namespace agentstream::testing
