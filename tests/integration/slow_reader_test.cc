// A slow reader with the real binaries (issue 4 item 5). Synthetic produces
// fast for over 60 s with a progress update before every partial result;
// one client (small SO_RCVBUF) stops reading for 20 s and then reads again.
// It must be cut off with `error` slow_consumer, resume with Last-Event-ID
// and, joined, receive every non-progress update of the run exactly once and
// in order (progress updates may have been coalesced). Meanwhile another
// client of another run gets every seq without a stall, and the gateway's
// and orchestrator's memory (VmRSS, sampled) stay under stated bounds.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"

namespace agentstream::testing {
namespace {

// Synthetic: kRate partial results per second (and as many progress
// updates) for kSeconds.
constexpr int kRate = 500;
constexpr int kSeconds = 62;
constexpr int kPauseSeconds = 20;
// Payload bytes per partial result: large enough that 20 s of production
// (~18 MB) overflows every buffer on the way (the gateway's socket send
// buffer, up to 4 MiB here; gRPC's flow-control windows; the gateway's
// stream queue), so that the orchestrator's follower falls behind.
constexpr int kSize = 1536;
// Stated bounds on resident memory while all of this goes on. Measured
// here: gateway ~30 MiB, orchestrator ~83 MiB (its log holds the whole run,
// ~55 MB of updates, by design: --max-log-bytes bounds it).
constexpr int64_t kGatewayRssBoundKib = 64 * 1024;
constexpr int64_t kOrchestratorRssBoundKib = 160 * 1024;

class SlowReaderTest : public TopologyTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_orchestrator_args = {"--follower-max-lag=500",
                                       "--max-log-events=200000",
                                       "--max-log-bytes=134217728"};
    options.extra_gateway_args = {"--write-timeout-ms=45000"};
    StartTopology(options);
  }
};

TEST_F(SlowReaderTest, SlowReaderIsCutOffResumesAndOthersAreUnaffected) {
  Topology& t = *topology_;
  const int port = t.gateway_port();
  const int gateway_pid = t.process("gateway")->pid();
  const int orchestrator_pid = t.process("orchestrator")->pid();

  // Memory sampler. A sample that cannot be read ends the sampling and
  // fails the test below: a bound checked against no samples would hold
  // whatever the memory did.
  const absl::StatusOr<int64_t> gateway_start_kib = RssKib(gateway_pid);
  const absl::StatusOr<int64_t> orchestrator_start_kib =
      RssKib(orchestrator_pid);
  ASSERT_TRUE(gateway_start_kib.ok()) << gateway_start_kib.status();
  ASSERT_TRUE(orchestrator_start_kib.ok()) << orchestrator_start_kib.status();
  std::atomic<bool> sampling{true};
  // Written by the sampler only, read after it is joined.
  int64_t gateway_max_kib = 0, orchestrator_max_kib = 0;
  int samples = 0;
  absl::Status sample_error;
  std::thread sampler([&] {
    while (sampling.load()) {
      const absl::StatusOr<int64_t> g = RssKib(gateway_pid);
      const absl::StatusOr<int64_t> o = RssKib(orchestrator_pid);
      if (!g.ok() || !o.ok()) {
        sample_error = g.ok() ? o.status() : g.status();
        return;
      }
      gateway_max_kib = std::max(gateway_max_kib, *g);
      orchestrator_max_kib = std::max(orchestrator_max_kib, *o);
      ++samples;
      absl::SleepFor(absl::Milliseconds(200));
    }
  });
  // Also on an early return: stop the sampler, then join it.
  struct StopSampler {
    std::atomic<bool>& sampling;
    std::thread& sampler;
    ~StopSampler() {
      sampling = false;
      if (sampler.joinable()) sampler.join();
    }
  } stop_sampler{sampling, sampler};

  // Another run, read at full speed meanwhile.
  const std::string steady_rid = "steady-1";
  RawSseResult steady;
  std::thread steady_reader([&] {
    steady = RawSse(NewRunRequest(
        port, SyntheticChatPath({{"count", 200 * 40}, {"rate", 200}}),
        steady_rid, absl::Seconds(120)));
  });
  const JoinOnExit join_steady_reader(steady_reader);

  // The slow one.
  const std::string rid = "slow-1";
  const nlohmann::json options = {{"count", kRate * kSeconds},
                                  {"size", kSize},
                                  {"rate", kRate},
                                  {"progress_every", 1}};
  ResumeOptions ro;
  ro.first = NewRunRequest(port, SyntheticChatPath(options), rid,
                           absl::Seconds(kSeconds + 60));
  ro.first.rcvbuf_bytes = 4096;
  std::atomic<bool> paused{false};
  absl::Time pause_start, pause_end;
  ro.first.on_event = [&](const SseEvent& e) {
    RawSseAction action;
    if (!paused.load() && e.json.is_object() &&
        e.json.value("seq", 0) >= 2000) {
      paused = true;
      pause_start = absl::Now();
      pause_end = pause_start + absl::Seconds(kPauseSeconds);
      action.pause = absl::Seconds(kPauseSeconds);
    }
    return action;
  };
  const absl::Time start = absl::Now();
  const ResumeResult slow = ResumeUntilEnd(ro);
  const double slow_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  steady_reader.join();
  sampling = false;
  sampler.join();
  ASSERT_TRUE(sample_error.ok()) << "VmRSS sampling: " << sample_error;
  ASSERT_GT(samples, 0);

  // What the run's log holds, read at full speed from the start.
  const RawSseResult reference =
      ReplayRun(port, slow.run_id, absl::Seconds(60));
  ASSERT_EQ(reference.status, 200) << reference.body.substr(0, 500);
  // A replay of a whole run is itself a follower far behind: its progress
  // updates may be coalesced too, nothing else. Every partial result must be
  // there, and whatever seq it skips must be progress (checked against the
  // slow client below, which may hold some of them).
  const auto ref = MessagesOf(reference);
  ASSERT_FALSE(ref.empty());
  ASSERT_TRUE(reference.EndedWithDone()) << reference.error;
  EXPECT_EQ(ref.back().json.value("type", ""), "complete");
  int ref_partials = 0;
  uint64_t ref_prev = 0;
  for (const SseEvent& e : ref) {
    const uint64_t seq = e.json.value("seq", uint64_t{0});
    ASSERT_GT(seq, ref_prev) << e.data;
    ref_prev = seq;
    if (e.json.value("type", "") == "partial_result") {
      ++ref_partials;
      ASSERT_EQ(e.json["result"].value("i", 0), ref_partials) << e.data;
    }
  }
  ASSERT_EQ(ref_partials, kRate * kSeconds);

  // The slow client's joined updates: increasing seq, identical bytes, every
  // non-progress update present.
  std::map<uint64_t, const SseEvent*> by_seq;
  for (const SseEvent& e : ref) by_seq[e.json["seq"].get<uint64_t>()] = &e;
  uint64_t prev = 0;
  std::set<uint64_t> got;
  int order_problems = 0, data_problems = 0;
  for (const SseEvent& e : slow.messages) {
    const uint64_t seq = e.json.value("seq", uint64_t{0});
    if (seq <= prev) ++order_problems;
    prev = seq;
    got.insert(seq);
    auto it = by_seq.find(seq);
    if (it == by_seq.end()) {
      // Skipped by the replay: only a progress update may be.
      if (e.json.value("type", "") != "progress") ++data_problems;
    } else if (it->second->data != e.data) {
      ++data_problems;
    }
  }
  // The slow client's holes: each seq of the run (1..last_seq; the log holds
  // every one) that no connection of the slow client received. A hole the
  // replay holds is classified by its type; one the replay skipped too is a
  // progress update, since the replay (itself a follower far behind) may
  // skip nothing else (its partial results were all checked above).
  const uint64_t last_seq = ref.back().json.value("seq", uint64_t{0});
  int progress_total = 0;
  for (const SseEvent& e : ref) {
    progress_total += e.json.value("type", "") == "progress";
  }
  int missing_non_progress = 0, holes_progress = 0, holes_also_in_replay = 0;
  for (uint64_t seq = 1; seq <= last_seq; ++seq) {
    if (got.count(seq)) continue;
    auto it = by_seq.find(seq);
    if (it == by_seq.end()) {
      ++holes_also_in_replay;
    } else if (it->second->json.value("type", "") == "progress") {
      ++holes_progress;
    } else {
      ++missing_non_progress;
    }
  }
  const int slow_coalesced = holes_progress + holes_also_in_replay;
  const int64_t replay_holes =
      static_cast<int64_t>(last_seq) - static_cast<int64_t>(ref.size());
  // Every hole a follower left is a progress update it skipped, counted by
  // the orchestrator (a cut-off follower's skips may be read again by the
  // follower that resumes it, so the counter may exceed the holes).
  const double coalesced_metric =
      OrchestratorMetric(t, "coalesced_updates_total");
  nlohmann::json slow_error;
  for (const SseEvent& e : slow.others) {
    if (e.event == "error") slow_error = e.json;
  }
  int64_t steady_max_gap_ms = 0;
  const auto steady_msgs = MessagesOf(steady);
  for (size_t i = 1; i < steady_msgs.size(); ++i) {
    steady_max_gap_ms = std::max<int64_t>(
        steady_max_gap_ms,
        absl::ToInt64Milliseconds(steady_msgs[i].received_at -
                                  steady_msgs[i - 1].received_at));
  }

  std::cout << "[slow-reader] run last_seq=" << last_seq
            << " replayed=" << ref.size() << " (progress " << progress_total
            << ", coalesced " << replay_holes
            << ") slow_client_received=" << slow.messages.size()
            << " connections=" << slow.connections.size()
            << " slow_client_coalesced_progress=" << slow_coalesced << " ("
            << holes_also_in_replay << " of them skipped by the replay too)"
            << " missing_non_progress=" << missing_non_progress
            << " out_of_order=" << order_problems
            << " data_mismatch=" << data_problems
            << " slow_client_seconds=" << slow_seconds << " per_connection=[";
  for (const RawSseResult& c : slow.connections) {
    std::cout << c.Messages().size() << " ";
  }
  std::cout << "] paused=" << paused.load()
            << " cutoff_error=" << slow_error.dump() << std::endl;
  std::cout << "[slow-reader] other run: updates=" << steady_msgs.size()
            << " max_gap_ms=" << steady_max_gap_ms << std::endl;
  std::cout << "[slow-reader] VmRSS (" << samples
            << " samples) gateway start=" << *gateway_start_kib / 1024
            << " MiB max=" << gateway_max_kib / 1024 << " MiB (bound "
            << kGatewayRssBoundKib / 1024
            << " MiB); orchestrator start=" << *orchestrator_start_kib / 1024
            << " MiB max=" << orchestrator_max_kib / 1024 << " MiB (bound "
            << kOrchestratorRssBoundKib / 1024 << " MiB)" << std::endl;
  std::cout << "[slow-reader] orchestrator coalesced_updates_total="
            << coalesced_metric << " slow_consumer_cutoffs_total="
            << OrchestratorMetric(t, "slow_consumer_cutoffs_total")
            << "; gateway slow_consumer_cutoffs_total="
            << GatewayMetric(t, "slow_consumer_cutoffs_total") << std::endl;

  EXPECT_TRUE(slow.got_done) << slow.error;
  EXPECT_GE(slow.connections.size(), 2u) << "the slow client was never cut";
  ASSERT_TRUE(slow_error.is_object()) << "no error event for the slow client";
  EXPECT_EQ(slow_error.value("code", ""), "slow_consumer") << slow_error.dump();
  EXPECT_EQ(slow_error.value("retryable", false), true);
  // The cut-off connection ended cleanly without done (EventSource
  // reconnects by itself).
  EXPECT_TRUE(slow.connections[0].complete) << slow.connections[0].error;
  EXPECT_FALSE(slow.connections[0].EndedWithDone());
  EXPECT_EQ(order_problems, 0);
  EXPECT_EQ(data_problems, 0);
  EXPECT_EQ(missing_non_progress, 0);
  EXPECT_GE(coalesced_metric,
            static_cast<double>(slow_coalesced + replay_holes));
  ASSERT_FALSE(slow.messages.empty());
  EXPECT_EQ(slow.messages.back().json.value("type", ""), "complete");
  EXPECT_GE(OrchestratorMetric(t, "slow_consumer_cutoffs_total"), 1);

  // The other run: every seq, no stall while the slow one was stuck.
  EXPECT_EQ(steady.status, 200);
  EXPECT_EQ(CheckDenseRun(steady_msgs, steady.RunId()), "");
  EXPECT_TRUE(steady.EndedWithDone());
  EXPECT_LT(steady_max_gap_ms, 2000);

#if defined(__SANITIZE_ADDRESS__)
  // ASan's shadow memory and its quarantine of freed blocks (256 MiB by
  // default) make RSS meaningless as a bound; the figures are printed above.
  std::cout << "[slow-reader] ASan build: memory bounds not asserted"
            << std::endl;
#else
  EXPECT_LT(gateway_max_kib, kGatewayRssBoundKib);
  EXPECT_LT(orchestrator_max_kib, kOrchestratorRssBoundKib);
#endif
}

}  // namespace
}  // namespace agentstream::testing
