// The gRPC RunStream against the fake orchestrator: its first answer comes
// from the call's initial metadata (accepted), from a status alone (refused)
// or not at all (timeout), and an accepted idle call has no update yet.
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gateway/orchestrator_client.h"
#include "gtest/gtest.h"
#include "tests/unit/gateway/fake_orchestrator.h"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;
using namespace agentstream::gateway::testing;  // NOLINT: test helpers.
using Opening = RunStream::Opening;
using Next = RunStream::Next;

class RunStreamOpeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(fake_.Start(), 0);
    client_ =
        NewGrpcOrchestratorClient(NewOrchestratorChannel(fake_.address()));
  }
  void TearDown() override {
    client_.reset();
    fake_.Shutdown();
  }
  // An attach script whose one update waits for `release`.
  void HoldUpdateUntil(std::shared_ptr<absl::Notification> release,
                       InitialMetadata metadata) {
    fake_.SetAttachScript([release, metadata](const auto&) {
      RunScript script;
      script.initial_metadata = metadata;
      script.steps.push_back(
          {absl::ZeroDuration(), CompleteUpdate(4, "ok"), release});
      return script;
    });
  }

  FakeOrchestrator fake_;
  std::unique_ptr<OrchestratorClient> client_;
};

TEST_F(RunStreamOpeningTest, AnAcceptedIdleCallOpensOnItsMetadataAlone) {
  auto release = std::make_shared<absl::Notification>();
  HoldUpdateUntil(release, InitialMetadata::kAuto);
  auto stream = client_->StartAttach(AttachFrom("r1", 3), {});
  ASSERT_EQ(stream->WaitOpening(absl::Seconds(10)), Opening::kAccepted);
  // Accepted before any update exists: the fake has written none.
  std::vector<Update> updates;
  EXPECT_EQ(stream->Wait(absl::ZeroDuration(), &updates), Next::kTimeout);
  EXPECT_TRUE(updates.empty());
  EXPECT_EQ(fake_.attach_calls().at(0).updates_written, 0);

  release->Notify();
  ASSERT_EQ(stream->Wait(absl::Seconds(10), &updates), Next::kUpdates);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].seq(), 4u);
  updates.clear();
  EXPECT_EQ(stream->Wait(absl::Seconds(10), &updates), Next::kFinished);
  EXPECT_TRUE(stream->status().ok()) << stream->status();
}

TEST_F(RunStreamOpeningTest, ARefusalIsAStatusWithoutAcceptance) {
  // Default attach script: NOT_FOUND for "unknown..." ids, at once.
  auto unknown = client_->StartAttach(AttachFrom("unknown1", 2), {});
  EXPECT_EQ(unknown->WaitOpening(absl::Seconds(10)), Opening::kFinished);
  EXPECT_EQ(unknown->status().code(), absl::StatusCode::kNotFound);
  // INVALID_ARGUMENT past seq 5.
  auto ahead = client_->StartAttach(AttachFrom("r1", 9), {});
  EXPECT_EQ(ahead->WaitOpening(absl::Seconds(10)), Opening::kFinished);
  EXPECT_EQ(ahead->status().code(), absl::StatusCode::kInvalidArgument);
  // After the final event: OK and nothing.
  fake_.SetAttachScript([](const auto&) { return RunScript(); });
  auto ended = client_->StartAttach(AttachFrom("r1", 5), {});
  EXPECT_EQ(ended->WaitOpening(absl::Seconds(10)), Opening::kFinished);
  EXPECT_TRUE(ended->status().ok());
}

TEST_F(RunStreamOpeningTest, NoAnswerAtAllIsATimeoutUntilOneComes) {
  auto release = std::make_shared<absl::Notification>();
  HoldUpdateUntil(release, InitialMetadata::kWithFirstUpdate);
  auto stream = client_->StartAttach(AttachFrom("r1", 3), {});
  ASSERT_TRUE(fake_.WaitForAttachCalls(1, absl::Seconds(10)));
  EXPECT_EQ(stream->WaitOpening(absl::Milliseconds(100)), Opening::kTimeout);
  release->Notify();
  // The metadata comes with the first update then.
  EXPECT_EQ(stream->WaitOpening(absl::Seconds(10)), Opening::kAccepted);
}

TEST_F(RunStreamOpeningTest, StreamsOpenedWhileANewClientLearnsFallBack) {
  // The fake has no Session: each new client's first sessions end with
  // UNIMPLEMENTED, possibly before a stream is opened on them. Every stream
  // is started again as its own call all the same (none is refused).
  for (int i = 0; i < 30; ++i) {
    auto client =
        NewGrpcOrchestratorClient(NewOrchestratorChannel(fake_.address()));
    std::vector<std::unique_ptr<RunStream>> streams;
    for (int k = 0; k < 6; ++k)
      streams.push_back(client->StartAttach(AttachFrom("r1", 3), {}));
    for (auto& stream : streams) {
      ASSERT_EQ(stream->WaitOpening(absl::Seconds(10)), Opening::kAccepted)
          << "client " << i << ": " << stream->status();
    }
  }
}

TEST_F(RunStreamOpeningTest, OrchestratorDownIsUnavailableAtOnce) {
  auto client =
      NewGrpcOrchestratorClient(NewOrchestratorChannel("127.0.0.1:1"));
  auto stream = client->StartAttach(AttachFrom("r1", 3), {});
  EXPECT_EQ(stream->WaitOpening(absl::Seconds(10)), Opening::kFinished);
  EXPECT_EQ(stream->status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace agentstream::gateway
