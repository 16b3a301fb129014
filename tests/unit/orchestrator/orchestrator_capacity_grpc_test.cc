// The orchestrator at capacity, over real gRPC on loopback: a new Run gets
// its share of the runs' memory (--max-total-log-bytes) from a live run that
// holds it (cut, never cancelled), or from an ended run's log (dropped: a
// resume into it is then a gap); a new Run is refused with
// RESOURCE_EXHAUSTED "at_capacity: ... retry later" when the live runs
// (--max-runs) are at their bound; a request over the server's message limit
// is refused without ending anything; and the binary refuses a per-run bound
// above the total.
#include <grpcpp/client_context.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/orchestrator_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"
#include "tests/unit/orchestrator/orchestrator_grpc_fixture.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::Update;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr size_t kKiB = 1024;

class CapacityGrpcTest : public OrchestratorServerTest {
 protected:
  std::vector<FakeServer*> Fakes() override { return {&slow_, &quick_}; }

  // The orchestrator over SlowAnalyst (1000 thoughts of ~0.5 KiB, 5 ms
  // apart) and QuickAnalyst (3 progress updates), with `options` otherwise.
  void StartWithFakes(OrchestratorServerOptions options) {
    slow_ = StartFake("SlowAnalyst", {"slow"}, 1000, absl::Milliseconds(5));
    slow_.service->set_thinking(true);
    quick_ = StartFake("QuickAnalyst", {"quick"}, 3, absl::Milliseconds(1));
    options.specialists = {{"SlowAnalyst", slow_.address()},
                           {"QuickAnalyst", quick_.address()}};
    StartOrchestrator(std::move(options));
  }

  // A slow run, read in the background to its end into `*end`.
  std::thread StartSlowRun(grpc::ClientContext* context, const std::string& id,
                           StreamEnd* end) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    std::shared_ptr<grpc::ClientReader<Update>> reader =
        stub_->Run(context, RunRequestFor("slow", id, {"SlowAnalyst"}));
    return std::thread([reader, end] { *end = ReadToEnd(reader.get()); });
  }

  // Whether a Run of `id` is admitted: its first update comes (then the run
  // is cancelled and its stream read to its end). `*refused` gets the status
  // of a refused one.
  bool Admitted(const std::string& id, grpc::Status* refused) {
    auto context = ContextWithDeadline();
    auto reader =
        stub_->Run(context.get(), RunRequestFor("slow", id, {"SlowAnalyst"}));
    Update first;
    if (!reader->Read(&first)) {
      *refused = reader->Finish();
      return false;
    }
    EXPECT_EQ(first.seq(), 1u);
    EXPECT_EQ(first.request_id(), id);
    agentstream::v1::CancelResponse cancelled;
    EXPECT_TRUE(CancelRun(id, &cancelled).ok());
    StreamEnd rest = ReadToEnd(reader.get());
    EXPECT_TRUE(rest.status.ok()) << rest.status.error_message();
    return true;
  }

  FakeServer slow_, quick_;
};

TEST_F(CapacityGrpcTest, ANewRunGetsItsShareFromALiveRunThatHoldsTheBound) {
  OrchestratorServerOptions options;
  options.runs.max_log_bytes = 32 * kKiB;
  options.runs.max_total_log_bytes = 48 * kKiB;
  StartWithFakes(std::move(options));

  grpc::ClientContext a_context;
  StreamEnd a;
  std::thread a_reader = StartSlowRun(&a_context, "cap-a", &a);
  // Once run A holds more than 24 KiB, a second run's share (48 / 2 KiB)
  // does not fit beside it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->manager().memory_bytes() <= 26 * kKiB &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GT(server_->manager().memory_bytes(), 26 * kKiB);

  // B is admitted: A's log is cut down to its share for it.
  grpc::Status refused;
  EXPECT_TRUE(Admitted("cap-b", &refused)) << refused.error_message();
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_orchestrator_runs_refused_"
                                   "total{reason=\"memory\"} 0\n"));
  EXPECT_THAT(Metrics(),
              Not(HasSubstr("agentstream_orchestrator_log_updates_trimmed_"
                            "total 0\n")));
  // A's first updates are gone: replaying A from the start is a gap...
  StreamEnd replay = AttachToEnd("cap-a", 0);
  EXPECT_EQ(replay.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(replay.status.error_message(), StartsWith("gap:"));

  // ...while A's own reader, keeping up, lost nothing.
  agentstream::v1::CancelResponse cancelled;
  ASSERT_TRUE(CancelRun("cap-a", &cancelled).ok());
  a_reader.join();
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  ASSERT_FALSE(a.updates.empty());
  for (size_t i = 0; i < a.updates.size(); ++i) {
    ASSERT_EQ(a.updates[i].seq(), i + 1);
  }
  EXPECT_EQ(a.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);

  // A has ended: its log is what makes room for C (dropped, not cut).
  EXPECT_TRUE(Admitted("cap-c", &refused)) << refused.error_message();
  EXPECT_THAT(
      Metrics(),
      Not(HasSubstr("agentstream_orchestrator_logs_dropped_total 0\n")));
  StreamEnd at_end = AttachToEnd("cap-a", a.updates.back().seq());
  EXPECT_TRUE(at_end.status.ok());
  EXPECT_TRUE(at_end.updates.empty());
}

TEST_F(CapacityGrpcTest, MaxRunsRefusesANewRunUntilOneEnds) {
  OrchestratorServerOptions options;
  options.runs.max_runs = 1;
  StartWithFakes(std::move(options));

  grpc::ClientContext a_context;
  StreamEnd a;
  std::thread a_reader = StartSlowRun(&a_context, "one-a", &a);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->manager().live_run_count() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  grpc::Status refused;
  EXPECT_FALSE(Admitted("one-b", &refused));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), StartsWith("at_capacity:"));
  EXPECT_THAT(refused.error_message(), HasSubstr("--max-runs"));
  EXPECT_THAT(refused.error_message(), EndsWith("retry later"));
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_orchestrator_runs_refused_"
                                   "total{reason=\"max_runs\"} 1\n"));

  agentstream::v1::CancelResponse cancelled;
  ASSERT_TRUE(CancelRun("one-a", &cancelled).ok());
  a_reader.join();
  EXPECT_TRUE(a.status.ok()) << a.status.error_message();
  EXPECT_TRUE(Admitted("one-b", &refused)) << refused.error_message();
  // Memory was not short: A's log is still whole.
  StreamEnd replay = AttachToEnd("one-a", 0);
  EXPECT_TRUE(replay.status.ok());
  EXPECT_EQ(replay.updates.size(), a.updates.size());
}

TEST_F(CapacityGrpcTest, ARequestOverTheMessageLimitIsRefusedAndNothingElse) {
  StartWithFakes(OrchestratorServerOptions());
  // 2 MiB of options: gRPC refuses it before the service sees it.
  agentstream::v1::RunRequest huge =
      RunRequestFor("quick", "", {"QuickAnalyst"});
  (*huge.mutable_options()->mutable_fields())["blob"].set_string_value(
      std::string(2 << 20, 'x'));
  StreamEnd refused = RunToEnd(huge);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(refused.updates.empty());
  EXPECT_EQ(server_->manager().run_count(), 0u);

  // A large but acceptable one (the gateway sends at most 256 KiB) runs.
  agentstream::v1::RunRequest large =
      RunRequestFor("quick", "", {"QuickAnalyst"});
  (*large.mutable_options()->mutable_fields())["blob"].set_string_value(
      std::string(512 * kKiB, 'x'));
  StreamEnd ran = RunToEnd(large);
  EXPECT_TRUE(ran.status.ok()) << ran.status.error_message();
  ASSERT_FALSE(ran.updates.empty());
  EXPECT_EQ(ran.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_OK);
}

TEST(OrchestratorBinaryCapacityTest, APerRunBoundAboveTheTotalIsRefused) {
  const absl::StatusOr<agentstream::testing::ScopedTempDir> made =
      agentstream::testing::ScopedTempDir::Make("orch_capacity");
  ASSERT_THAT(made, ::agentstream::testing::IsOk());
  const std::string& dir = made->path();
  agentstream::testing::Subprocess::Options options;
  options.binary = "orchestrator";
  options.args = {"--port=0", "--max-log-bytes=2000000",
                  "--max-total-log-bytes=1000000"};
  options.log_path = dir + "/orchestrator.log";
  auto process = agentstream::testing::Subprocess::Start(options);
  ASSERT_THAT(process, ::agentstream::testing::IsOk());
  EXPECT_THAT((*process)->Wait(absl::Seconds(10)),
              ::agentstream::testing::IsOkAndHolds(2));
  EXPECT_THAT((*process)->ReadLog(), HasSubstr("--max-total-log-bytes"));
}

}  // namespace
}  // namespace agentstream::orchestrator
