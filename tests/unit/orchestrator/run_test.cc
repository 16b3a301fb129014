// The run engine with in-memory fake specialists: the sequence of updates,
// dense seq under concurrency, live interleaving, failures, cancel, Attach
// replay and the log's bound and TTL.
#include "orchestrator/run.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "common/clock.h"
#include "common/update_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/run_manager.h"
#include "orchestrator/specialist_registry.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/fake_specialist.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::orchestrator::testing::FakeAnalyzeCall;
using ::agentstream::orchestrator::testing::FakeSpecialistClient;
using ::agentstream::orchestrator::testing::MakeCard;
using ::agentstream::orchestrator::testing::PartialOf;
using ::agentstream::orchestrator::testing::ProgressOf;
using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::StatusIs;
using agentstream::v1::Update;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(5);
constexpr int kPerSpecialist = 400;
// testing::Test has a Run() of its own.
using RunPtr = std::shared_ptr<::agentstream::orchestrator::Run>;

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override { Configure(RunManagerOptions()); }
  // Runs a test left going hold their specialist calls (and the calls their
  // runs): end them as an orchestrator shutting down does.
  void TearDown() override {
    if (manager_ != nullptr) manager_->CancelAll("test over");
  }

  void Configure(RunManagerOptions options) {
    fakes_.clear();
    for (auto card :
         {MakeCard("DataAnalyst", {"transactions", "totals"}),
          MakeCard("RiskAnalyst", {"risk"}),
          MakeCard("ComplianceExpert", {"aml", "compliance"}),
          MakeCard("Synthetic", {"synthetic"}, /*explicit_only=*/true)}) {
      fakes_[card.name()] =
          std::make_shared<FakeSpecialistClient>(card, "addr-" + card.name());
    }
    std::vector<SpecialistEndpoint> endpoints;
    for (const char* name :
         {"DataAnalyst", "RiskAnalyst", "ComplianceExpert", "Synthetic"}) {
      endpoints.push_back({name, std::string("addr-") + name});
    }
    manager_.reset();
    registry_ = std::make_unique<SpecialistRegistry>(
        endpoints,
        [this](const std::string& address) {
          return fakes_.at(address.substr(5));
        },
        SpecialistRegistry::Options());
    registry_->RefreshOnce(/*all=*/true);
    manager_ = std::make_unique<RunManager>(options, registry_.get(), &clock_,
                                            &metrics_);
  }

  absl::StatusOr<RunPtr> StartRun(const std::string& message,
                                  std::vector<std::string> forced = {}) {
    agentstream::v1::RunRequest request;
    request.set_message(message);
    for (auto& f : forced) request.add_specialists(f);
    auto run = manager_->CreateRun(request, "");
    if (run.ok()) (*run)->Start();
    return run;
  }

  FakeSpecialistClient& fake(const std::string& name) { return *fakes_[name]; }
  std::shared_ptr<FakeAnalyzeCall> CallOf(const std::string& name,
                                          size_t i = 0) {
    return fakes_[name]->WaitForCall(i, kWait);
  }

  static std::vector<Update> LogOf(
      const ::agentstream::orchestrator::Run& run) {
    std::vector<Update> out;
    for (uint64_t seq = run.log()->first_seq() - 1;; ++seq) {
      RunLog::Next next = run.log()->ReadAfter(seq);
      if (next.entry == nullptr) break;
      out.push_back(next.entry->update);
    }
    return out;
  }

  // "type" or "type:Specialist" for each update.
  static std::vector<std::string> Kinds(const std::vector<Update>& updates) {
    std::vector<std::string> out;
    for (const Update& u : updates) {
      out.push_back(u.specialist().empty()
                        ? UpdateType(u)
                        : UpdateType(u) + ":" + u.specialist());
    }
    return out;
  }

  FakeClock clock_;
  OrchestratorMetrics metrics_;
  std::map<std::string, std::shared_ptr<FakeSpecialistClient>> fakes_;
  std::unique_ptr<SpecialistRegistry> registry_;
  std::unique_ptr<RunManager> manager_;
};

TEST_F(RunTest, EmitsTheFullSequenceWithDenseSeq) {
  auto run = StartRun("risk and aml of ACC-1042");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  ASSERT_NE(risk, nullptr);
  ASSERT_NE(aml, nullptr);
  EXPECT_EQ(fake("DataAnalyst").call_count(), 0u);
  EXPECT_EQ(risk->request().question(), "risk and aml of ACC-1042");
  EXPECT_EQ(risk->request().request_id(), (*run)->request_id());
  EXPECT_THAT(risk->request().task(), HasSubstr("risk"));

  risk->Emit(ProgressOf(50));
  aml->Emit(ProgressOf(30));
  risk->Emit(PartialOf({{"risk_score", 7.5}, {"confidence", 0.9}}));
  risk->Finish(absl::OkStatus());
  aml->Emit(PartialOf({{"findings", {{{"rule", "structuring"}}}}}));
  aml->Finish(absl::OkStatus());

  std::vector<Update> log = LogOf(**run);
  EXPECT_THAT(Kinds(log),
              ElementsAre("status", "thinking", "status",
                          "specialist_activated:RiskAnalyst",
                          "specialist_activated:ComplianceExpert",
                          "progress:RiskAnalyst", "progress:ComplianceExpert",
                          "partial_result:RiskAnalyst",
                          "specialist_complete:RiskAnalyst", "synthesis",
                          "partial_result:ComplianceExpert",
                          "specialist_complete:ComplianceExpert", "synthesis",
                          "status", "complete"));
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].seq(), i + 1);
    EXPECT_EQ(log[i].request_id(), (*run)->request_id());
    EXPECT_NE(log[i].emitted_at(), 0);
  }
  EXPECT_EQ(log[0].status().status(), agentstream::v1::RUN_STATUS_ANALYZING);
  EXPECT_EQ(log[1].thinking().agent(), "Orchestrator");
  EXPECT_THAT(log[1].thinking().thought(), HasSubstr("RiskAnalyst (risk)"));
  EXPECT_EQ(log[2].status().status(), agentstream::v1::RUN_STATUS_DELEGATING);
  EXPECT_EQ(log[3].specialist_activated().icon(), "*");
  EXPECT_EQ(log[3].specialist_activated().display_name(),
            "RiskAnalyst (display)");
  EXPECT_THAT(log[3].specialist_activated().task(), HasSubstr("ACC-1042"));
  EXPECT_EQ(log[8].specialist_complete().outcome(),
            agentstream::v1::OUTCOME_OK);
  EXPECT_THAT(log[9].synthesis().specialists_complete(),
              ElementsAre("RiskAnalyst"));
  EXPECT_THAT(log[9].synthesis().specialists_pending(),
              ElementsAre("ComplianceExpert"));
  EXPECT_EQ(log[13].status().status(),
            agentstream::v1::RUN_STATUS_SYNTHESIZING);
  const auto& complete = log.back().complete();
  EXPECT_EQ(complete.outcome(), agentstream::v1::OUTCOME_OK);
  nlohmann::json result = StructToJson(complete.result());
  EXPECT_THAT(result["answer"].get<std::string>(), HasSubstr("7.50/10"));
  EXPECT_EQ(result["specialists"]["RiskAnalyst"]["risk_score"], 7.5);
  EXPECT_EQ(result["missing"], nlohmann::json::array());
  EXPECT_TRUE((*run)->finished());
  EXPECT_TRUE((*run)->log()->ended());
  EXPECT_EQ(metrics_.runs_active(), 0);
  EXPECT_THAT(metrics_.Render(),
              HasSubstr("specialist_calls_total{specialist=\"RiskAnalyst\","
                        "instance=\"addr-RiskAnalyst\"} 1"));
}

TEST_F(RunTest, SpecialistUpdatesAreStampedButKeepTheirEmittedAt) {
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  Update u = ProgressOf(10);
  u.set_emitted_at(42);
  u.set_seq(999);
  u.set_request_id("spoofed");
  u.set_specialist("Someone");
  u.set_instance("risk-7:50051");
  risk->Emit(u);
  // Kinds that belong to the orchestrator are not forwarded.
  Update complete;
  complete.mutable_complete()->set_outcome(agentstream::v1::OUTCOME_OK);
  risk->Emit(complete);
  risk->Finish(absl::OkStatus());
  std::vector<Update> log = LogOf(**run);
  ASSERT_GT(log.size(), 5u);
  EXPECT_EQ(log[4].progress().progress(), 10u);
  EXPECT_EQ(log[4].seq(), 5u);
  EXPECT_EQ(log[4].emitted_at(), 42);
  EXPECT_EQ(log[4].request_id(), (*run)->request_id());
  EXPECT_EQ(log[4].specialist(), "RiskAnalyst");
  EXPECT_EQ(log[4].instance(), "risk-7:50051");
  EXPECT_EQ(UpdateType(log[5]), "specialist_complete");
  EXPECT_EQ(log[5].instance(), "risk-7:50051");
}

TEST_F(RunTest, FiguresComeFromTheSpecialistsSummaryPartialResult) {
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  risk->Emit(PartialOf({{"part", "volatility"}, {"outflow", 12.5}}));
  risk->Emit(PartialOf({{"part", "score"},
                        {"risk_score", 7.2},
                        {"level", "high"},
                        {"summary", "Risk 7.2/10 for ACC-1"}}));
  risk->Finish(absl::OkStatus());
  nlohmann::json result = StructToJson(LogOf(**run).back().complete().result());
  EXPECT_EQ(result["specialists"]["RiskAnalyst"],
            (nlohmann::json{{"risk_score", 7.2}, {"level", "high"}}));
  EXPECT_THAT(result["answer"].get<std::string>(),
              HasSubstr("RiskAnalyst: Risk 7.2/10 for ACC-1."));
}

TEST_F(RunTest, TwoSpecialistsEmittingAlternatelyAppearInterleaved) {
  auto run = StartRun("risk and compliance");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  for (uint32_t i = 1; i <= 3; ++i) {
    risk->Emit(ProgressOf(i * 10));
    aml->Emit(ProgressOf(i * 10));
  }
  std::vector<Update> log = LogOf(**run);
  std::vector<std::string> progress;
  for (const Update& u : log) {
    if (u.has_progress()) progress.push_back(u.specialist());
  }
  // Live merge: neither waits for the other to finish.
  EXPECT_THAT(progress, ElementsAre("RiskAnalyst", "ComplianceExpert",
                                    "RiskAnalyst", "ComplianceExpert",
                                    "RiskAnalyst", "ComplianceExpert"));
  EXPECT_FALSE((*run)->finished());
  risk->Finish(absl::OkStatus());
  aml->Finish(absl::OkStatus());
  EXPECT_TRUE((*run)->finished());
}

TEST_F(RunTest, SeqIsDenseAndOrderedAcrossConcurrentSpecialists) {
  auto run = StartRun("transactions risk aml");
  ASSERT_THAT(run, IsOk());
  // Three specialists emitting at the same time, each from its own thread.
  std::vector<std::thread> threads;
  for (const char* name : {"DataAnalyst", "RiskAnalyst", "ComplianceExpert"}) {
    std::shared_ptr<FakeAnalyzeCall> call = CallOf(name);
    ASSERT_NE(call, nullptr);
    threads.emplace_back([call] {
      for (int i = 1; i <= kPerSpecialist; ++i) {
        call->Emit(ProgressOf(static_cast<uint32_t>(i)));
      }
      call->Emit(PartialOf({{"n", kPerSpecialist}}));
      call->Finish(absl::OkStatus());
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE((*run)->finished());
  std::vector<Update> log = LogOf(**run);
  // 3 opening + 3 x (activated + 400 progress + partial + complete +
  // synthesis) + status + complete.
  ASSERT_EQ(log.size(), 3u + 3u * (kPerSpecialist + 4) + 2u);
  std::map<std::string, uint32_t> last_progress;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(log[i].seq(), i + 1);
    if (log[i].has_progress()) {
      // Each specialist's own order is kept.
      EXPECT_EQ(log[i].progress().progress(),
                last_progress[log[i].specialist()] + 1);
      last_progress[log[i].specialist()] = log[i].progress().progress();
    }
  }
  EXPECT_EQ(UpdateType(log.back()), "complete");
  EXPECT_EQ(metrics_.updates_total(), static_cast<int64_t>(log.size()));
}

TEST_F(RunTest, AFailingSpecialistBecomesAnErrorAndTheRunCompletesPartial) {
  auto run = StartRun("risk and compliance");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  risk->Emit(ProgressOf(10));
  risk->Finish(absl::InternalError("database is locked"));
  aml->Emit(PartialOf({{"findings", nlohmann::json::array()}}));
  aml->Finish(absl::OkStatus());

  std::vector<Update> log = LogOf(**run);
  auto error = std::find_if(log.begin(), log.end(),
                            [](const Update& u) { return u.has_error(); });
  ASSERT_NE(error, log.end());
  EXPECT_EQ(error->specialist(), "RiskAnalyst");
  EXPECT_EQ(error->error().code(), "internal");
  EXPECT_THAT(error->error().message(), HasSubstr("database is locked"));
  EXPECT_FALSE(error->error().retryable());
  auto failed = std::find_if(log.begin(), log.end(), [](const Update& u) {
    return u.has_specialist_complete() && u.specialist() == "RiskAnalyst";
  });
  ASSERT_NE(failed, log.end());
  EXPECT_EQ(failed->specialist_complete().outcome(),
            agentstream::v1::OUTCOME_FAILED);
  const Update& complete = log.back();
  ASSERT_TRUE(complete.has_complete());
  EXPECT_EQ(complete.complete().outcome(), agentstream::v1::OUTCOME_PARTIAL);
  nlohmann::json result = StructToJson(complete.complete().result());
  EXPECT_EQ(result["missing"], nlohmann::json::array({"RiskAnalyst"}));
  EXPECT_THAT(result["answer"].get<std::string>(),
              HasSubstr("ComplianceExpert found no AML issues"));
  EXPECT_THAT(
      metrics_.Render(),
      HasSubstr("specialist_errors_total{specialist=\"RiskAnalyst\"} 1"));
  EXPECT_THAT(metrics_.Render(),
              HasSubstr("runs_completed_total{outcome=\"partial\"} 1"));
}

TEST_F(RunTest, UnavailableBeforeTheFirstUpdateIsRetried) {
  int attempts = 0;
  fake("RiskAnalyst")
      .SetOnAnalyze([&attempts](std::shared_ptr<FakeAnalyzeCall> call) {
        if (++attempts == 1) call->Finish(absl::UnavailableError("refused"));
      });
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto second = CallOf("RiskAnalyst", 1);
  ASSERT_NE(second, nullptr);
  second->Emit(ProgressOf(100));
  second->Finish(absl::OkStatus());
  std::vector<Update> log = LogOf(**run);
  EXPECT_EQ(log.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  for (const Update& u : log) EXPECT_FALSE(u.has_error());
}

TEST_F(RunTest, UnavailableAfterEveryAttemptIsARetryableError) {
  fake("RiskAnalyst").SetOnAnalyze([](std::shared_ptr<FakeAnalyzeCall> call) {
    call->Finish(absl::UnavailableError("connection refused"));
  });
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(fake("RiskAnalyst").call_count(), 3u);
  std::vector<Update> log = LogOf(**run);
  auto error = std::find_if(log.begin(), log.end(),
                            [](const Update& u) { return u.has_error(); });
  ASSERT_NE(error, log.end());
  EXPECT_EQ(error->error().code(), "unavailable");
  EXPECT_TRUE(error->error().retryable());
  EXPECT_EQ(log.back().complete().outcome(), agentstream::v1::OUTCOME_PARTIAL);
}

TEST_F(RunTest, CancelEndsTheRunAtOnceAndCancelsTheCalls) {
  // A specialist that ignores cancellation must not hold the run up.
  fake("RiskAnalyst").set_finish_on_cancel(false);
  auto run = StartRun("risk and compliance and transactions");
  ASSERT_THAT(run, IsOk());
  auto data = CallOf("DataAnalyst");
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  data->Emit(PartialOf({{"inflow", 1}, {"outflow", 2}, {"net", -1}}));
  data->Finish(absl::OkStatus());
  risk->Emit(ProgressOf(5));

  EXPECT_THAT(manager_->Cancel((*run)->request_id()), IsOkAndHolds(true));
  EXPECT_TRUE(risk->cancelled());
  EXPECT_TRUE(aml->cancelled());
  EXPECT_TRUE(aml->finished());
  EXPECT_FALSE(data->cancelled());
  EXPECT_TRUE((*run)->finished());
  // Late updates are dropped.
  risk->Emit(ProgressOf(6));
  risk->Finish(absl::OkStatus());

  std::vector<Update> log = LogOf(**run);
  std::vector<std::string> kinds = Kinds(log);
  std::vector<std::string> tail(kinds.end() - 6, kinds.end());
  EXPECT_THAT(tail,
              ElementsAre("status", "specialist_complete:RiskAnalyst",
                          "synthesis", "specialist_complete:ComplianceExpert",
                          "synthesis", "complete"));
  EXPECT_EQ(log[log.size() - 6].status().status(),
            agentstream::v1::RUN_STATUS_CANCELLED);
  EXPECT_EQ(log[log.size() - 5].specialist_complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
  EXPECT_EQ(log.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
  nlohmann::json result = StructToJson(log.back().complete().result());
  EXPECT_EQ(result["missing"],
            nlohmann::json::array({"RiskAnalyst", "ComplianceExpert"}));
  EXPECT_TRUE(result["specialists"].contains("DataAnalyst"));

  EXPECT_THAT(manager_->Cancel((*run)->request_id()), IsOkAndHolds(false));
  EXPECT_THAT(manager_->Cancel("req_unknown"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RunTest, SoftDeadlineWarnsAndHardDeadlineAbandons) {
  RunManagerOptions options;
  options.soft_deadline = absl::Seconds(10);
  options.hard_deadline = absl::Seconds(30);
  Configure(options);
  auto run = StartRun("risk and compliance");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  clock_.Advance(absl::Seconds(5));
  aml->Emit(PartialOf({{"alerts", 0}}));
  aml->Finish(absl::OkStatus());
  clock_.Advance(absl::Seconds(6));
  manager_->Sweep();
  manager_->Sweep();  // Reported once.
  EXPECT_FALSE(risk->cancelled());
  clock_.Advance(absl::Seconds(20));
  manager_->Sweep();
  EXPECT_TRUE(risk->cancelled());
  EXPECT_TRUE((*run)->finished());

  std::vector<Update> log = LogOf(**run);
  std::vector<Update> timeouts;
  for (const Update& u : log) {
    if (u.has_timeout()) timeouts.push_back(u);
  }
  ASSERT_EQ(timeouts.size(), 2u);
  EXPECT_EQ(timeouts[0].specialist(), "RiskAnalyst");
  EXPECT_EQ(timeouts[0].timeout().action(),
            agentstream::v1::TIMEOUT_ACTION_CONTINUING);
  EXPECT_EQ(timeouts[1].timeout().action(),
            agentstream::v1::TIMEOUT_ACTION_ABANDONED);
  auto complete = std::find_if(log.begin(), log.end(), [](const Update& u) {
    return u.has_specialist_complete() && u.specialist() == "RiskAnalyst";
  });
  ASSERT_NE(complete, log.end());
  EXPECT_EQ(complete->specialist_complete().outcome(),
            agentstream::v1::OUTCOME_TIMED_OUT);
  EXPECT_EQ(complete->specialist_complete().duration_ms(), 31000);
  EXPECT_EQ(log.back().complete().outcome(), agentstream::v1::OUTCOME_PARTIAL);
  nlohmann::json result = StructToJson(log.back().complete().result());
  EXPECT_EQ(result["missing"], nlohmann::json::array({"RiskAnalyst"}));
  EXPECT_THAT(result["answer"].get<std::string>(), HasSubstr("timed out"));
}

TEST_F(RunTest, LastFollowerLeavingCancelsAtOnceWithoutGrace) {
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  (*run)->AddFollower();
  (*run)->AddFollower();
  manager_->ReleaseFollower(*run);
  EXPECT_FALSE(risk->cancelled());
  manager_->ReleaseFollower(*run);
  EXPECT_TRUE(risk->cancelled());
  EXPECT_EQ(LogOf(**run).back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
}

TEST_F(RunTest, WithAGracePeriodAReturningFollowerKeepsTheRun) {
  RunManagerOptions options;
  options.disconnect_grace = absl::Seconds(30);
  Configure(options);
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  (*run)->AddFollower();
  manager_->ReleaseFollower(*run);
  clock_.Advance(absl::Seconds(20));
  manager_->Sweep();
  EXPECT_FALSE(risk->cancelled());
  (*run)->AddFollower();  // Came back.
  clock_.Advance(absl::Seconds(20));
  manager_->Sweep();
  EXPECT_FALSE(risk->cancelled());
  manager_->ReleaseFollower(*run);
  clock_.Advance(absl::Seconds(31));
  manager_->Sweep();
  EXPECT_TRUE(risk->cancelled());
  EXPECT_TRUE((*run)->finished());
}

// Attach: a follower that starts late replays the log, then follows live.
class VectorSink final : public LogFollower::Sink {
 public:
  void Send(std::shared_ptr<const LogEntry> entry) override {
    absl::MutexLock lock(&mu_);
    seqs_.push_back(entry->seq());
    pending_ = true;
  }
  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    status_ = status;
  }
  // Completes the write in flight, if any (as the transport would).
  bool TakePending() {
    absl::MutexLock lock(&mu_);
    bool p = pending_;
    pending_ = false;
    return p;
  }
  std::vector<uint64_t> seqs() {
    absl::MutexLock lock(&mu_);
    return seqs_;
  }
  bool ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> seqs_;
  bool pending_ = false;
  bool ended_ = false;
  absl::Status status_;
};

void DrainAll(VectorSink& sink, LogFollower& follower) {
  while (sink.TakePending()) follower.OnWriteDone(true);
}

TEST_F(RunTest, AttachReplaysFromAfterSeqThenFollowsLive) {
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  risk->Emit(ProgressOf(10));  // seq 5
  risk->Emit(ProgressOf(20));  // seq 6

  RunPtr found = manager_->Find((*run)->request_id());
  ASSERT_EQ(found, *run);
  VectorSink sink;
  auto follower = std::make_shared<LogFollower>(found->log(), 3, &sink);
  follower->Start();
  DrainAll(sink, *follower);
  EXPECT_THAT(sink.seqs(), ElementsAre(4, 5, 6));
  risk->Emit(ProgressOf(30));  // seq 7, live
  DrainAll(sink, *follower);
  EXPECT_THAT(sink.seqs(), ElementsAre(4, 5, 6, 7));
  EXPECT_FALSE(sink.ended());
  risk->Finish(absl::OkStatus());
  DrainAll(sink, *follower);
  EXPECT_TRUE(sink.ended());
  EXPECT_EQ(sink.seqs().back(), found->log()->last_seq());
  follower->Stop();
}

TEST_F(RunTest, LogIsBoundedPerRun) {
  RunManagerOptions options;
  options.max_log_events = 10;
  Configure(options);
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  for (uint32_t i = 0; i < 50; ++i) risk->Emit(ProgressOf(i));
  risk->Finish(absl::OkStatus());
  EXPECT_EQ((*run)->log()->size(), 10u);
  EXPECT_EQ((*run)->log()->last_seq(), 4u + 50u + 4u);
  EXPECT_TRUE((*run)->log()->ReadAfter(0).gap);
  EXPECT_EQ(UpdateType(LogOf(**run).back()), "complete");
}

TEST_F(RunTest, EndedRunsExpireAfterTheTtl) {
  RunManagerOptions options;
  options.log_ttl = absl::Minutes(5);
  Configure(options);
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  const std::string id = (*run)->request_id();
  clock_.Advance(absl::Minutes(10));  // Still running: kept.
  EXPECT_NE(manager_->Find(id), nullptr);
  CallOf("RiskAnalyst")->Finish(absl::OkStatus());
  clock_.Advance(absl::Minutes(4));
  EXPECT_NE(manager_->Find(id), nullptr);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(manager_->Find(id), nullptr);
  EXPECT_EQ(manager_->run_count(), 0u);
}

TEST_F(RunTest, ManyRunsAtOnceAreIndependent) {
  std::vector<RunPtr> runs;
  for (int i = 0; i < 20; ++i) {
    auto run = StartRun("risk");
    ASSERT_THAT(run, IsOk());
    runs.push_back(*run);
  }
  for (int i = 0; i < 20; ++i) {
    auto call = CallOf("RiskAnalyst", static_cast<size_t>(i));
    ASSERT_NE(call, nullptr);
    EXPECT_EQ(call->request().request_id(), runs[i]->request_id());
    if (i % 2 == 0) call->Finish(absl::OkStatus());
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(runs[i]->finished(), i % 2 == 0);
  EXPECT_EQ(metrics_.runs_active(), 10);
}

TEST_F(RunTest, RequestIdComesFromTheRequestTheMetadataOrIsGenerated) {
  agentstream::v1::RunRequest request;
  request.set_message("risk");
  request.set_request_id("req_given");
  auto run = manager_->CreateRun(request, "req_meta");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ((*run)->request_id(), "req_given");
  EXPECT_THAT(manager_->CreateRun(request, ""),
              StatusIs(absl::StatusCode::kAlreadyExists));

  request.clear_request_id();
  run = manager_->CreateRun(request, "req_meta");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ((*run)->request_id(), "req_meta");

  run = manager_->CreateRun(request, "");
  ASSERT_THAT(run, IsOk());
  EXPECT_TRUE(absl::StartsWith((*run)->request_id(), "req_"));
  EXPECT_EQ((*run)->request_id().size(), 20u);

  request.set_request_id("bad id\n");
  EXPECT_THAT(manager_->CreateRun(request, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RunTest, BadInputIsRefusedBeforeAnyRunStarts) {
  EXPECT_THAT(StartRun(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      StartRun("risk", {"Nobody"}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Nobody")));
  EXPECT_EQ(manager_->run_count(), 0u);
  EXPECT_EQ(metrics_.runs_active(), 0);
}

TEST_F(RunTest, UnreachableSpecialistIsPlannedOnlyWhenNamedAndThenFails) {
  fake("RiskAnalyst").SetDescribeStatus(absl::UnavailableError("down"));
  registry_->RefreshOnce(/*all=*/true);
  fake("RiskAnalyst").SetOnAnalyze([](std::shared_ptr<FakeAnalyzeCall> call) {
    call->Finish(absl::UnavailableError("down"));
  });
  auto run = StartRun("risk");  // Matches nobody available: the default.
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(fake("RiskAnalyst").call_count(), 0u);
  ASSERT_NE(CallOf("DataAnalyst"), nullptr);

  run = StartRun("risk", {"RiskAnalyst"});
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(LogOf(**run).back().complete().outcome(),
            agentstream::v1::OUTCOME_PARTIAL);
}

}  // namespace
}  // namespace agentstream::orchestrator
