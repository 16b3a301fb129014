#include "orchestrator/run_log.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::Update;

Update Progress(uint32_t p) {
  Update u;
  u.mutable_progress()->set_progress(p);
  return u;
}

// Records what a follower sends; completes writes only when told to.
class RecordingSink final : public LogFollower::Sink {
 public:
  void Send(std::shared_ptr<const LogEntry> entry) override {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    sent_.push_back(entry->seq());
    // The bytes are the update, serialized.
    Update parsed;
    EXPECT_TRUE(parsed.ParseFromString(entry->bytes));
    EXPECT_EQ(parsed.seq(), entry->seq());
  }
  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ++ends_;
    end_status_ = status;
  }
  void Complete() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
  std::vector<uint64_t> sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  int ends() const {
    absl::MutexLock lock(&mu_);
    return ends_;
  }
  absl::Status end_status() const {
    absl::MutexLock lock(&mu_);
    return end_status_;
  }
  int max_in_flight() const {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<uint64_t> sent_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  int ends_ = 0;
  absl::Status end_status_;
};

// Completes each write as the transport would, then reports it.
void Drain(RecordingSink& sink, LogFollower& follower, int n) {
  for (int i = 0; i < n; ++i) {
    sink.Complete();
    follower.OnWriteDone(true);
  }
}

TEST(RunLogTest, AssignsDenseSeqFromOne) {
  RunLog log(100);
  EXPECT_EQ(log.Append(Progress(1)), 1u);
  EXPECT_EQ(log.Append(Progress(2)), 2u);
  EXPECT_EQ(log.last_seq(), 2u);
  RunLog::Next next = log.ReadAfter(0);
  ASSERT_NE(next.entry, nullptr);
  EXPECT_EQ(next.entry->update.seq(), 1u);
  EXPECT_EQ(next.entry->update.progress().progress(), 1u);
  EXPECT_EQ(log.ReadAfter(2).entry, nullptr);
  EXPECT_FALSE(log.ReadAfter(2).ended);
  log.End();
  EXPECT_TRUE(log.ReadAfter(2).ended);
  EXPECT_EQ(log.Append(Progress(3)), 0u);  // Refused after the end.
}

TEST(RunLogTest, IsBoundedAndReportsAGapForDroppedEntries) {
  RunLog log(3);
  for (uint32_t i = 1; i <= 10; ++i) log.Append(Progress(i));
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(log.first_seq(), 8u);
  EXPECT_TRUE(log.ReadAfter(0).gap);
  EXPECT_TRUE(log.ReadAfter(6).gap);
  ASSERT_NE(log.ReadAfter(7).entry, nullptr);
  EXPECT_EQ(log.ReadAfter(7).entry->seq(), 8u);
}

TEST(LogFollowerTest, ReplaysThenFollowsLiveWithOneWriteInFlight) {
  auto log = std::make_shared<RunLog>(100);
  for (uint32_t i = 1; i <= 5; ++i) log->Append(Progress(i));
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, /*after_seq=*/2, &sink);
  follower->Start();
  // One write at a time: only seq 3 until the transport completes it.
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(3));
  Drain(sink, *follower, 3);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(3, 4, 5));
  Drain(sink, *follower, 0);

  // Live: appended and notified.
  log->Append(Progress(6));
  log->Notify();
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(3, 4, 5, 6));
  log->Append(Progress(7));
  log->Notify();  // Write in flight: 7 waits.
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(3, 4, 5, 6));
  log->End();
  log->Notify();
  Drain(sink, *follower, 2);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(3, 4, 5, 6, 7));
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_TRUE(sink.end_status().ok());
  EXPECT_EQ(sink.max_in_flight(), 1);
  follower->Stop();
}

TEST(LogFollowerTest, SharesOneSerializedEntryAcrossFollowers) {
  auto log = std::make_shared<RunLog>(100);
  log->Append(Progress(1));
  RunLog::Next a = log->ReadAfter(0);
  RunLog::Next b = log->ReadAfter(0);
  EXPECT_EQ(a.entry.get(), b.entry.get());
}

TEST(LogFollowerTest, GapEndsWithOutOfRange) {
  auto log = std::make_shared<RunLog>(2);
  for (uint32_t i = 1; i <= 5; ++i) log->Append(Progress(i));
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, 1, &sink);
  follower->Start();
  EXPECT_TRUE(sink.sent().empty());
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_EQ(sink.end_status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(sink.end_status().message()),
              ::testing::HasSubstr("gap"));
}

TEST(LogFollowerTest, CancelFinishesAfterTheWriteInFlight) {
  auto log = std::make_shared<RunLog>(100);
  log->Append(Progress(1));
  log->Append(Progress(2));
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink);
  follower->Start();
  follower->Cancel();
  EXPECT_EQ(sink.ends(), 0);  // Write of seq 1 still in flight.
  sink.Complete();
  follower->OnWriteDone(false);
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_EQ(sink.end_status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1));
  // Nothing is sent after the end.
  log->Append(Progress(3));
  log->Notify();
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1));
  EXPECT_EQ(sink.ends(), 1);
}

TEST(LogFollowerTest, StoppedFollowerIsNoLongerNotified) {
  auto log = std::make_shared<RunLog>(100);
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink);
  follower->Start();
  follower->Stop();
  log->Append(Progress(1));
  log->Notify();
  EXPECT_TRUE(sink.sent().empty());
}

}  // namespace
}  // namespace agentstream::orchestrator
