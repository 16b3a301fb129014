// Specialist.AnalyzeSession served by the SDK (specialists/sdk/
// analyze_session.h; docs/CONTRACT.md, "Specialist sessions"), driven over
// real gRPC by a plain bidi client.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/sdk/analyze_session.h"
#include "specialists/sdk/specialist_server.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::specialists {
namespace {

using agentstream::testing::IsOk;
using agentstream::v1::AnalyzeSessionRequest;
using agentstream::v1::SessionFrame;
using agentstream::v1::SessionMessage;

// Polls `done` until it holds or `timeout` passes.
template <typename Done>
bool WaitFor(Done done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// `task` is "STEPS:MS": that many progress updates, one every MS ms (its
// token honoured, so it stops at once when cancelled).
class Counter final : public Specialist {
 public:
  SpecialistCard Card() const override {
    SpecialistCard card;
    card.set_name("Counter");
    return card;
  }
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) override {
    int steps = 0, ms = 0;
    if (std::sscanf(request.task().c_str(), "%d:%d", &steps, &ms) != 2) {
      return absl::InvalidArgumentError("task is STEPS:MS");
    }
    for (int i = 1; i <= steps; ++i) {
      if (ms > 0 && cancel.WaitFor(absl::Milliseconds(ms))) {
        return absl::CancelledError();
      }
      if (cancel.cancelled()) return absl::CancelledError();
      sink.Progress(i * 100 / steps, absl::StrCat("step ", i));
    }
    return absl::OkStatus();
  }
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.port = 0;
    options.metrics_port = 0;
    options.drain_timeout_ms = 500;
    auto server = SpecialistServer::Start(std::make_unique<Counter>(), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    stub_ = agentstream::v1::Specialist::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()));
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    session_ = stub_->AnalyzeSession(&context_);
  }

  bool Open(uint64_t stream, const std::string& task, uint64_t window = 0) {
    granted_[stream] = window == 0
                           ? static_cast<int64_t>(kDefaultSessionWindowBytes)
                           : static_cast<int64_t>(window);
    AnalyzeSessionRequest r;
    r.mutable_open()->set_stream(stream);
    r.mutable_open()->mutable_request()->set_request_id(
        absl::StrCat("req_", stream));
    r.mutable_open()->mutable_request()->set_task(task);
    r.mutable_open()->set_window_bytes(window);
    return session_->Write(r);
  }
  bool Close(uint64_t stream) {
    AnalyzeSessionRequest r;
    r.mutable_close()->set_stream(stream);
    return session_->Write(r);
  }
  bool Credit(uint64_t stream, uint64_t bytes) {
    granted_[stream] += static_cast<int64_t>(bytes);
    AnalyzeSessionRequest r;
    r.mutable_credit()->set_stream(stream);
    r.mutable_credit()->set_bytes(bytes);
    return session_->Write(r);
  }

  struct Seen {
    bool accepted = false;
    std::string request_id;
    std::vector<int> progress;
    int batches = 0;
    int64_t batch_bytes = 0;
    bool ended = false;
    int code = -1;
    bool frame_after_end = false;
  };
  // Reads messages until `done` holds (false if the session ended first).
  template <typename Done>
  bool ReadUntil(Done done) {
    SessionMessage m;
    while (!done()) {
      if (!session_->Read(&m)) return false;
      for (const SessionFrame& f : m.frames()) {
        Seen& s = seen_[f.stream()];
        if (s.ended) s.frame_after_end = true;
        if (f.accepted()) {
          EXPECT_EQ(s.batches, 0) << "accepted after a batch";
          s.accepted = true;
          s.request_id = f.request_id();
        }
        if (f.has_batch()) {
          ++s.batches;
          s.batch_bytes += static_cast<int64_t>(f.batch().ByteSizeLong());
          // Never past what was granted (the window, then credits), but
          // by one update at most.
          EXPECT_LE(s.batch_bytes, granted_[f.stream()] + kUpdateSlack)
              << "stream " << f.stream() << " sent past its credit";
          for (const auto& u : f.batch().updates()) {
            s.progress.push_back(static_cast<int>(u.progress().progress()));
          }
        }
        if (f.has_end()) {
          s.ended = true;
          s.code = f.end().code();
        }
      }
    }
    return true;
  }
  bool Ended(uint64_t stream) { return seen_[stream].ended; }

  std::unique_ptr<SpecialistServer> server_;
  std::unique_ptr<agentstream::v1::Specialist::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<AnalyzeSessionRequest, SessionMessage>>
      session_;
  std::map<uint64_t, Seen> seen_;
  // Bytes each stream may have sent: its window plus the credits.
  std::map<uint64_t, int64_t> granted_;
  // One progress update's encoded size is well under this.
  static constexpr int64_t kUpdateSlack = 256;
};

TEST_F(SessionTest, ManyAnalysesOverOneSessionEachAsItsOwnCall) {
  for (uint64_t i = 1; i <= 8; ++i) ASSERT_TRUE(Open(i, "4:2"));
  ASSERT_TRUE(ReadUntil([&] {
    for (uint64_t i = 1; i <= 8; ++i)
      if (!Ended(i)) return false;
    return true;
  }));
  for (uint64_t i = 1; i <= 8; ++i) {
    const Seen& s = seen_[i];
    EXPECT_TRUE(s.accepted) << i;
    EXPECT_EQ(s.request_id, absl::StrCat("req_", i));
    EXPECT_THAT(s.progress, ::testing::ElementsAre(25, 50, 75, 100)) << i;
    EXPECT_EQ(s.code, 0) << i;
    EXPECT_FALSE(s.frame_after_end) << i;
  }
  session_->WritesDone();
  EXPECT_TRUE(session_->Finish().ok());
  EXPECT_EQ(server_->metrics().completed(AnalysisOutcome::kOk), 8);
}

TEST_F(SessionTest, ARefusedAnalysisIsAnEndAloneAndTheSessionGoesOn) {
  ASSERT_TRUE(Open(1, ""));  // Neither task nor question.
  ASSERT_TRUE(ReadUntil([&] { return Ended(1); }));
  EXPECT_FALSE(seen_[1].accepted);
  EXPECT_EQ(seen_[1].code,
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  ASSERT_TRUE(Open(2, "2:0"));
  ASSERT_TRUE(ReadUntil([&] { return Ended(2); }));
  EXPECT_EQ(seen_[2].code, 0);
  EXPECT_THAT(seen_[2].progress, ::testing::ElementsAre(50, 100));
}

TEST_F(SessionTest, CloseCancelsThatAnalysisAloneAndHalfCloseCancelsTheRest) {
  ASSERT_TRUE(Open(1, "100000:5"));
  ASSERT_TRUE(Open(2, "100000:5"));
  ASSERT_TRUE(ReadUntil([&] {
    return seen_[1].progress.size() >= 2 && seen_[2].progress.size() >= 2;
  }));
  ASSERT_TRUE(Close(1));
  ASSERT_TRUE(ReadUntil([&] { return Ended(1); }));
  EXPECT_EQ(seen_[1].code, static_cast<int>(grpc::StatusCode::CANCELLED));
  const size_t two_before = seen_[2].progress.size();
  ASSERT_TRUE(ReadUntil([&] { return seen_[2].progress.size() > two_before; }));
  EXPECT_FALSE(Ended(2));
  session_->WritesDone();
  ASSERT_TRUE(ReadUntil([&] { return Ended(2); }));
  EXPECT_EQ(seen_[2].code, static_cast<int>(grpc::StatusCode::CANCELLED));
  EXPECT_TRUE(session_->Finish().ok());
  EXPECT_EQ(server_->metrics().completed(AnalysisOutcome::kCancelled), 2);
}

TEST_F(SessionTest, AStreamSendsNoMoreThanItsCreditAllows) {
  // 200 updates at once and a window of 1,000 bytes: each read checks that
  // what came stays within what was granted (ReadUntil); more comes only
  // as credit is given, until all 200 are through.
  ASSERT_TRUE(Open(1, "200:0", /*window=*/1000));
  ASSERT_TRUE(ReadUntil([&] { return seen_[1].batch_bytes > 0; }));
  EXPECT_LT(seen_[1].progress.size(), 200u);
  int credits = 0;
  while (!Ended(1) && credits < 1000) {
    ASSERT_TRUE(Credit(1, 1000));
    ++credits;
    const int64_t before = seen_[1].batch_bytes;
    ASSERT_TRUE(
        ReadUntil([&] { return Ended(1) || seen_[1].batch_bytes > before; }));
  }
  EXPECT_GT(credits, 5);  // 200 updates are far more than one window.
  EXPECT_EQ(seen_[1].code, 0);
  EXPECT_EQ(seen_[1].progress.size(), 200u);
}

TEST_F(SessionTest, AStreamIdNotAboveTheLastEndsTheSession) {
  ASSERT_TRUE(Open(5, "1:0"));
  ASSERT_TRUE(ReadUntil([&] { return Ended(5); }));
  ASSERT_TRUE(Open(5, "1:0"));
  SessionMessage m;
  while (session_->Read(&m)) {
  }
  EXPECT_EQ(session_->Finish().error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// A session cancelled while its write is stuck behind a client that does
// not read, with other streams' batches waiting for that write: every
// analysis still ends, and so does the session, so the server shuts down
// (a batch left waiting kept its analysis, the session, and the server's
// Shutdown, forever).
TEST_F(SessionTest, ACancelledSessionEndsEveryAnalysisEvenWithWritesWaiting) {
  constexpr uint64_t kStreams = 40;
  for (uint64_t i = 1; i <= kStreams; ++i) ASSERT_TRUE(Open(i, "1000000:0"));
  // Never read: flow control stops the session's write in flight while
  // the others' batches wait for it.
  ASSERT_TRUE(WaitFor([&] { return server_->metrics().updates_sent() > 0; },
                      absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));
  context_.TryCancel();
  EXPECT_EQ(session_->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitFor(
      [&] {
        return server_->metrics().completed(AnalysisOutcome::kCancelled) ==
               static_cast<int64_t>(kStreams);
      },
      absl::Seconds(10)));
  absl::Notification shut_down;
  std::thread shutdown([&] {
    server_->Shutdown();
    shut_down.Notify();
  });
  // The drain (500 ms) has nothing left to wait for.
  const bool ended =
      shut_down.WaitForNotificationWithTimeout(absl::Seconds(20));
  EXPECT_TRUE(ended) << "the server did not shut down: a session is stuck";
  if (ended) {
    shutdown.join();
  } else {
    shutdown.detach();  // Fails the test; the process exits regardless.
  }
}

}  // namespace
}  // namespace agentstream::specialists
