// The RunManager's disconnect policy (grace, cancel, continue) and the
// Attach contract (ahead, at the end, tombstones after the TTL), with fake
// specialists and a fake clock.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/run.h"
#include "orchestrator/run_manager.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/run_fixture.h"

namespace agentstream::orchestrator::testing {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::StatusIs;
using agentstream::v1::DisconnectPolicy;
using ::testing::HasSubstr;

class DisconnectTest : public RunTest {
 protected:
  absl::StatusOr<RunPtr> StartWithPolicy(DisconnectPolicy policy) {
    agentstream::v1::RunRequest request;
    request.set_message("risk");
    request.set_on_disconnect(policy);
    auto run = manager_->CreateRun(request, "");
    if (run.ok()) {
      (*run)->AddFollower();  // As the Run stream does.
      (*run)->Start();
    }
    return run;
  }

  // Starts a run with `policy` whose one follower then leaves (`cut_off`: as
  // a slow follower is); `run_` is the run, `risk_` its RiskAnalyst call.
  // Call with ASSERT_NO_FATAL_FAILURE.
  void StartThenLeave(DisconnectPolicy policy, bool cut_off = false) {
    auto run = StartWithPolicy(policy);
    ASSERT_THAT(run, IsOk());
    run_ = *run;
    risk_ = CallOf("RiskAnalyst");
    manager_->ReleaseFollower(run_, cut_off);
  }

  RunPtr run_;
  std::shared_ptr<FakeAnalyzeCall> risk_;
};

TEST_F(DisconnectTest, TheDefaultGraceIsThirtySeconds) {
  EXPECT_EQ(RunManagerOptions().disconnect_grace, absl::Seconds(30));
}

TEST_F(DisconnectTest, UnspecifiedWaitsTheGraceThenCancelsWithReasonGrace) {
  ASSERT_NO_FATAL_FAILURE(
      StartThenLeave(agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED));
  AdvanceAndSweep(absl::Seconds(29));
  EXPECT_FALSE(risk_->cancelled());
  EXPECT_FALSE(run_->finished());
  AdvanceAndSweep(absl::Seconds(1));
  EXPECT_TRUE(risk_->cancelled());
  EXPECT_TRUE(run_->finished());
  EXPECT_EQ(metrics_.runs_cancelled("grace"), 1);
  EXPECT_EQ(metrics_.runs_cancelled("disconnect"), 0);
  std::vector<Update> log = LogOf(*run_);
  EXPECT_EQ(log.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
}

TEST_F(DisconnectTest, AReattachWithinTheGraceKeepsTheRunToItsEnd) {
  ASSERT_NO_FATAL_FAILURE(
      StartThenLeave(agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED));
  clock_.Advance(absl::Seconds(25));
  ASSERT_THAT(manager_->Attach(run_->request_id(), 3), IsOkAndHolds(run_));
  run_->AddFollower();  // As the Attach stream does.
  AdvanceAndSweep(absl::Minutes(10));
  EXPECT_FALSE(risk_->cancelled());
  risk_->Emit(ProgressOf(50));
  risk_->Finish(absl::OkStatus());
  EXPECT_EQ(LogOf(*run_).back().complete().outcome(),
            agentstream::v1::OUTCOME_OK);
  EXPECT_EQ(metrics_.runs_cancelled("grace"), 0);
}

TEST_F(DisconnectTest, CancelPolicyCancelsAtOnceWithReasonDisconnect) {
  ASSERT_NO_FATAL_FAILURE(
      StartThenLeave(agentstream::v1::DISCONNECT_POLICY_CANCEL));
  EXPECT_TRUE(risk_->cancelled());
  EXPECT_TRUE(run_->finished());
  EXPECT_EQ(metrics_.runs_cancelled("disconnect"), 1);
}

TEST_F(DisconnectTest, CancelPolicyGivesAFollowerCutOffAsSlowTheGrace) {
  ASSERT_NO_FATAL_FAILURE(StartThenLeave(
      agentstream::v1::DISCONNECT_POLICY_CANCEL, /*cut_off=*/true));
  EXPECT_FALSE(risk_->cancelled());
  AdvanceAndSweep(absl::Seconds(29));
  EXPECT_FALSE(run_->finished());
  AdvanceAndSweep(absl::Seconds(1));
  EXPECT_TRUE(risk_->cancelled());
  EXPECT_EQ(metrics_.runs_cancelled("disconnect"), 0);
}

TEST_F(DisconnectTest, ContinuePolicyNeverCancelsForLackOfFollowers) {
  ASSERT_NO_FATAL_FAILURE(
      StartThenLeave(agentstream::v1::DISCONNECT_POLICY_CONTINUE));
  AdvanceAndSweep(absl::Hours(2));
  EXPECT_FALSE(risk_->cancelled());
  risk_->Finish(absl::OkStatus());
  EXPECT_EQ(LogOf(*run_).back().complete().outcome(),
            agentstream::v1::OUTCOME_OK);
}

TEST_F(DisconnectTest, ZeroGraceCancelsAtOnceWithReasonGrace) {
  ConfigureGrace(absl::ZeroDuration());
  auto run = StartWithPolicy(agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED);
  ASSERT_THAT(run, IsOk());
  manager_->ReleaseFollower(*run);
  EXPECT_TRUE((*run)->finished());
  EXPECT_EQ(metrics_.runs_cancelled("grace"), 1);
}

TEST_F(DisconnectTest, CancelRequestAndShutdownAreCountedByReason) {
  auto a = StartWithPolicy(agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED);
  auto b = StartWithPolicy(agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(manager_->Cancel((*a)->request_id()), IsOkAndHolds(true));
  manager_->CancelAll("stopping");
  EXPECT_EQ(metrics_.runs_cancelled("request"), 1);
  EXPECT_EQ(metrics_.runs_cancelled("shutdown"), 1);
}

class AttachTest : public RunTest {
 protected:
  // A run that has ended OK; returns it with its last seq.
  RunPtr EndedRun() {
    auto run = StartRun("risk");
    EXPECT_THAT(run, IsOk());
    auto risk = CallOf("RiskAnalyst", calls_++);
    risk->Emit(ProgressOf(10));
    risk->Finish(absl::OkStatus());
    EXPECT_TRUE((*run)->finished());
    return *run;
  }
  size_t calls_ = 0;
};

TEST_F(AttachTest, UnknownIsNotFoundAndAheadIsInvalidArgument) {
  EXPECT_THAT(manager_->Attach("req_nobody", 0),
              StatusIs(absl::StatusCode::kNotFound));
  auto running = StartRun("risk");
  ASSERT_THAT(running, IsOk());
  calls_ = 1;
  const uint64_t last = (*running)->log()->last_seq();
  EXPECT_THAT(manager_->Attach((*running)->request_id(), last),
              IsOkAndHolds(*running));  // Waits for what comes next.
  EXPECT_THAT(manager_->Attach((*running)->request_id(), last + 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ahead")));
}

TEST_F(AttachTest, CountsAttachesAndResumes) {
  RunPtr run = EndedRun();
  ASSERT_THAT(manager_->Attach(run->request_id(), 0), IsOk());
  ASSERT_THAT(manager_->Attach(run->request_id(), 2), IsOk());
  const std::string text = metrics_.Render();
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_attaches_total 2\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_resumes_total 1\n"));
}

TEST_F(AttachTest, AfterTheTtlATombstoneEndsAResumeFromTheEndCleanly) {
  RunManagerOptions options;
  options.log_ttl = absl::Minutes(5);
  Configure(options);
  RunPtr run = EndedRun();
  const std::string id = run->request_id();
  const uint64_t last = run->log()->last_seq();
  // Before the TTL: the log answers; at the end there is nothing to follow.
  EXPECT_THAT(manager_->Attach(id, last - 1), IsOkAndHolds(run));
  EXPECT_THAT(manager_->Attach(id, last), IsOkAndHolds(nullptr));

  AdvanceAndSweep(absl::Minutes(6));
  EXPECT_EQ(manager_->run_count(), 0u);
  EXPECT_EQ(manager_->tombstone_count(), 1u);
  // From the final seq (or beyond): OK, nothing to send.
  EXPECT_THAT(manager_->Attach(id, last), IsOkAndHolds(nullptr));
  EXPECT_THAT(manager_->Attach(id, last + 5), IsOkAndHolds(nullptr));
  // Anything earlier is a gap, counted.
  auto gap = manager_->Attach(id, last - 1);
  EXPECT_THAT(gap, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_TRUE(absl::StartsWith(gap.status().message(), "gap:")) << gap.status();
  EXPECT_THAT(manager_->Attach(id, 0), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(metrics_.gaps(), 2);
  // Cancel of an expired run: it had ended.
  EXPECT_THAT(manager_->Cancel(id), IsOkAndHolds(false));

  // Tombstones go after their own TTL.
  AdvanceAndSweep(absl::Hours(25));
  EXPECT_EQ(manager_->tombstone_count(), 0u);
  EXPECT_THAT(manager_->Attach(id, last),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(AttachTest, TombstonesAreBoundedOldestFirst) {
  RunManagerOptions options;
  options.log_ttl = absl::Minutes(1);
  options.max_tombstones = 2;
  Configure(options);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(EndedRun()->request_id());
    AdvanceAndSweep(absl::Minutes(2));  // Expires it: one tombstone per sweep.
  }
  EXPECT_EQ(manager_->tombstone_count(), 2u);
  EXPECT_THAT(manager_->Attach(ids[0], 1000),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(manager_->Attach(ids[1], 1000), IsOkAndHolds(nullptr));
  EXPECT_THAT(manager_->Attach(ids[2], 1000), IsOkAndHolds(nullptr));
}

TEST_F(AttachTest, ATombstonePastItsTtlIsGoneEvenBeforeASweep) {
  RunManagerOptions options;
  options.log_ttl = absl::Minutes(1);
  options.tombstone_ttl = absl::Hours(1);
  Configure(options);
  RunPtr run = EndedRun();
  const std::string id = run->request_id();
  AdvanceAndSweep(absl::Minutes(2));
  ASSERT_EQ(manager_->tombstone_count(), 1u);
  // No sweep is due (nothing else is held): only the clock moves.
  clock_.Advance(absl::Hours(1));
  EXPECT_THAT(manager_->Attach(id, 0), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(manager_->Cancel(id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(AttachTest, ANewRunMayReuseTheIdOfAnExpiredOne) {
  RunManagerOptions options;
  options.log_ttl = absl::Minutes(1);
  Configure(options);
  agentstream::v1::RunRequest request;
  request.set_message("risk");
  request.set_request_id("req_reused");
  auto first = manager_->CreateRun(request, "");
  ASSERT_THAT(first, IsOk());
  (*first)->Start();
  CallOf("RiskAnalyst")->Finish(absl::OkStatus());
  AdvanceAndSweep(absl::Minutes(2));
  EXPECT_EQ(manager_->tombstone_count(), 1u);
  auto second = manager_->CreateRun(request, "");
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(manager_->tombstone_count(), 0u);
  EXPECT_THAT(manager_->Attach("req_reused", 0), IsOkAndHolds(*second));
  manager_->CancelAll("test over");
}

}  // namespace
}  // namespace agentstream::orchestrator::testing
