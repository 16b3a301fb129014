// The run engine's lifecycle with in-memory fake specialists: cancel,
// deadlines, followers leaving and returning, Attach replay, the log's bound
// and TTL, many runs at once, request ids and refused input.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "common/clock.h"
#include "common/update_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/run.h"
#include "orchestrator/run_manager.h"
#include "orchestrator/specialist_registry.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/fake_specialist.h"
#include "tests/unit/orchestrator/run_fixture.h"

namespace agentstream::orchestrator::testing {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

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
  AdvanceAndSweep(absl::Seconds(6));
  manager_->Sweep();  // Reported once.
  EXPECT_FALSE(risk->cancelled());
  AdvanceAndSweep(absl::Seconds(20));
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
  ConfigureGrace(absl::ZeroDuration());
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
  ConfigureGrace(absl::Seconds(30));
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  (*run)->AddFollower();
  manager_->ReleaseFollower(*run);
  AdvanceAndSweep(absl::Seconds(20));
  EXPECT_FALSE(risk->cancelled());
  (*run)->AddFollower();  // Came back.
  AdvanceAndSweep(absl::Seconds(20));
  EXPECT_FALSE(risk->cancelled());
  manager_->ReleaseFollower(*run);
  AdvanceAndSweep(absl::Seconds(31));
  EXPECT_TRUE(risk->cancelled());
  EXPECT_TRUE((*run)->finished());
}

// Attach: a follower that starts late replays the log, then follows live.
TEST_F(RunTest, AttachReplaysFromAfterSeqThenFollowsLive) {
  auto run = StartRun("risk");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  risk->Emit(ProgressOf(10));  // seq 5
  risk->Emit(ProgressOf(20));  // seq 6

  RunPtr found = manager_->Find((*run)->request_id());
  ASSERT_EQ(found, *run);
  FollowerSink sink;
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
  // 128 bits from the CSPRNG, in hex.
  EXPECT_TRUE(absl::StartsWith((*run)->request_id(), "run_"));
  EXPECT_EQ((*run)->request_id().size(), 4u + 32u);
  EXPECT_NE((*manager_->CreateRun(request, ""))->request_id(),
            (*run)->request_id());

  request.set_request_id("bad id\n");
  EXPECT_THAT(manager_->CreateRun(request, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// docs/SECURITY.md, "Runs belong to their owner".
Caller As(const std::string& principal, bool trusted = true,
          bool admin = false) {
  Caller caller;
  caller.principal = principal;
  caller.trusted = trusted;
  caller.admin = admin;
  return caller;
}

TEST_F(RunTest, AnUntrustedCallerCannotChooseARunsId) {
  agentstream::v1::RunRequest request;
  request.set_message("risk");
  request.set_request_id("req_taken");
  ASSERT_THAT(manager_->CreateRun(request, "", As("alice")), IsOk());
  // The same id from an untrusted caller is its correlation id: a new run
  // with a generated id, and no ALREADY_EXISTS telling that the id exists.
  auto run = manager_->CreateRun(request, "", As("peer:bob", false));
  ASSERT_THAT(run, IsOk());
  EXPECT_NE((*run)->request_id(), "req_taken");
  EXPECT_TRUE(absl::StartsWith((*run)->request_id(), "run_"));
  EXPECT_EQ((*run)->owner(), "peer:bob");
}

TEST_F(RunTest, OthersGetNotFoundWordForWordAsForAnUnknownRun) {
  agentstream::v1::RunRequest request;
  request.set_message("risk");
  auto run = manager_->CreateRun(request, "", As("alice"));
  ASSERT_THAT(run, IsOk());
  (*run)->Start();
  const std::string id = (*run)->request_id();
  EXPECT_EQ((*run)->owner(), "alice");

  const absl::Status unknown =
      manager_->Attach("run_nobody", 0, As("bob")).status();
  ASSERT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  const absl::Status attach = manager_->Attach(id, 0, As("bob")).status();
  const absl::Status cancel = manager_->Cancel(id, As("bob")).status();
  EXPECT_EQ(attach.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cancel.code(), absl::StatusCode::kNotFound);
  // Same text but for the id itself.
  EXPECT_EQ(attach.message(),
            absl::StrReplaceAll(unknown.message(), {{"run_nobody", id}}));
  EXPECT_EQ(manager_->Attach(id, 0, As("")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE((*run)->finished());

  // The owner and an administrator may.
  EXPECT_THAT(manager_->Attach(id, 0, As("alice")), IsOk());
  EXPECT_THAT(manager_->Attach(id, 0, As("ops", true, true)), IsOk());
  EXPECT_THAT(manager_->Cancel(id, As("ops", true, true)), IsOkAndHolds(true));
  EXPECT_TRUE((*run)->finished());
  // Ended: the owner learns it has ended, anyone else still nothing.
  EXPECT_THAT(manager_->Cancel(id, As("alice")), IsOkAndHolds(false));
  EXPECT_EQ(manager_->Cancel(id, As("bob")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RunTest, AnExpiredRunsTombstoneStaysItsOwners) {
  agentstream::v1::RunRequest request;
  request.set_message("risk");
  auto run = manager_->CreateRun(request, "", As("alice"));
  ASSERT_THAT(run, IsOk());
  (*run)->Start();
  const std::string id = (*run)->request_id();
  const uint64_t last_seq_before = (*run)->log()->last_seq();
  ASSERT_TRUE((*run)->Cancel(CancelReason::kRequest, "test"));
  const uint64_t last_seq = (*run)->log()->last_seq();
  ASSERT_GT(last_seq, last_seq_before);
  run->reset();
  clock_.Advance(absl::Minutes(10));  // Past the log's TTL.
  manager_->Sweep();
  ASSERT_EQ(manager_->tombstone_count(), 1u);
  // The owner: a clean end from the last seq, a gap before it.
  EXPECT_THAT(manager_->Attach(id, last_seq, As("alice")),
              IsOkAndHolds(nullptr));
  EXPECT_EQ(manager_->Attach(id, 1, As("alice")).status().code(),
            absl::StatusCode::kOutOfRange);
  // Anyone else: unknown.
  EXPECT_EQ(manager_->Attach(id, last_seq, As("bob")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Attach(id, 1, As("bob")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Cancel(id, As("bob")).status().code(),
            absl::StatusCode::kNotFound);
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
}  // namespace agentstream::orchestrator::testing
