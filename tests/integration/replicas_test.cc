// Two orchestrator replicas sharing a real redis-server (Debian's, on a
// loopback port, stopped by PID), with the real gateway reaching them round
// robin and the real Synthetic specialist (docs/SCALING.md):
// - a second observer on the other replica sees the same updates, byte for
//   byte, as the run's own stream; Attach's answers (end, ahead, unknown)
//   are the same through the replica that does not hold the run;
// - DELETE through a gateway that reaches only the non-owner stops the
//   specialist within 100 ms;
// - random disconnects, each reconnect going wherever the round robin
//   sends it: every run joins to seq 1..N exactly once, each started once;
// - the owner of half of 20 runs killed (SIGKILL) mid-run: all 20 complete
//   through the other replica, each client's joined stream is gap-free and
//   duplicate-free, and the takeover is in the stream;
// - Redis stopped and restarted mid-run: new runs get 503 + Retry-After,
//   live runs go on and every update reaches their clients once Redis is
//   back, nothing lost, no run taken over.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/replicas_fixture.h"

namespace agentstream::testing::replicas {
namespace {

using ::testing::HasSubstr;

TEST_F(ReplicasTest, SecondObserverOnTheOtherReplicaSeesTheSameUpdates) {
  auto owner = Stub(0);
  auto other = Stub(1);
  absl::Notification started;
  Read run;
  std::thread runner([&] {
    ReadInto(
        &run,
        [&](grpc::ClientContext* c) {
          return owner->Run(c, SyntheticRun(300, 300));
        },
        &started);
  });
  const JoinOnExit join_runner(runner);
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  const std::string id = run.request_id;  // Set before the Notify.
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(OwnerOf(id), "orchestrator");

  AttachRequest attach;
  attach.set_request_id(id);
  Read observed =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  runner.join();

  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_TRUE(observed.status.ok()) << observed.status.error_message();
  EXPECT_EQ(CheckDense(run), "");
  EXPECT_EQ(CheckDense(observed), "");
  ASSERT_EQ(observed.updates.size(), run.updates.size());
  for (size_t i = 0; i < run.updates.size(); ++i) {
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        observed.updates[i], run.updates[i]))
        << "seq " << i + 1 << ": " << observed.updates[i].ShortDebugString()
        << " vs " << run.updates[i].ShortDebugString();
  }
  std::cout << "[replicas] " << run.updates.size()
            << " updates, the same through both replicas" << std::endl;
  EXPECT_EQ(ReplicaMetric(1, "store_attaches_total"), 1);

  // The other replica answers Attach as the owner would.
  const uint64_t last = run.updates.size();
  attach.set_after_seq(last);
  Read at_end =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  EXPECT_TRUE(at_end.status.ok()) << at_end.status.error_message();
  EXPECT_TRUE(at_end.updates.empty());
  attach.set_after_seq(last + 5);
  Read ahead =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  EXPECT_EQ(ahead.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  attach.set_after_seq(last - 10);
  Read tail =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  EXPECT_TRUE(tail.status.ok());
  ASSERT_EQ(tail.updates.size(), 10u);
  EXPECT_EQ(tail.updates.front().seq(), last - 9);
  attach.set_request_id("no-such-run");
  attach.set_after_seq(0);
  Read unknown =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
  agentstream::v1::CancelRequest cancel;
  cancel.set_request_id(id);
  agentstream::v1::CancelResponse cancelled;
  grpc::ClientContext cancel_context;
  EXPECT_TRUE(other->Cancel(&cancel_context, cancel, &cancelled).ok());
  EXPECT_FALSE(cancelled.cancelled()) << "the run had ended";
}

TEST_F(ReplicasTest, DeleteThroughTheNonOwnerStopsTheSpecialistWithin100ms) {
  // A gateway that reaches only the replica that does not own the run.
  auto port = topology_->StartGateway(
      "gateway#2", absl::StrCat("127.0.0.1:", topology_->orchestrator_port(1)));
  ASSERT_TRUE(port.ok()) << port.status();
  auto owner = Stub(0);
  absl::Notification working;
  std::atomic<int> partials{0};
  Read run;
  std::thread runner([&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    auto reader = owner->Run(&context, SyntheticRun(10000, 100));
    Update update;
    while (reader->Read(&update)) {
      if (run.request_id.empty()) {
        auto it = context.GetServerInitialMetadata().find("x-request-id");
        if (it != context.GetServerInitialMetadata().end()) {
          run.request_id = std::string(it->second.data(), it->second.size());
        }
      }
      run.updates.push_back(update);
      if (update.has_partial_result() && ++partials == 5) working.Notify();
    }
    run.status = reader->Finish();
    if (!working.HasBeenNotified()) working.Notify();
  });
  const JoinOnExit join_runner(runner);
  ASSERT_TRUE(working.WaitForNotificationWithTimeout(absl::Seconds(20)));
  const std::string id = run.request_id;
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(OwnerOf(id), "orchestrator");
  auto active = [&] {
    return SpecialistMetric(*topology_, "synthetic", "analyses_active");
  };
  ASSERT_EQ(active(), 1);

  const absl::Time t0 = absl::Now();
  const HttpResult del = HttpCall(*port, "DELETE", "/api/runs/" + id);
  const absl::Time t_answer = absl::Now();
  EXPECT_EQ(del.status, 202) << del.body;
  EXPECT_THAT(del.body, HasSubstr("\"cancelled\":true"));
  absl::Time idle_seen = absl::InfiniteFuture();
  absl::Time last_active = t0;
  while (absl::Now() < t_answer + absl::Seconds(5) && !HasFailure()) {
    const absl::Time scrape = absl::Now();
    if (active() == 0) {
      idle_seen = absl::Now();
      break;
    }
    last_active = scrape;
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_LT(idle_seen, absl::InfiniteFuture());
  runner.join();
  const double stopped_by_ms = absl::ToDoubleMilliseconds(idle_seen - t0);
  std::cout << "[replicas] DELETE through the non-owner: 202 in "
            << absl::ToDoubleMilliseconds(t_answer - t0)
            << " ms; the specialist stopped after "
            << absl::ToDoubleMilliseconds(last_active - t0) << " ms and by "
            << stopped_by_ms << " ms" << std::endl;
  EXPECT_LE(stopped_by_ms, 100);
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_FALSE(run.updates.empty());
  EXPECT_EQ(run.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
  EXPECT_EQ(ReplicaMetric(0, "runs_cancelled_total{reason=\"request\"}"), 1);
  // Through the non-owner again: the run has ended (409), an unknown one 404.
  EXPECT_EQ(HttpCall(*port, "DELETE", "/api/runs/" + id).status, 409);
  EXPECT_EQ(HttpCall(*port, "DELETE", "/api/runs/never-was").status, 404);
}
TEST_F(ReplicasTest, RandomDisconnectsLandOnEitherReplica) {
  constexpr int kRuns = 120;
  constexpr int kParallel = 4;
  constexpr int kCount = 200;
  const uint64_t seed = TestSeed(1515);
  std::cout << "[replicas] seed=" << seed << std::endl;
  const int port = topology_->gateway_port();
  absl::Mutex mu;
  std::vector<std::string> failures;
  int cuts = 0;
  std::atomic<int> next{0};
  auto worker = [&] {
    while (true) {
      const int i = next.fetch_add(1);
      if (i >= kRuns) return;
      std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(i));
      auto uniform = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
      };
      const int cuts_wanted = static_cast<int>(uniform(1, 3));
      const int rate = uniform(0, 1) == 0 ? 0 : 2000;
      const nlohmann::json options = {
          {"count", kCount}, {"size", 64}, {"rate", rate}};
      ResumeOptions ro;
      ro.first =
          NewRunRequest(port, SyntheticChatPath(options),
                        absl::StrCat("rr", seed, "-", i), absl::Seconds(30));
      ro.resume_path = [&](int, const std::string& run_id) -> std::string {
        return uniform(0, 1) == 1 ? RunStreamPath(run_id) : "";
      };
      ro.cut_for_attempt = [&](int attempt,
                               const ResumeResult&) -> std::optional<int64_t> {
        if (attempt >= cuts_wanted) return std::nullopt;
        return uniform(0, 20000);
      };
      ResumeResult r = ResumeUntilEnd(ro);
      std::vector<std::string> problems;
      if (!r.error.empty()) problems.push_back("ended: " + r.error);
      if (std::string dense = CheckDenseRun(r.messages, r.run_id);
          !dense.empty()) {
        problems.push_back(dense);
      }
      for (const SseEvent& e : r.others) {
        if (e.event == "error") problems.push_back("error event: " + e.data);
      }
      absl::MutexLock lock(&mu);
      cuts += r.cuts;
      for (const auto& p : problems) {
        failures.push_back(absl::StrCat("run ", i, " (", r.run_id, "): ", p));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int k = 0; k < kParallel; ++k) threads.emplace_back(worker);
  for (auto& th : threads) th.join();
  absl::MutexLock lock(&mu);
  for (size_t k = 0; k < std::min<size_t>(failures.size(), 20); ++k) {
    ADD_FAILURE() << failures[k];
  }
  const double started0 = ReplicaMetric(0, "runs_started_total");
  const double started1 = ReplicaMetric(1, "runs_started_total");
  const double through0 = ReplicaMetric(0, "store_attaches_total");
  const double through1 = ReplicaMetric(1, "store_attaches_total");
  std::cout << "[replicas] " << kRuns << " runs, " << cuts
            << " cuts; started on each replica: " << started0 << ", "
            << started1 << "; resumes served through the store: " << through0
            << ", " << through1 << std::endl;
  EXPECT_EQ(started0 + started1, kRuns) << "a run was started twice";
  EXPECT_EQ(SpecialistMetric(*topology_, "synthetic", "analyses_started_total"),
            kRuns);
  EXPECT_GT(started0, 0);
  EXPECT_GT(started1, 0);
  EXPECT_GT(through0, 0) << "no resume landed on the replica without the run";
  EXPECT_GT(through1, 0) << "no resume landed on the replica without the run";
}

TEST_F(ReplicasTest, TwentyRunsCompleteWhenTheOwnerIsKilled) {
  constexpr int kRuns = 20;
  // About 5 s each: killed about 1 s in.
  Clients clients(topology_->gateway_port(), kRuns,
                  {{"count", 250}, {"size", 64}, {"rate", 50}}, "kill-", 1);
  ASSERT_TRUE(
      WaitFor([&] { return clients.started() == kRuns; }, absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(800));
  // The victim: the replica that owns more of the runs (the round robin
  // usually splits them; a gateway whose sessions all went to one replica
  // does not).
  const std::vector<std::string> ids = clients.ids();
  std::map<std::string, int> owned;
  std::vector<std::string> owners_before(kRuns);
  for (int i = 0; i < kRuns; ++i) {
    owners_before[i] = OwnerOf(ids[i]);
    ++owned[owners_before[i]];
  }
  const int victim_index =
      owned["orchestrator"] >= owned["orchestrator#2"] ? 0 : 1;
  const std::string victim_name = topology_->orchestrator_name(victim_index);
  const std::string survivor_name =
      topology_->orchestrator_name(1 - victim_index);
  Subprocess* victim = topology_->process(victim_name);
  ASSERT_NE(victim, nullptr);
  const double taken_before =
      ReplicaMetric(1 - victim_index, "runs_taken_over_total");
  const absl::Time killed_at = absl::Now();
  victim->Signal(SIGKILL);
  ASSERT_TRUE(victim->Wait(absl::Seconds(10)).ok());
  clients.Join();
  const std::vector<Followed>& results = clients.results();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - killed_at);

  int taken = 0;
  for (int i = 0; i < kRuns; ++i) {
    const Followed& r = results[i];
    SCOPED_TRACE(absl::StrCat("run ", i, " ", r.run_id, ", owned by ",
                              owners_before[i]));
    EXPECT_EQ(r.run_id, ids[i]);
    EXPECT_EQ(CheckCompleted(r), "");
    bool takeover = false;
    for (const SseEvent& e : r.messages) {
      if (e.json.value("type", "") == "status" &&
          absl::StrContains(e.json.value("message", ""),
                            "took this run over")) {
        takeover = true;
        EXPECT_THAT(e.json.value("message", ""),
                    HasSubstr(absl::StrCat("replica ", victim_name,
                                           " stopped renewing")));
      }
    }
    // Taken over exactly when the victim owned it; now the survivor's.
    EXPECT_EQ(takeover, owners_before[i] == victim_name);
    EXPECT_EQ(OwnerOf(r.run_id), survivor_name);
    taken += takeover ? 1 : 0;
  }
  const double taken_metric =
      ReplicaMetric(1 - victim_index, "runs_taken_over_total") - taken_before;
  std::cout << "[replicas] owner killed mid-run: " << taken << " of " << kRuns
            << " runs taken over (metric " << taken_metric << "), all complete "
            << seconds << " s after the kill" << std::endl;
  EXPECT_EQ(taken, owned[victim_name]);
  EXPECT_GT(taken, 0);
  EXPECT_EQ(taken_metric, taken);
}

TEST_F(ReplicasTest, RedisStoppedAndRestartedMidRun) {
  constexpr int kRuns = 4;
  const int port = topology_->gateway_port();
  Clients clients(port, kRuns, {{"count", 200}, {"size", 64}, {"rate", 50}},
                  "outage-", 5);
  ASSERT_TRUE(
      WaitFor([&] { return clients.started() == kRuns; }, absl::Seconds(30)));
  ASSERT_TRUE(topology_->redis()->Stop(SIGTERM).ok());
  const absl::Time stopped_at = absl::Now();

  // A new run: 503 with Retry-After, and a JSON body that says why.
  const HttpResult refused =
      HttpCall(port, "GET",
               SyntheticChatPath({{"count", 10}, {"size", 64}, {"rate", 0}}));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_FALSE(refused.Header("retry-after").empty());
  EXPECT_THAT(refused.body, HasSubstr("run_store_unavailable"));
  // The runs go on meanwhile: the specialist still works for each.
  EXPECT_EQ(SpecialistMetric(*topology_, "synthetic", "analyses_active"),
            kRuns);
  absl::SleepFor(absl::Milliseconds(1500));
  ASSERT_TRUE(topology_->redis()->Restart().ok());
  const double outage_s = absl::ToDoubleSeconds(absl::Now() - stopped_at);
  clients.Join();
  const std::vector<Followed>& results = clients.results();

  for (int i = 0; i < kRuns; ++i) {
    const Followed& r = results[i];
    SCOPED_TRACE(absl::StrCat("run ", i, " ", r.run_id));
    EXPECT_EQ(CheckCompleted(r), "");
  }
  std::cout << "[replicas] Redis away for " << outage_s
            << " s: every run complete, nothing lost" << std::endl;
  EXPECT_EQ(SumOverReplicas("runs_taken_over_total"), 0);
  EXPECT_EQ(SumOverReplicas("runs_lost_total"), 0);
  EXPECT_GT(SumOverReplicas("run_store_errors_total"), 0);
  // And new runs start again.
  const RawSseResult after = RawSse(NewRunRequest(
      port, SyntheticChatPath({{"count", 10}, {"size", 64}, {"rate", 0}}),
      "after-outage", absl::Seconds(30)));
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_TRUE(after.EndedWithDone()) << after.error;
}

}  // namespace
}  // namespace agentstream::testing::replicas
