#include "orchestrator/run_log.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
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
  void Send(absl::Span<const std::shared_ptr<const LogEntry>> entries,
            bool more_follows) override {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    EXPECT_FALSE(entries.empty());
    std::string batch;
    for (const auto& entry : entries) {
      sent_.push_back(entry->seq);
      // The bytes are the update, serialized.
      Update parsed;
      const std::string_view bytes = entry->bytes();
      EXPECT_TRUE(
          parsed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
      EXPECT_EQ(parsed.seq(), entry->seq);
      batch.append(entry->batch_bytes());
    }
    // Their concatenation is an UpdateBatch of exactly them.
    agentstream::v1::UpdateBatch parsed_batch;
    EXPECT_TRUE(parsed_batch.ParseFromString(batch));
    EXPECT_EQ(parsed_batch.updates_size(), static_cast<int>(entries.size()));
    for (int i = 0; i < parsed_batch.updates_size(); ++i) {
      EXPECT_EQ(parsed_batch.updates(i).SerializeAsString(),
                entries[i]->bytes());
    }
    more_.push_back(more_follows);
    batch_sizes_.push_back(entries.size());
    batch_bytes_.push_back(batch.size());
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
  std::vector<bool> more() const {
    absl::MutexLock lock(&mu_);
    return more_;
  }
  // Per write: how many updates, how many bytes.
  std::vector<size_t> batch_sizes() const {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }
  std::vector<size_t> batch_bytes() const {
    absl::MutexLock lock(&mu_);
    return batch_bytes_;
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
  std::vector<bool> more_;
  std::vector<size_t> batch_sizes_;
  std::vector<size_t> batch_bytes_;
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
  EXPECT_EQ(next.entry->Parse().seq(), 1u);
  EXPECT_EQ(next.entry->Parse().progress().progress(), 1u);
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
  EXPECT_EQ(log.ReadAfter(7).entry->seq, 8u);
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

Update ProgressBy(const std::string& specialist, uint32_t p) {
  Update u = Progress(p);
  u.set_specialist(specialist);
  return u;
}

Update ThinkingBy(const std::string& specialist) {
  Update u;
  u.set_specialist(specialist);
  u.mutable_thinking()->set_thought("hmm");
  return u;
}

// After seq 1: 20 progress of A, 10 of B, interleaved with two
// non-progress updates (B's thinking at seq 22, A's at seq 33).
void AppendProgressBacklog(RunLog& log) {
  for (uint32_t i = 1; i <= 10; ++i) {
    log.Append(ProgressBy("A", i));
    log.Append(ProgressBy("B", i));
  }
  log.Append(ThinkingBy("B"));  // seq 22
  for (uint32_t i = 11; i <= 20; ++i) log.Append(ProgressBy("A", i));
  log.Append(ThinkingBy("A"));  // seq 33
}

TEST(RunLogTest, IsBoundedByBytesKeepingTheNewestEntry) {
  Update big = ThinkingBy("A");
  big.mutable_thinking()->set_thought(std::string(1000, 'x'));
  // What one such entry costs: the ~1010 serialized bytes and bookkeeping.
  RunLog probe(1);
  probe.Append(big);
  const size_t one = probe.bytes();
  EXPECT_GT(one, 1000u);
  EXPECT_LT(one, 1300u);
  RunLog log(/*max_events=*/1000, /*max_bytes=*/3 * one + one / 2);
  for (int i = 0; i < 10; ++i) log.Append(big);
  EXPECT_EQ(log.size(), 3u);  // 3 of them fit in 3.5.
  EXPECT_LE(log.bytes(), 3 * one + one / 2);
  EXPECT_EQ(log.first_seq(), 8u);
  EXPECT_TRUE(log.ReadAfter(6).gap);
  // One entry larger than the whole bound is still kept.
  big.mutable_thinking()->set_thought(std::string(5000, 'y'));
  log.Append(big);
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(log.first_seq(), 11u);
}

TEST(RunLogTest, EntriesKeepKindSpecialistAndRunningCounts) {
  RunLog log(100);
  log.Append(ProgressBy("A", 1));
  log.Append(ThinkingBy("A"));
  log.Append(ProgressBy("B", 1));
  log.Append(ProgressBy("A", 2));
  EXPECT_EQ(log.non_progress_total(), 1u);
  RunLog::Next first = log.ReadAfter(0);
  ASSERT_NE(first.entry, nullptr);
  EXPECT_TRUE(first.entry->is_progress());
  EXPECT_EQ(first.entry->specialist, "A");
  EXPECT_TRUE(first.superseded);  // By seq 4.
  EXPECT_EQ(first.last_seq, 4u);
  RunLog::Next second = log.ReadAfter(1);
  EXPECT_EQ(second.entry->kind, Update::kThinking);
  EXPECT_EQ(second.entry->non_progress_through, 1u);
  EXPECT_FALSE(second.superseded);
  EXPECT_FALSE(log.ReadAfter(2).superseded);  // B's latest.
  EXPECT_FALSE(log.ReadAfter(3).superseded);  // A's latest.
  EXPECT_EQ(log.ReadAfter(3).entry->Parse().progress().progress(), 2u);
}

TEST(LogFollowerTest, ALaggingFollowerSkipsSupersededProgressOnly) {
  auto log = std::make_shared<RunLog>(1000);
  OrchestratorMetrics metrics;
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(
      log, 0, &sink, FollowerOptions{/*max_lag=*/4, &metrics});
  follower->Start();
  log->Append(ThinkingBy("A"));  // seq 1, sent at once.
  log->Notify();
  // While seq 1's write is in flight.
  AppendProgressBacklog(*log);
  log->Notify();
  Drain(sink, *follower, 10);
  // B's latest progress (seq 21) and its thinking; A's progress updates are
  // skipped until the follower is back within the lag (4 behind at seq 30),
  // then it gets everything.
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 21, 22, 30, 31, 32, 33));
  EXPECT_EQ(follower->coalesced(), 26u);
  EXPECT_EQ(metrics.coalesced(), 26);
  EXPECT_EQ(sink.ends(), 0);
  // Writes are buffer-hinted while more is queued; the last is not.
  EXPECT_THAT(sink.more(), ::testing::ElementsAre(false, true, true, true, true,
                                                  true, false));
  follower->Stop();
}

TEST(LogFollowerTest, AFollowerWithinTheLagGetsEveryProgressUpdate) {
  auto log = std::make_shared<RunLog>(1000);
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink,
                                                FollowerOptions{/*max_lag=*/8});
  follower->Start();
  for (uint32_t i = 1; i <= 8; ++i) log->Append(ProgressBy("A", i));
  log->Notify();
  Drain(sink, *follower, 10);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(follower->coalesced(), 0u);
  follower->Stop();
}

TEST(LogFollowerTest, TooManyNonProgressBehindIsCutOffAsSlowConsumer) {
  auto log = std::make_shared<RunLog>(1000);
  OrchestratorMetrics metrics;
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(
      log, 0, &sink, FollowerOptions{/*max_lag=*/3, &metrics});
  follower->Start();
  log->Append(ThinkingBy("A"));  // seq 1: in flight.
  log->Notify();
  for (int i = 0; i < 3; ++i) log->Append(ThinkingBy("A"));
  log->Notify();
  Drain(sink, *follower, 1);  // 3 behind: not more than the lag.
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 2));
  for (int i = 0; i < 3; ++i) log->Append(ThinkingBy("A"));  // 5 behind.
  log->Notify();
  EXPECT_EQ(sink.ends(), 0);  // Only decided when the write completes.
  Drain(sink, *follower, 1);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 2));
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_EQ(sink.end_status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StartsWith(sink.end_status().message(), "slow_consumer:"))
      << sink.end_status();
  EXPECT_EQ(metrics.slow_consumer_cutoffs(), 1);
  follower->Stop();

  // Attaching again from the last seq received replays the rest without
  // being cut off: what was in the log before it started never counts.
  RecordingSink again;
  auto resumed = std::make_shared<LogFollower>(
      log, 2, &again, FollowerOptions{/*max_lag=*/3, &metrics});
  resumed->Start();
  log->End();
  log->Notify();
  Drain(again, *resumed, 5);
  EXPECT_THAT(again.sent(), ::testing::ElementsAre(3, 4, 5, 6, 7));
  EXPECT_EQ(again.ends(), 1);
  EXPECT_TRUE(again.end_status().ok());
  resumed->Stop();
}

TEST(LogFollowerTest, ZeroMaxLagNeverCoalescesNorCutsOff) {
  auto log = std::make_shared<RunLog>(1000);
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink,
                                                FollowerOptions{/*max_lag=*/0});
  follower->Start();
  for (uint32_t i = 1; i <= 50; ++i) {
    log->Append(i % 2 == 0 ? ProgressBy("A", i) : ThinkingBy("A"));
  }
  log->End();
  log->Notify();
  Drain(sink, *follower, 60);
  EXPECT_EQ(sink.sent().size(), 50u);
  EXPECT_TRUE(sink.end_status().ok());
  follower->Stop();
}

TEST(LogFollowerTest, ResumingAtTheEndOfAnEndedLogEndsOkWithNothing) {
  auto log = std::make_shared<RunLog>(1000);
  log->Append(ThinkingBy("A"));
  log->Append(ThinkingBy("A"));
  log->End();
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(log, 2, &sink);
  follower->Start();
  EXPECT_TRUE(sink.sent().empty());
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_TRUE(sink.end_status().ok());
  follower->Stop();
}

TEST(LogFollowerTest, AReplayOnlyFollowerSendsWhatTheLogHeldAndEnds) {
  auto log = std::make_shared<RunLog>(100);
  for (uint32_t i = 1; i <= 3; ++i) log->Append(Progress(i));
  RecordingSink sink;
  FollowerOptions options;
  options.replay_only = true;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink, options);
  follower->Start();
  // An update appended after the first read is not the replay's.
  log->Append(Progress(4));
  log->Notify();
  Drain(sink, *follower, 4);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 2, 3));
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_TRUE(sink.end_status().ok());
  follower->Stop();
}

TEST(LogFollowerTest, AReplayOnlyFollowerOfAnEmptyLogEndsAtOnce) {
  auto log = std::make_shared<RunLog>(100);
  RecordingSink sink;
  FollowerOptions options;
  options.replay_only = true;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink, options);
  follower->Start();
  EXPECT_TRUE(sink.sent().empty());
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_TRUE(sink.end_status().ok());
  follower->Stop();
}

// Batched followers (RunBatched, AttachBatched): every write carries what the
// log holds past the cursor, bounded in bytes; the RecordingSink checks that
// each write's batch_bytes() concatenate into an UpdateBatch of exactly its
// updates.
FollowerOptions Batched(uint64_t max_lag, size_t max_batch_bytes,
                        OrchestratorMetrics* metrics = nullptr) {
  FollowerOptions options;
  options.max_lag = max_lag;
  options.metrics = metrics;
  options.max_batch_bytes = max_batch_bytes;
  return options;
}

TEST(BatchedFollowerTest, OneWriteCarriesEverythingTheLogHolds) {
  auto log = std::make_shared<RunLog>(100);
  for (uint32_t i = 1; i <= 10; ++i) log->Append(ThinkingBy("A"));
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(
      log, /*after_seq=*/3, &sink,
      Batched(1024, FollowerOptions::kMaxBatchBytes));
  follower->Start();
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(4, 5, 6, 7, 8, 9, 10));
  EXPECT_THAT(sink.batch_sizes(), ::testing::ElementsAre(7));
  EXPECT_THAT(sink.more(), ::testing::ElementsAre(false));

  // Live: what arrives while a write is in flight goes in the next one.
  log->Append(ThinkingBy("A"));
  log->Notify();
  log->Append(ThinkingBy("B"));
  log->Append(ProgressBy("B", 1));
  log->Notify();
  EXPECT_THAT(sink.batch_sizes(), ::testing::ElementsAre(7));
  Drain(sink, *follower, 1);
  EXPECT_THAT(sink.batch_sizes(), ::testing::ElementsAre(7, 3));
  // A reader that keeps up gets one update per write.
  Drain(sink, *follower, 1);
  log->Append(ThinkingBy("A"));
  log->Notify();
  EXPECT_THAT(sink.batch_sizes(), ::testing::ElementsAre(7, 3, 1));
  log->End();
  log->Notify();
  Drain(sink, *follower, 1);
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_TRUE(sink.end_status().ok());
  EXPECT_EQ(sink.max_in_flight(), 1);
  EXPECT_EQ(sink.sent().size(), 11u);
  follower->Stop();
}

TEST(BatchedFollowerTest, WritesAreBoundedInBytesAndNeverEmpty) {
  Update big = ThinkingBy("A");
  big.mutable_thinking()->set_thought(std::string(1000, 'x'));
  auto log = std::make_shared<RunLog>(100);
  for (int i = 0; i < 10; ++i) log->Append(big);
  Update huge = big;
  huge.mutable_thinking()->set_thought(std::string(9000, 'y'));
  log->Append(huge);  // seq 11: larger than the bound on its own.
  log->Append(big);   // seq 12
  log->End();
  const size_t one = log->ReadAfter(0).entry->batch_bytes().size();
  const size_t bound = 3 * one + one / 2;
  RecordingSink sink;
  auto follower =
      std::make_shared<LogFollower>(log, 0, &sink, Batched(1024, bound));
  follower->Start();
  Drain(sink, *follower, 10);
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_TRUE(sink.end_status().ok());
  // Three per write, then the large one alone, then the last.
  EXPECT_THAT(sink.batch_sizes(), ::testing::ElementsAre(3, 3, 3, 1, 1, 1));
  const std::vector<size_t> bytes = sink.batch_bytes();
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (sink.batch_sizes()[i] > 1) {
      EXPECT_LE(bytes[i], bound) << i;
    }
  }
  EXPECT_GT(bytes[4], bound);
  // All but the last write have more following them (the buffer hint).
  EXPECT_THAT(sink.more(),
              ::testing::ElementsAre(true, true, true, true, true, false));
  std::vector<uint64_t> all(12);
  for (size_t i = 0; i < all.size(); ++i) all[i] = i + 1;
  EXPECT_EQ(sink.sent(), all);
  follower->Stop();
}

TEST(BatchedFollowerTest, ALaggingFollowerSkipsSupersededProgressOnly) {
  auto log = std::make_shared<RunLog>(1000);
  OrchestratorMetrics metrics;
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(
      log, 0, &sink,
      Batched(/*max_lag=*/4, FollowerOptions::kMaxBatchBytes, &metrics));
  follower->Start();
  log->Append(ThinkingBy("A"));  // seq 1, sent at once.
  log->Notify();
  // The same backlog as in the one-update test above.
  AppendProgressBacklog(*log);
  log->Notify();
  Drain(sink, *follower, 1);
  // The same updates are skipped, and the rest goes in one write.
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 21, 22, 30, 31, 32, 33));
  EXPECT_THAT(sink.batch_sizes(), ::testing::ElementsAre(1, 6));
  EXPECT_EQ(follower->coalesced(), 26u);
  EXPECT_EQ(metrics.coalesced(), 26);
  EXPECT_EQ(sink.ends(), 0);
  follower->Stop();
}

TEST(BatchedFollowerTest, TooManyNonProgressBehindIsCutOffAsSlowConsumer) {
  auto log = std::make_shared<RunLog>(1000);
  OrchestratorMetrics metrics;
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(
      log, 0, &sink,
      Batched(/*max_lag=*/3, FollowerOptions::kMaxBatchBytes, &metrics));
  follower->Start();
  log->Append(ThinkingBy("A"));  // seq 1: in flight.
  log->Notify();
  for (int i = 0; i < 3; ++i) log->Append(ThinkingBy("A"));
  log->Notify();
  Drain(sink, *follower, 1);  // 3 behind: not more than the lag.
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 2, 3, 4));
  for (int i = 0; i < 5; ++i) log->Append(ThinkingBy("A"));  // 5 behind.
  log->Notify();
  Drain(sink, *follower, 1);
  EXPECT_THAT(sink.sent(), ::testing::ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(sink.ends(), 1);
  EXPECT_EQ(sink.end_status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(sink.end_status().message(),
                                "attach again after seq 4"))
      << sink.end_status();
  EXPECT_EQ(metrics.slow_consumer_cutoffs(), 1);
  follower->Stop();
}

TEST(BatchedFollowerTest, AGapEndsWithOutOfRange) {
  auto log = std::make_shared<RunLog>(2);
  for (uint32_t i = 1; i <= 5; ++i) log->Append(Progress(i));
  RecordingSink sink;
  auto follower = std::make_shared<LogFollower>(
      log, 1, &sink, Batched(1024, FollowerOptions::kMaxBatchBytes));
  follower->Start();
  EXPECT_TRUE(sink.sent().empty());
  EXPECT_EQ(sink.end_status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(absl::StartsWith(sink.end_status().message(), "gap:"));
  // From inside the log: the rest in one write.
  RecordingSink inside;
  auto follower2 = std::make_shared<LogFollower>(
      log, 3, &inside, Batched(1024, FollowerOptions::kMaxBatchBytes));
  follower2->Start();
  EXPECT_THAT(inside.sent(), ::testing::ElementsAre(4, 5));
  follower->Stop();
  follower2->Stop();
}

}  // namespace
}  // namespace agentstream::orchestrator
