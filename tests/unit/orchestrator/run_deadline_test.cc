// Failing and slow specialists: per-kind deadlines, retries before the first
// update, failures after it, and the --specialist-deadline parser.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/update_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/run.h"
#include "orchestrator/run_manager.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/run_fixture.h"

namespace agentstream::orchestrator::testing {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::HasSubstr;

std::vector<Update> TimeoutsOf(const std::vector<Update>& log,
                               const std::string& specialist) {
  std::vector<Update> out;
  for (const Update& u : log) {
    if (u.has_timeout() && u.specialist() == specialist) out.push_back(u);
  }
  return out;
}

// Options with the global `soft` and `hard` deadlines and the per-kind
// `by_kind` ones.
RunManagerOptions DeadlineOptions(
    absl::Duration soft, absl::Duration hard,
    std::map<std::string, SpecialistDeadlines> by_kind) {
  RunManagerOptions options;
  options.soft_deadline = soft;
  options.hard_deadline = hard;
  options.deadlines_by_kind = std::move(by_kind);
  return options;
}

TEST_F(RunTest, PerKindDeadlinesOverrideTheGlobalOnes) {
  Configure(DeadlineOptions(
      absl::Seconds(10), absl::Seconds(30),
      {{"RiskAnalyst", {absl::Seconds(2), absl::Seconds(5)}},
       {"ComplianceExpert", {absl::ZeroDuration(), absl::ZeroDuration()}}}));
  auto run = StartRun("risk and compliance and transactions");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  auto data = CallOf("DataAnalyst");
  risk->Emit(ProgressOf(5));
  AdvanceAndSweep(absl::Seconds(3));
  EXPECT_EQ(TimeoutsOf(LogOf(**run), "RiskAnalyst").size(), 1u);
  EXPECT_FALSE(risk->cancelled());
  AdvanceAndSweep(absl::Seconds(2));
  EXPECT_TRUE(risk->cancelled());
  data->Finish(absl::OkStatus());  // Before the global soft deadline.

  // ComplianceExpert's deadlines are off: no timeout even past the global
  // hard deadline.
  AdvanceAndSweep(absl::Minutes(10));
  EXPECT_FALSE(aml->cancelled());
  EXPECT_TRUE(TimeoutsOf(LogOf(**run), "ComplianceExpert").empty());
  aml->Emit(PartialOf({{"alerts", 0}}));
  aml->Finish(absl::OkStatus());

  std::vector<Update> log = LogOf(**run);
  std::vector<Update> risk_timeouts = TimeoutsOf(log, "RiskAnalyst");
  ASSERT_EQ(risk_timeouts.size(), 2u);
  EXPECT_EQ(risk_timeouts[0].timeout().action(),
            agentstream::v1::TIMEOUT_ACTION_CONTINUING);
  EXPECT_EQ(risk_timeouts[1].timeout().action(),
            agentstream::v1::TIMEOUT_ACTION_ABANDONED);
  EXPECT_THAT(risk_timeouts[1].timeout().message(), HasSubstr("5s"));
  EXPECT_EQ(log.back().complete().outcome(), agentstream::v1::OUTCOME_PARTIAL);
  nlohmann::json result = StructToJson(log.back().complete().result());
  EXPECT_EQ(result["missing"], nlohmann::json::array({"RiskAnalyst"}));
  const std::string text = metrics_.Render();
  EXPECT_THAT(text, HasSubstr("specialist_timeouts_total{specialist="
                              "\"RiskAnalyst\",action=\"continuing\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("specialist_timeouts_total{specialist="
                              "\"RiskAnalyst\",action=\"abandoned\"} 1\n"));
}

// The sweeper wakes when Sweep() says the next deadline is due, so each
// deadline fires at that instant rather than up to a whole sweep interval
// after it (a per-kind 600:1500 fired at 913 and 1914 ms with a 1 s sweep).
TEST_F(RunTest, SweepSaysWhenTheNextDeadlineIsDueAndEachFiresThen) {
  const RunManagerOptions options = DeadlineOptions(
      absl::Seconds(60), absl::Seconds(300),
      {{"Synthetic", {absl::Milliseconds(600), absl::Milliseconds(1500)}}});
  Configure(options);
  const absl::Time start = clock_.Now();
  auto run = StartRun("go", {"Synthetic"});
  ASSERT_THAT(run, IsOk());
  auto call = CallOf("Synthetic");
  ASSERT_NE(call, nullptr);
  call->Emit(ProgressOf(5));

  // A sweeper that sleeps until the time Sweep() returns; the log as it
  // was before its TTL dropped it.
  std::vector<absl::Duration> wakes;
  std::vector<Update> log;
  for (absl::Time next = manager_->Sweep();
       next != absl::InfiniteFuture() && wakes.size() < 5;
       next = manager_->Sweep()) {
    if ((*run)->log()->size() > 0) log = LogOf(**run);
    ASSERT_GT(next, clock_.Now());
    clock_.Advance(next - clock_.Now());
    wakes.push_back(next - start);
  }
  // Soft, hard, then the ended run's log TTL; nothing after it.
  EXPECT_THAT(wakes, ::testing::ElementsAre(
                         absl::Milliseconds(600), absl::Milliseconds(1500),
                         absl::Milliseconds(1500) + options.log_ttl));
  EXPECT_TRUE(call->cancelled());
  EXPECT_EQ((*run)->log()->size(), 0u);  // Expired: dropped.

  int64_t activated_ns = 0;
  for (const Update& u : log) {
    if (u.has_specialist_activated()) activated_ns = u.emitted_at();
  }
  std::vector<Update> timeouts = TimeoutsOf(log, "Synthetic");
  ASSERT_EQ(timeouts.size(), 2u);
  EXPECT_EQ(timeouts[0].timeout().action(),
            agentstream::v1::TIMEOUT_ACTION_CONTINUING);
  EXPECT_EQ(timeouts[1].timeout().action(),
            agentstream::v1::TIMEOUT_ACTION_ABANDONED);
  // Not one sweep late: at the deadlines exactly (the clock is fake).
  EXPECT_EQ(timeouts[0].emitted_at() - activated_ns,
            absl::ToInt64Nanoseconds(absl::Milliseconds(600)));
  EXPECT_EQ(timeouts[1].emitted_at() - activated_ns,
            absl::ToInt64Nanoseconds(absl::Milliseconds(1500)));
}

// A run left without followers: Sweep() says when its grace period ends.
TEST_F(RunTest, SweepSaysWhenAGracePeriodEnds) {
  ConfigureGrace(absl::Seconds(30));
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  (*run)->AddFollower();
  const absl::Time left = clock_.Now();
  manager_->ReleaseFollower(*run);
  EXPECT_EQ(manager_->Sweep(), left + absl::Seconds(30));
  AdvanceAndSweep(absl::Seconds(30));
  EXPECT_TRUE((*run)->finished());
}

TEST_F(RunTest, RetriesAreCappedByMaxAttemptsAndCounted) {
  RunManagerOptions options;
  options.max_attempts = 2;
  Configure(options);
  fake("RiskAnalyst").SetOnAnalyze([](std::shared_ptr<FakeAnalyzeCall> call) {
    call->Finish(absl::UnavailableError("connection refused"));
  });
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(fake("RiskAnalyst").call_count(), 2u);
  EXPECT_EQ(metrics_.specialist_retries("RiskAnalyst"), 1);
  EXPECT_EQ(LogOf(**run).back().complete().outcome(),
            agentstream::v1::OUTCOME_PARTIAL);
}

TEST_F(RunTest, UnavailableAfterTheFirstUpdateIsNotRetriedAndTheRunGoesOn) {
  auto run = StartRun("risk and compliance");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  risk->Emit(ProgressOf(30));
  risk->Finish(absl::UnavailableError("the replica went away"));
  EXPECT_EQ(fake("RiskAnalyst").call_count(), 1u);
  EXPECT_EQ(metrics_.specialist_retries("RiskAnalyst"), 0);
  EXPECT_FALSE((*run)->finished());
  FinishWithNoFindings(*aml);

  std::vector<Update> log = LogOf(**run);
  auto error = FirstError(log);
  ASSERT_NE(error, log.end());
  EXPECT_EQ(error->specialist(), "RiskAnalyst");
  EXPECT_EQ(error->error().code(), "unavailable");
  // Asking again may well work (another replica): retryable.
  EXPECT_TRUE(error->error().retryable());
  EXPECT_EQ(log.back().complete().outcome(), agentstream::v1::OUTCOME_PARTIAL);
  nlohmann::json result = StructToJson(log.back().complete().result());
  EXPECT_EQ(result["missing"], nlohmann::json::array({"RiskAnalyst"}));
  EXPECT_THAT(result["answer"].get<std::string>(), HasSubstr("RiskAnalyst"));
}

TEST(SpecialistDeadlineFlagsTest, ParsesNameSoftAndHard) {
  auto parsed = ParseSpecialistDeadlineFlags(
      {"RiskAnalyst=1000:5000", "Synthetic=0:250, DataAnalyst = 20:0"});
  ASSERT_THAT(parsed, IsOk());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ(parsed->at("RiskAnalyst").soft, absl::Seconds(1));
  EXPECT_EQ(parsed->at("RiskAnalyst").hard, absl::Seconds(5));
  EXPECT_EQ(parsed->at("Synthetic").soft, absl::ZeroDuration());
  EXPECT_EQ(parsed->at("Synthetic").hard, absl::Milliseconds(250));
  EXPECT_EQ(parsed->at("DataAnalyst").soft, absl::Milliseconds(20));
  EXPECT_EQ(parsed->at("DataAnalyst").hard, absl::ZeroDuration());
  EXPECT_THAT(ParseSpecialistDeadlineFlags({}), IsOk());
}

TEST(SpecialistDeadlineFlagsTest, RefusesMalformedValuesNamingThem) {
  for (const char* bad :
       {"RiskAnalyst", "RiskAnalyst=1000", "RiskAnalyst=1:2:3", "=1:2",
        "RiskAnalyst=a:2", "RiskAnalyst=-1:2", "RiskAnalyst=5000:1000",
        "RiskAnalyst=1s:2s"}) {
    auto parsed = ParseSpecialistDeadlineFlags({bad});
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("NAME=SOFT_MS:HARD_MS")))
        << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr(bad)) << bad;
  }
  EXPECT_THAT(ParseSpecialistDeadlineFlags({"A=1:2", "A=3:4"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
}

}  // namespace
}  // namespace agentstream::orchestrator::testing
