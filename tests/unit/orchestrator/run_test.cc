// The run engine with in-memory fake specialists: the sequence of updates,
// dense seq under concurrency, live interleaving, failures and retries.
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
#include "tests/unit/orchestrator/run_fixture.h"

namespace agentstream::orchestrator::testing {
namespace {

using ::agentstream::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kPerSpecialist = 400;

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
  FinishWithNoFindings(*aml);

  std::vector<Update> log = LogOf(**run);
  auto error = FirstError(log);
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
  auto error = FirstError(log);
  ASSERT_NE(error, log.end());
  EXPECT_EQ(error->error().code(), "unavailable");
  EXPECT_TRUE(error->error().retryable());
  EXPECT_EQ(log.back().complete().outcome(), agentstream::v1::OUTCOME_PARTIAL);
}

}  // namespace
}  // namespace agentstream::orchestrator::testing
