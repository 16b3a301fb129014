// Orchestrator.Session over real gRPC on loopback (docs/CONTRACT.md,
// "Sessions"): a session's streams carry what their RunBatched and
// AttachBatched calls carry, refusals are `end` frames with the calls'
// statuses, a stream without credit stops at its window while the others
// flow (and is cut off as slow_consumer like a stalled call), a close is a
// call's cancellation, and protocol errors end the session.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "orchestrator/orchestrator_server.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"
#include "tests/unit/orchestrator/orchestrator_grpc_fixture.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::SessionFrame;
using agentstream::v1::SessionMessage;
using agentstream::v1::SessionRequest;
using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// What a session said about one stream.
struct StreamNews {
  bool accepted = false;
  std::string request_id;
  std::vector<Update> updates;
  uint64_t bytes = 0;  // The batches' encoded size.
  bool ended = false;
  int code = -1;
  std::string message;
};

class Session {
 public:
  explicit Session(agentstream::v1::Orchestrator::Stub& stub)
      : context_(ContextWithDeadline()), rw_(stub.Session(context_.get())) {}

  bool OpenRun(uint64_t id, const agentstream::v1::RunRequest& run,
               uint64_t window = 0) {
    SessionRequest r;
    r.mutable_open()->set_stream(id);
    *r.mutable_open()->mutable_run() = run;
    r.mutable_open()->set_window_bytes(window);
    return rw_->Write(r);
  }
  bool OpenAttach(uint64_t id, const std::string& request_id,
                  uint64_t after_seq) {
    SessionRequest r;
    r.mutable_open()->set_stream(id);
    *r.mutable_open()->mutable_attach() =
        AttachRequestFor(request_id, after_seq);
    return rw_->Write(r);
  }
  bool Credit(uint64_t id, uint64_t bytes) {
    SessionRequest r;
    r.mutable_credit()->set_stream(id);
    r.mutable_credit()->set_bytes(bytes);
    return rw_->Write(r);
  }
  bool Close(uint64_t id) {
    SessionRequest r;
    r.mutable_close()->set_stream(id);
    return rw_->Write(r);
  }
  // Reads one message into news_; false at the session's end.
  bool ReadOne() {
    SessionMessage m;
    if (!rw_->Read(&m)) return false;
    EXPECT_GT(m.frames_size(), 0) << "an empty SessionMessage";
    for (const SessionFrame& f : m.frames()) {
      StreamNews& n = news_[f.stream()];
      EXPECT_FALSE(n.ended)
          << "a frame after stream " << f.stream() << " ended";
      if (f.accepted()) {
        EXPECT_FALSE(n.accepted) << "accepted twice";
        EXPECT_TRUE(n.updates.empty()) << "accepted after updates";
        n.accepted = true;
        n.request_id = f.request_id();
      }
      n.bytes += f.batch().ByteSizeLong();
      for (const Update& u : f.batch().updates()) n.updates.push_back(u);
      if (f.has_end()) {
        n.ended = true;
        n.code = f.end().code();
        n.message = f.end().message();
      }
    }
    return true;
  }
  // Reads until stream `id` ended (or the session did); true if it ended.
  bool ReadUntilEnded(uint64_t id) {
    while (!news_[id].ended) {
      if (!ReadOne()) return false;
    }
    return true;
  }
  grpc::Status Finish() {
    rw_->WritesDone();
    while (ReadOne()) {
    }
    return rw_->Finish();
  }
  StreamNews& news(uint64_t id) { return news_[id]; }
  grpc::ClientContext& context() { return *context_; }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<SessionRequest, SessionMessage>> rw_;
  std::map<uint64_t, StreamNews> news_;
};

class SessionGrpcTest : public OverOneSpecialistTest {};

TEST_F(SessionGrpcTest, StreamsCarryWhatTheirBatchedCallsCarry) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 40, absl::ZeroDuration());
  a_.service->set_thinking(true);  // Never coalesced.
  StartOverA();
  Session session(*stub_);
  ASSERT_TRUE(session.OpenRun(1, RunRequestFor("risk", "req_s1")));
  ASSERT_TRUE(session.OpenRun(2, RunRequestFor("risk", "req_s2")));
  ASSERT_TRUE(session.ReadUntilEnded(1));
  ASSERT_TRUE(session.ReadUntilEnded(2));
  for (uint64_t id : {1, 2}) {
    const StreamNews& n = session.news(id);
    EXPECT_TRUE(n.accepted);
    EXPECT_EQ(n.request_id, absl::StrCat("req_s", id));
    EXPECT_EQ(n.code, 0) << n.message;
    ASSERT_FALSE(n.updates.empty());
    for (size_t i = 0; i < n.updates.size(); ++i) {
      ASSERT_EQ(n.updates[i].seq(), i + 1);
      ASSERT_EQ(n.updates[i].request_id(), n.request_id);
    }
    EXPECT_EQ(n.updates.back().complete().outcome(),
              agentstream::v1::OUTCOME_OK);
  }
  // An attach on the same session replays the run as AttachBatched does.
  ASSERT_TRUE(session.OpenAttach(3, "req_s1", 5));
  ASSERT_TRUE(session.ReadUntilEnded(3));
  const StreamNews& replay = session.news(3);
  EXPECT_TRUE(replay.accepted);
  ASSERT_EQ(replay.updates.size(), session.news(1).updates.size() - 5);
  for (size_t i = 0; i < replay.updates.size(); ++i) {
    // Field by field: a map's encoding order may differ.
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        replay.updates[i], session.news(1).updates[i + 5]))
        << i;
  }
  auto context = ContextWithDeadline();
  auto reader =
      stub_->AttachBatched(context.get(), AttachRequestFor("req_s1", 5));
  UpdateBatch batch;
  std::vector<Update> batched;
  while (reader->Read(&batch)) {
    for (const Update& u : batch.updates()) batched.push_back(u);
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_EQ(batched.size(), replay.updates.size());
  EXPECT_TRUE(session.Finish().ok());
}

TEST_F(SessionGrpcTest, RefusalsAreEndFramesWithTheCallsStatuses) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 3, absl::ZeroDuration());
  StartOverA();
  Session session(*stub_);
  ASSERT_TRUE(
      session.OpenRun(1, RunRequestFor("risk", "req_r1", {"NoSuchOne"})));
  ASSERT_TRUE(session.OpenAttach(2, "req_unknown", 0));
  ASSERT_TRUE(session.OpenRun(3, RunRequestFor("risk", "req_r3")));
  ASSERT_TRUE(session.ReadUntilEnded(1));
  ASSERT_TRUE(session.ReadUntilEnded(2));
  ASSERT_TRUE(session.ReadUntilEnded(3));
  EXPECT_FALSE(session.news(1).accepted);
  EXPECT_EQ(session.news(1).code,
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_FALSE(session.news(2).accepted);
  EXPECT_EQ(session.news(2).code,
            static_cast<int>(grpc::StatusCode::NOT_FOUND));
  // The session went on: the third stream ran to its end.
  EXPECT_EQ(session.news(3).code, 0);
  const uint64_t last = session.news(3).updates.back().seq();
  // The request id is taken now; an attach at the run's end has nothing to
  // send: OK, never accepted (as the calls answer).
  ASSERT_TRUE(session.OpenRun(4, RunRequestFor("risk", "req_r3")));
  ASSERT_TRUE(session.OpenAttach(5, "req_r3", last));
  ASSERT_TRUE(session.ReadUntilEnded(4));
  ASSERT_TRUE(session.ReadUntilEnded(5));
  EXPECT_EQ(session.news(4).code,
            static_cast<int>(grpc::StatusCode::ALREADY_EXISTS));
  EXPECT_FALSE(session.news(5).accepted);
  EXPECT_EQ(session.news(5).code, 0);
  EXPECT_TRUE(session.news(5).updates.empty());
  EXPECT_TRUE(session.Finish().ok());
}

TEST_F(SessionGrpcTest, AStreamNumberNotAboveTheLastEndsTheSession) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 3, absl::ZeroDuration());
  StartOverA();
  for (uint64_t bad : {uint64_t{0}, uint64_t{7}}) {
    Session session(*stub_);
    ASSERT_TRUE(session.OpenRun(7, RunRequestFor("risk")));
    ASSERT_TRUE(session.ReadUntilEnded(7));
    session.OpenRun(bad, RunRequestFor("risk"));
    grpc::Status status = session.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(status.error_message(), HasSubstr("not above"));
  }
}

TEST_F(SessionGrpcTest, AStreamWithoutCreditStopsAtItsWindowWhileOthersFlow) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 400, absl::Milliseconds(1));
  a_.service->set_thinking(true);  // About 0.5 KiB each, never coalesced.
  OrchestratorServerOptions options;
  options.follower_max_lag = 64;
  options.runs.disconnect_grace = absl::Seconds(30);
  StartOverA(options);
  Session session(*stub_);
  constexpr uint64_t kWindow = 8 * 1024;
  ASSERT_TRUE(session.OpenRun(1, RunRequestFor("risk", "req_slow"), kWindow));
  ASSERT_TRUE(session.OpenRun(2, RunRequestFor("risk", "req_fast"), kWindow));
  // Stream 2 gets credit for all it receives; stream 1 none.
  uint64_t credited = 0;
  while (!session.news(2).ended) {
    ASSERT_TRUE(session.ReadOne());
    const uint64_t got = session.news(2).bytes;
    if (got > credited) {
      ASSERT_TRUE(session.Credit(2, got - credited));
      credited = got;
    }
  }
  EXPECT_EQ(session.news(2).code, 0) << session.news(2).message;
  EXPECT_EQ(session.news(2).updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_OK);
  // Stream 1 stopped within its window (plus the one batch that crossed
  // it) while stream 2 ran to its end: its follower waits, as a call's
  // would on HTTP/2 flow control.
  const StreamNews& slow = session.news(1);
  EXPECT_FALSE(slow.ended);
  EXPECT_LE(slow.bytes, kWindow + FollowerOptions::kMaxBatchBytes);
  EXPECT_LT(slow.updates.size(), session.news(2).updates.size() / 2);
  // Credit for what it has: the follower, far behind now, is cut off as
  // slow_consumer (--follower-max-lag 64).
  ASSERT_TRUE(session.Credit(1, slow.bytes));
  ASSERT_TRUE(session.ReadUntilEnded(1));
  EXPECT_EQ(slow.code, static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_THAT(slow.message, StartsWith("slow_consumer:"));
  // It resumes on the same session with nothing lost.
  const uint64_t last = slow.updates.back().seq();
  ASSERT_TRUE(session.OpenAttach(3, "req_slow", last));
  uint64_t credited3 = 0;
  while (!session.news(3).ended) {
    ASSERT_TRUE(session.ReadOne());
    const uint64_t got = session.news(3).bytes;
    if (got > credited3) {
      ASSERT_TRUE(session.Credit(3, got - credited3));
      credited3 = got;
    }
  }
  std::vector<Update> all = slow.updates;
  for (const Update& u : session.news(3).updates) all.push_back(u);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].seq(), i + 1);
  EXPECT_EQ(all.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  EXPECT_TRUE(session.Finish().ok());
}

TEST_F(SessionGrpcTest, ACloseIsTheCallsCancellation) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 100000, absl::Milliseconds(5));
  StartOverA();
  Session session(*stub_);
  agentstream::v1::RunRequest run = RunRequestFor("risk", "req_c1");
  run.set_on_disconnect(agentstream::v1::DISCONNECT_POLICY_CANCEL);
  ASSERT_TRUE(session.OpenRun(1, run));
  // Once the specialist streams (its call is under way).
  while (session.news(1).updates.empty() ||
         !session.news(1).updates.back().has_progress()) {
    ASSERT_TRUE(session.ReadOne());
  }
  ASSERT_TRUE(session.Close(1));
  // The run is cancelled (its policy), and so is the specialist's call.
  EXPECT_TRUE(a_.service->WaitCancelled(absl::Seconds(5)));
  const StreamEnd end = AttachToEnd("req_c1", 0);
  ASSERT_TRUE(end.status.ok()) << end.status.error_message();
  EXPECT_EQ(end.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
  EXPECT_TRUE(session.Finish().ok());
}

TEST_F(SessionGrpcTest, EndingTheSessionEndsItsStreams) {
  a_ = StartFake("RiskAnalyst", {"risk"}, 100000, absl::Milliseconds(5));
  StartOverA();
  {
    Session session(*stub_);
    agentstream::v1::RunRequest run = RunRequestFor("risk", "req_e1");
    run.set_on_disconnect(agentstream::v1::DISCONNECT_POLICY_CANCEL);
    ASSERT_TRUE(session.OpenRun(1, run));
    while (session.news(1).updates.empty() ||
           !session.news(1).updates.back().has_progress()) {
      ASSERT_TRUE(session.ReadOne());
    }
    session.context().TryCancel();
  }
  EXPECT_TRUE(a_.service->WaitCancelled(absl::Seconds(5)));
  const StreamEnd end = AttachToEnd("req_e1", 0);
  ASSERT_TRUE(end.status.ok()) << end.status.error_message();
  EXPECT_EQ(end.updates.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
}

}  // namespace
}  // namespace agentstream::orchestrator
