// The orchestrator over real gRPC on loopback (issue 4): the disconnect
// grace (a client that comes back keeps the run; one that does not leaves a
// cancelled run), Attach at and past the end, tombstones, retries on another
// replica behind one round-robin target, and a fast stream going out whole
// with buffer-hinted writes.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <httplib.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/orchestrator_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"
#include "tests/unit/orchestrator/orchestrator_grpc_fixture.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::testing::IsOk;
using agentstream::v1::Update;
using ::testing::HasSubstr;

class ResumeGrpcTest : public OrchestratorServerTest {
 protected:
  // The grace periods and TTLs here are short: sweep often.
  void StartOrchestrator(OrchestratorServerOptions options) {
    options.sweep_interval = absl::Milliseconds(20);
    OrchestratorServerTest::StartOrchestrator(std::move(options));
  }
  std::vector<FakeServer*> Fakes() override { return {&slow_, &a_, &b_}; }

  // Options naming one specialist, `name`, served by `fake`.
  static OrchestratorServerOptions OptionsFor(const std::string& name,
                                              const FakeServer& fake) {
    OrchestratorServerOptions options;
    options.specialists = {{name, fake.address()}};
    return options;
  }

  // The orchestrator over a slow SlowAnalyst (1000 updates 10 ms apart) with
  // the disconnect grace `grace`.
  void StartOverASlowAnalyst(absl::Duration grace) {
    slow_ = StartFake("SlowAnalyst", {"slow"}, 1000, absl::Milliseconds(10));
    OrchestratorServerOptions options = OptionsFor("SlowAnalyst", slow_);
    options.runs.disconnect_grace = grace;
    StartOrchestrator(options);
  }

  // Starts a slow run and returns its reader once it has sent a progress
  // update; `*last_seq` is the last seq read.
  std::unique_ptr<grpc::ClientReader<Update>> StartSlowRun(
      grpc::ClientContext* context, const std::string& id, uint64_t* last_seq) {
    auto reader =
        stub_->Run(context, RunRequestFor("slow", id, {"SlowAnalyst"}));
    Update u;
    while (reader->Read(&u)) {
      *last_seq = u.seq();
      if (u.has_progress()) break;
    }
    return reader;
  }

  FakeServer slow_, a_, b_;
};

TEST_F(ResumeGrpcTest, AClientBackWithinTheGraceGetsTheRestOfTheRun) {
  StartOverASlowAnalyst(absl::Milliseconds(400));

  uint64_t last_seq = 0;
  {
    auto context = ContextWithDeadline();
    auto reader = StartSlowRun(context.get(), "req_grace_back", &last_seq);
    ASSERT_GT(last_seq, 0u);
    context->TryCancel();
    reader->Finish();
  }
  const absl::Time left_at = absl::Now();
  absl::SleepFor(absl::Milliseconds(150));

  auto attach_context = ContextWithDeadline();
  auto reader = stub_->Attach(attach_context.get(),
                              AttachRequestFor("req_grace_back", last_seq));
  // Nothing lost, nothing repeated; and the run outlives the grace period.
  uint64_t expected = last_seq + 1;
  Update u;
  while (absl::Now() - left_at < absl::Milliseconds(900) && reader->Read(&u)) {
    ASSERT_EQ(u.seq(), expected);
    ++expected;
    ASSERT_FALSE(u.has_complete()) << "the run ended early";
  }
  EXPECT_GT(expected, last_seq + 10);
  EXPECT_FALSE(slow_.service->WaitCancelled(absl::ZeroDuration()));

  agentstream::v1::CancelResponse response;
  ASSERT_TRUE(CancelRun("req_grace_back", &response).ok());
  EXPECT_TRUE(response.cancelled());
  while (reader->Read(&u)) {
    ASSERT_EQ(u.seq(), expected);
    ++expected;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(u.complete().outcome(), agentstream::v1::OUTCOME_CANCELLED);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("agentstream_orchestrator_runs_cancelled_"
                                 "total{reason=\"request\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("agentstream_orchestrator_runs_cancelled_"
                                 "total{reason=\"grace\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("agentstream_orchestrator_resumes_total 1\n"));
}

TEST_F(ResumeGrpcTest, AClientThatDoesNotComeBackLeavesACancelledRun) {
  StartOverASlowAnalyst(absl::Milliseconds(300));

  uint64_t last_seq = 0;
  auto context = ContextWithDeadline();
  auto reader = StartSlowRun(context.get(), "req_grace_gone", &last_seq);
  context->TryCancel();
  reader->Finish();
  const absl::Time left_at = absl::Now();
  ASSERT_TRUE(slow_.service->WaitCancelled(absl::Seconds(5)));
  EXPECT_GE(absl::Now() - left_at, absl::Milliseconds(250));
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_orchestrator_runs_cancelled_"
                                   "total{reason=\"grace\"} 1\n"));

  // Its log tells what happened.
  auto [rest, status] = AttachToEnd("req_grace_gone", last_seq);
  EXPECT_TRUE(status.ok());
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().seq(), last_seq + 1);
  EXPECT_EQ(rest.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
}

TEST_F(ResumeGrpcTest, AttachAtTheEndAheadAndAfterTheTtl) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 3, absl::Milliseconds(1));
  OrchestratorServerOptions options = OptionsFor("RiskAnalyst", a_);
  options.runs.log_ttl = absl::Milliseconds(300);
  StartOrchestrator(options);

  auto [all, status] = RunToEnd(RunRequestFor("risk", "req_ended"));
  ASSERT_TRUE(status.ok());
  ASSERT_FALSE(all.empty());
  const uint64_t last = all.back().seq();

  auto [at_end, at_end_status] = AttachToEnd("req_ended", last);
  EXPECT_TRUE(at_end.empty());
  EXPECT_TRUE(at_end_status.ok()) << at_end_status.error_message();
  auto [ahead, ahead_status] = AttachToEnd("req_ended", last + 1);
  EXPECT_TRUE(ahead.empty());
  EXPECT_EQ(ahead_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  absl::SleepFor(absl::Milliseconds(400));  // Past the log's TTL.
  auto [tomb_end, tomb_end_status] = AttachToEnd("req_ended", last);
  EXPECT_TRUE(tomb_end.empty());
  EXPECT_TRUE(tomb_end_status.ok()) << tomb_end_status.error_message();
  auto [tomb_gap, tomb_gap_status] = AttachToEnd("req_ended", 2);
  EXPECT_TRUE(tomb_gap.empty());
  EXPECT_EQ(tomb_gap_status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(tomb_gap_status.error_message(), ::testing::StartsWith("gap:"));
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_orchestrator_gaps_total 1\n"));
}

TEST_F(ResumeGrpcTest, UnavailableBeforeTheFirstUpdateGoesToAnotherReplica) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 2, absl::Milliseconds(1));
  a_.service->set_instance("risk-a");
  a_.service->set_fail_with(grpc::StatusCode::UNAVAILABLE);
  b_ = StartFake("RiskAnalyst", {"risk"}, 2, absl::Milliseconds(1));
  b_.service->set_instance("risk-b");
  OrchestratorServerOptions options;
  // One round-robin target over both replicas, as the harness passes it.
  auto endpoints = ParseSpecialistFlags(
      {absl::StrCat("RiskAnalyst=ipv4:", a_.address(), ",", b_.address())});
  ASSERT_THAT(endpoints, IsOk());
  options.specialists = *endpoints;
  options.runs.max_attempts = 3;
  StartOrchestrator(options);

  for (int i = 0; i < 6; ++i) {
    auto [updates, status] = RunToEnd(RunRequestFor("risk"));
    ASSERT_TRUE(status.ok());
    ASSERT_FALSE(updates.empty());
    EXPECT_EQ(updates.back().complete().outcome(), agentstream::v1::OUTCOME_OK)
        << "run " << i;
    for (const Update& u : updates) EXPECT_FALSE(u.has_error());
  }
  // Round robin alternates, so the failing replica was tried, and each time
  // the retry reached the other one.
  EXPECT_GE(a_.service->request_count(), 1u);
  EXPECT_EQ(b_.service->request_count(), 6u);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(
                           "agentstream_orchestrator_specialist_retries_total{"
                           "specialist=\"RiskAnalyst\"} ",
                           a_.service->request_count(), "\n")));
  EXPECT_THAT(metrics, HasSubstr("specialist_calls_total{specialist="
                                 "\"RiskAnalyst\",instance=\"risk-b\"} 6\n"));
  EXPECT_THAT(metrics, ::testing::Not(HasSubstr("instance=\"risk-a\"")));
}

TEST_F(ResumeGrpcTest, AFastStreamGoesOutWholeAndInOrder) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 3000, absl::ZeroDuration());
  OrchestratorServerOptions options = OptionsFor("RiskAnalyst", a_);
  StartOrchestrator(options);
  auto [updates, status] = RunToEnd(RunRequestFor("risk"));
  ASSERT_TRUE(status.ok());
  ASSERT_FALSE(updates.empty());
  for (size_t i = 1; i < updates.size(); ++i) {
    ASSERT_GT(updates[i].seq(), updates[i - 1].seq());
  }
  EXPECT_TRUE(updates.back().has_complete());
  // Coalescing only ever drops progress updates.
  size_t non_progress = 0;
  for (const Update& u : updates) non_progress += u.has_progress() ? 0 : 1;
  const uint64_t last = updates.back().seq();
  EXPECT_EQ(updates.size() + server_->metrics().coalesced(), last);
  EXPECT_EQ(last - 3000, non_progress);
}

TEST_F(ResumeGrpcTest, ASlowReaderIsCutOffAndResumesWithNothingLost) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 5000, absl::ZeroDuration());
  a_.service->set_thinking(true);
  OrchestratorServerOptions options = OptionsFor("RiskAnalyst", a_);
  options.follower_max_lag = 16;
  options.runs.disconnect_grace = absl::Seconds(30);
  StartOrchestrator(options);

  // A client whose receive window stays at 64 KiB (no BDP probing), so that
  // its not reading stalls the orchestrator's writes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stub = agentstream::v1::Orchestrator::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                grpc::InsecureChannelCredentials(), args));
  auto context = ContextWithDeadline();
  auto reader =
      stub->Run(context.get(), RunRequestFor("risk", "req_slow_reader"));
  Update u;
  ASSERT_TRUE(reader->Read(&u));
  // Stop reading while the specialist produces: the transport's buffers fill,
  // the follower's write stalls and it falls far behind.
  absl::SleepFor(absl::Milliseconds(700));
  std::vector<Update> got = {u};
  while (reader->Read(&u)) got.push_back(u);
  grpc::Status status = reader->Finish();
  ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message() << " after " << got.size() << " updates";
  EXPECT_THAT(status.error_message(), ::testing::StartsWith("slow_consumer:"));
  ASSERT_FALSE(got.back().has_complete());

  // Resume from the last seq received: the rest, then the end.
  auto [rest, attach_status] = AttachToEnd("req_slow_reader", got.back().seq());
  ASSERT_TRUE(attach_status.ok());
  got.insert(got.end(), rest.begin(), rest.end());
  // Only thinking updates: nothing may be coalesced, all arrive once.
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].seq(), i + 1);
  EXPECT_TRUE(got.back().has_complete());
  EXPECT_EQ(got.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_orchestrator_slow_consumer_"
                                   "cutoffs_total 1\n"));
  EXPECT_EQ(server_->metrics().runs_cancelled("grace"), 0);
}

// The binary wires --specialist-deadline: a specialist that hangs gets
// `timeout` continuing, then abandoned (its call cancelled), and the run ends.
TEST(OrchestratorBinaryDeadlineTest, PerKindDeadlineFlagsApply) {
  FakeServer slow =
      StartFake("SlowAnalyst", {"slow"}, 100000, absl::Milliseconds(10));
  const absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("orch_deadline");
  ASSERT_THAT(dir, IsOk());
  OrchestratorProcess orchestrator;
  ASSERT_NO_FATAL_FAILURE(StartOrchestratorBinary(
      dir->path(),
      {"--specialist", "SlowAnalyst=" + slow.address(), "--specialist-deadline",
       "SlowAnalyst=200:600", "--specialist-hard-deadline-ms=100000"},
      &orchestrator));
  const absl::Time started = absl::Now();
  auto [updates, status] =
      RunToEnd(*orchestrator.stub, RunRequestFor("slow", "", {"SlowAnalyst"}));
  ASSERT_TRUE(status.ok());
  const absl::Duration took = absl::Now() - started;
  EXPECT_GE(took, absl::Milliseconds(550));
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_TRUE(slow.service->WaitCancelled(absl::Seconds(2)));
  std::vector<agentstream::v1::TimeoutAction> actions;
  bool timed_out = false;
  for (const Update& u : updates) {
    if (u.has_timeout()) actions.push_back(u.timeout().action());
    if (u.has_specialist_complete()) {
      timed_out = u.specialist_complete().outcome() ==
                  agentstream::v1::OUTCOME_TIMED_OUT;
    }
  }
  EXPECT_THAT(actions, ::testing::ElementsAre(
                           agentstream::v1::TIMEOUT_ACTION_CONTINUING,
                           agentstream::v1::TIMEOUT_ACTION_ABANDONED));
  EXPECT_TRUE(timed_out);
  ASSERT_FALSE(updates.empty());
  EXPECT_TRUE(updates.back().has_complete());
  orchestrator.process->Signal(SIGTERM);
  EXPECT_THAT(orchestrator.process->Wait(absl::Seconds(10)),
              ::agentstream::testing::IsOkAndHolds(0));
  slow.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace agentstream::orchestrator
