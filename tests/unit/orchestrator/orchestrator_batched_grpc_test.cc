// The batched streams over real gRPC on loopback (docs/CONTRACT.md, "Batched
// streams"): RunBatched and AttachBatched carry the same updates in the same
// order with the same endings as Run and Attach (through the `orchestrator`
// binary too), and a slow batched reader is cut off and resumes with nothing
// lost. (The specialist side, AnalyzeBatched and its fallback to Analyze:
// orchestrator_analyze_batched_grpc_test.cc; idle batched streams:
// orchestrator_idle_streams_grpc_test.cc.)
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <signal.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "orchestrator/orchestrator_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"
#include "tests/unit/orchestrator/orchestrator_grpc_fixture.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::testing::IsOk;
using agentstream::v1::Orchestrator;
using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;
using ::testing::HasSubstr;

// What a batched stream sent, read to its end: the updates in order, how
// many messages carried them, and how it finished.
struct BatchedEnd {
  std::vector<Update> updates;
  size_t messages = 0;
  grpc::Status status;
};

BatchedEnd ReadBatchedToEnd(grpc::ClientReaderInterface<UpdateBatch>* reader) {
  BatchedEnd end;
  UpdateBatch batch;
  while (reader->Read(&batch)) {
    ++end.messages;
    EXPECT_GT(batch.updates_size(), 0) << "an empty UpdateBatch";
    for (const Update& u : batch.updates()) end.updates.push_back(u);
  }
  end.status = reader->Finish();
  return end;
}

BatchedEnd RunBatchedToEnd(Orchestrator::Stub& stub,
                           const agentstream::v1::RunRequest& request) {
  auto context = ContextWithDeadline();
  auto reader = stub.RunBatched(context.get(), request);
  return ReadBatchedToEnd(reader.get());
}

BatchedEnd AttachBatchedToEnd(Orchestrator::Stub& stub,
                              const std::string& request_id,
                              uint64_t after_seq) {
  auto context = ContextWithDeadline();
  auto reader = stub.AttachBatched(context.get(),
                                   AttachRequestFor(request_id, after_seq));
  return ReadBatchedToEnd(reader.get());
}

// The same updates (field by field: a map's encoding order may differ).
void ExpectSameUpdates(const std::vector<Update>& a,
                       const std::vector<Update>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a[i], b[i]))
        << i << ": " << a[i].ShortDebugString() << " vs "
        << b[i].ShortDebugString();
  }
}

class BatchedGrpcTest : public OverOneSpecialistTest {};

TEST_F(BatchedGrpcTest, BatchedAndSingleFormsCarryTheSameUpdatesAndEndings) {
  // Thinking updates: never coalesced, so every form carries all of them.
  a_ = StartFake("RiskAnalyst", {"risk"}, 2000, absl::ZeroDuration());
  a_.service->set_thinking(true);
  // No cut-off: on a loaded machine this reader may fall 1,024 updates
  // behind a specialist that emits as fast as it can (the cut-off has its
  // own test below).
  OrchestratorServerOptions options;
  options.follower_max_lag = 0;
  StartOverA(options);

  BatchedEnd run = RunBatchedToEnd(*stub_, RunRequestFor("risk", "req_b1"));
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_GT(run.updates.size(), 2000u);
  for (size_t i = 0; i < run.updates.size(); ++i) {
    ASSERT_EQ(run.updates[i].seq(), i + 1);
    ASSERT_EQ(run.updates[i].request_id(), "req_b1");
  }
  EXPECT_EQ(run.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_OK);

  // Attach and AttachBatched of the ended run: the same updates, the batched
  // replay in far fewer messages than updates.
  auto [attached, attach_status] = AttachToEnd("req_b1", 0);
  ASSERT_TRUE(attach_status.ok());
  ExpectSameUpdates(attached, run.updates);
  BatchedEnd replay = AttachBatchedToEnd(*stub_, "req_b1", 0);
  ASSERT_TRUE(replay.status.ok());
  ExpectSameUpdates(replay.updates, run.updates);
  EXPECT_LT(replay.messages * 10, replay.updates.size())
      << replay.messages << " messages";
  // A resume from the middle.
  BatchedEnd rest = AttachBatchedToEnd(*stub_, "req_b1", 1000);
  ASSERT_TRUE(rest.status.ok());
  ExpectSameUpdates(
      rest.updates,
      std::vector<Update>(run.updates.begin() + 1000, run.updates.end()));
}

TEST_F(BatchedGrpcTest, BatchedFormsAnswerWithTheSameStatuses) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 3, absl::Milliseconds(1));
  OrchestratorServerOptions options;
  options.runs.log_ttl = absl::Milliseconds(300);
  StartOverA(options);

  // Refused before any update.
  BatchedEnd empty = RunBatchedToEnd(*stub_, RunRequestFor("  "));
  EXPECT_EQ(empty.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(empty.messages, 0u);
  BatchedEnd unknown = AttachBatchedToEnd(*stub_, "req_nobody", 0);
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);

  BatchedEnd run = RunBatchedToEnd(*stub_, RunRequestFor("risk", "req_b2"));
  ASSERT_TRUE(run.status.ok());
  BatchedEnd taken = RunBatchedToEnd(*stub_, RunRequestFor("risk", "req_b2"));
  EXPECT_EQ(taken.status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  const uint64_t last = run.updates.back().seq();

  BatchedEnd at_end = AttachBatchedToEnd(*stub_, "req_b2", last);
  EXPECT_TRUE(at_end.status.ok());
  EXPECT_EQ(at_end.messages, 0u);
  BatchedEnd ahead = AttachBatchedToEnd(*stub_, "req_b2", last + 1);
  EXPECT_EQ(ahead.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  absl::SleepFor(absl::Milliseconds(400));  // Past the log's TTL.
  BatchedEnd gap = AttachBatchedToEnd(*stub_, "req_b2", 2);
  EXPECT_EQ(gap.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(gap.status.error_message(), ::testing::StartsWith("gap:"));
  EXPECT_EQ(gap.messages, 0u);
  BatchedEnd tomb_end = AttachBatchedToEnd(*stub_, "req_b2", last);
  EXPECT_TRUE(tomb_end.status.ok());
}

TEST_F(BatchedGrpcTest, CancelEndsABatchedStreamLikeARunStream) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 100000, absl::Milliseconds(5));
  StartOverA();
  auto context = ContextWithDeadline();
  auto reader =
      stub_->RunBatched(context.get(), RunRequestFor("risk", "req_b3"));
  UpdateBatch batch;
  std::vector<Update> got;
  while (reader->Read(&batch)) {
    for (const Update& u : batch.updates()) got.push_back(u);
    if (got.back().has_progress()) break;
  }
  ASSERT_FALSE(got.empty());
  agentstream::v1::CancelResponse response;
  ASSERT_TRUE(CancelRun("req_b3", &response).ok());
  EXPECT_TRUE(response.cancelled());
  while (reader->Read(&batch)) {
    for (const Update& u : batch.updates()) got.push_back(u);
  }
  EXPECT_TRUE(reader->Finish().ok());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].seq(), i + 1);
  EXPECT_EQ(got.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
  EXPECT_TRUE(a_.service->WaitCancelled(absl::Seconds(5)));
}

TEST_F(BatchedGrpcTest, ASlowBatchedReaderIsCutOffAndResumesWithNothingLost) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 5000, absl::ZeroDuration());
  a_.service->set_thinking(true);
  OrchestratorServerOptions options;
  options.follower_max_lag = 16;
  options.runs.disconnect_grace = absl::Seconds(30);
  StartOverA(options);

  // A client whose receive window stays at 64 KiB (no BDP probing), so that
  // its not reading stalls the orchestrator's writes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stub = Orchestrator::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                grpc::InsecureChannelCredentials(), args));
  auto context = ContextWithDeadline();
  auto reader =
      stub->RunBatched(context.get(), RunRequestFor("risk", "req_b_slow"));
  UpdateBatch batch;
  ASSERT_TRUE(reader->Read(&batch));
  std::vector<Update> got(batch.updates().begin(), batch.updates().end());
  // Stop reading while the specialist produces.
  absl::SleepFor(absl::Milliseconds(700));
  while (reader->Read(&batch)) {
    got.insert(got.end(), batch.updates().begin(), batch.updates().end());
  }
  grpc::Status status = reader->Finish();
  ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message() << " after " << got.size() << " updates";
  EXPECT_THAT(status.error_message(), ::testing::StartsWith("slow_consumer:"));
  EXPECT_THAT(
      status.error_message(),
      HasSubstr(absl::StrCat("attach again after seq ", got.back().seq())));
  ASSERT_FALSE(got.back().has_complete());

  BatchedEnd rest = AttachBatchedToEnd(*stub_, "req_b_slow", got.back().seq());
  ASSERT_TRUE(rest.status.ok()) << rest.status.error_message();
  got.insert(got.end(), rest.updates.begin(), rest.updates.end());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].seq(), i + 1);
  EXPECT_EQ(got.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_orchestrator_slow_consumer_"
                                   "cutoffs_total 1\n"));
}

TEST_F(BatchedGrpcTest, ABatchedFollowerFarBehindGetsCoalescedProgress) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 3000, absl::ZeroDuration());
  OrchestratorServerOptions options;
  options.follower_max_lag = 8;
  StartOverA(options);
  BatchedEnd run = RunBatchedToEnd(*stub_, RunRequestFor("risk", "req_b4"));
  ASSERT_TRUE(run.status.ok());
  // Late observer of the whole log: progress coalesced, nothing else lost,
  // in order.
  BatchedEnd late = AttachBatchedToEnd(*stub_, "req_b4", 0);
  ASSERT_TRUE(late.status.ok());
  size_t non_progress = 0;
  for (size_t i = 1; i < late.updates.size(); ++i) {
    ASSERT_GT(late.updates[i].seq(), late.updates[i - 1].seq());
  }
  for (const Update& u : late.updates) non_progress += u.has_progress() ? 0 : 1;
  const uint64_t last = run.updates.back().seq();
  EXPECT_EQ(late.updates.back().seq(), last);
  EXPECT_EQ(last - 3000, non_progress);
  EXPECT_LT(late.updates.size(), 3000u);
}

// The binary serves the batched forms: the same run read through RunBatched,
// Attach and AttachBatched, then stopped by SIGTERM.
TEST(OrchestratorBinaryBatchedTest, ServesRunBatchedAndAttachBatched) {
  FakeServer fake =
      StartFake("RiskAnalyst", {"risk"}, 500, absl::ZeroDuration());
  fake.service->set_thinking(true);
  const absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("orch_batched");
  ASSERT_THAT(dir, IsOk());
  OrchestratorProcess orchestrator;
  ASSERT_NO_FATAL_FAILURE(StartOrchestratorBinary(
      dir->path(), {"--specialist", "RiskAnalyst=" + fake.address()},
      &orchestrator));
  BatchedEnd run =
      RunBatchedToEnd(*orchestrator.stub, RunRequestFor("risk", "req_bin"));
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_GT(run.updates.size(), 500u);
  for (size_t i = 0; i < run.updates.size(); ++i) {
    ASSERT_EQ(run.updates[i].seq(), i + 1);
  }
  EXPECT_EQ(run.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_OK);
  auto [attached, status] =
      AttachToEnd(*orchestrator.stub, AttachRequestFor("req_bin", 0));
  ASSERT_TRUE(status.ok());
  ExpectSameUpdates(attached, run.updates);
  BatchedEnd replay = AttachBatchedToEnd(*orchestrator.stub, "req_bin", 10);
  ASSERT_TRUE(replay.status.ok());
  ExpectSameUpdates(
      replay.updates,
      std::vector<Update>(run.updates.begin() + 10, run.updates.end()));
  EXPECT_LT(replay.messages, replay.updates.size());
  orchestrator.process->Signal(SIGTERM);
  EXPECT_THAT(orchestrator.process->Wait(absl::Seconds(10)),
              ::agentstream::testing::IsOkAndHolds(0));
  fake.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace agentstream::orchestrator
