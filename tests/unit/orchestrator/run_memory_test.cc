// The bound on all runs' memory (--max-total-log-bytes, --max-runs; the rules
// are in run_manager.h): what is charged and when it is released, ended logs
// dropped (the run that ended first first) to admit a new run, refusals,
// live logs evened out under pressure with followers told of the gap, and
// the accounting back at zero once runs have expired. On in-memory fake
// specialists and a fake clock.
#include "orchestrator/run_memory.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run_log.h"
#include "orchestrator/run_manager.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/fake_specialist.h"
#include "tests/unit/orchestrator/run_fixture.h"

namespace agentstream::orchestrator::testing {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr size_t kKiB = 1024;

// A `thinking` update of `size` bytes of thought (never coalesced, and not
// part of the synthesis, so the run's last updates stay small).
Update ThinkingOf(size_t size) {
  Update u;
  u.mutable_thinking()->set_thought(std::string(size, 'x'));
  return u;
}

TEST(RunMemoryTest, EntriesAreChargedWhileAliveAndDropKeepsTheEnd) {
  OrchestratorMetrics metrics;
  auto memory = std::make_shared<RunMemory>(0, &metrics);
  {
    RunLog log(100, 1 << 20, memory);
    for (int i = 0; i < 3; ++i) log.Append(ThinkingOf(1000));
    log.End();
    EXPECT_EQ(memory->bytes(), log.bytes());
    EXPECT_EQ(metrics.log_bytes(), static_cast<int64_t>(log.bytes()));
    // A follower still writing seq 2 keeps it (and its charge).
    std::shared_ptr<const LogEntry> in_flight = log.ReadAfter(1).entry;
    ASSERT_NE(in_flight, nullptr);
    EXPECT_EQ(log.Drop(), 3u);
    EXPECT_EQ(log.size(), 0u);
    EXPECT_EQ(memory->bytes(), in_flight->Charge());
    in_flight.reset();
    EXPECT_EQ(memory->bytes(), 0u);
    // The seqs and the end are kept: after the last seq it ends cleanly,
    // anything earlier is a gap.
    EXPECT_EQ(log.last_seq(), 3u);
    EXPECT_TRUE(log.ReadAfter(3).ended);
    EXPECT_TRUE(log.ReadAfter(2).gap);
    EXPECT_TRUE(log.ReadAfter(0).gap);
    EXPECT_EQ(log.Append(ThinkingOf(10)), 0u);  // Ended.
  }
  EXPECT_EQ(metrics.log_bytes(), 0);
}

TEST(RunMemoryTest, TrimToKeepsTheNewestEntry) {
  auto memory = std::make_shared<RunMemory>(0, nullptr);
  RunLog log(100, 1 << 20, memory);
  for (int i = 0; i < 5; ++i) log.Append(ThinkingOf(1000));
  const size_t one = log.bytes() / 5;
  EXPECT_EQ(log.TrimTo(2 * one), 3u);
  EXPECT_EQ(log.first_seq(), 4u);
  EXPECT_EQ(memory->bytes(), log.bytes());
  EXPECT_EQ(log.TrimTo(0), 1u);
  EXPECT_EQ(log.first_seq(), 5u);
  EXPECT_EQ(log.size(), 1u);
}

TEST(RunMemoryTest, ReliefRunsOverTheLimitAndAFutileOneWaitsForMore) {
  RunMemory memory(16000, nullptr);
  EXPECT_EQ(memory.relief_target(), 15000u);
  int reliefs = 0;
  size_t freed_by_relief = 0;
  memory.SetReliefHandler([&] {
    ++reliefs;
    memory.Release(freed_by_relief);
  });
  memory.Charge(16000);
  memory.RelieveIfOver();
  EXPECT_EQ(reliefs, 0);  // At the limit is not over it.
  memory.Charge(500);
  memory.RelieveIfOver();
  EXPECT_EQ(reliefs, 1);  // Freed nothing: 16500 left.
  memory.Charge(900);
  memory.RelieveIfOver();
  EXPECT_EQ(reliefs, 1);  // Within a sixteenth (1000) of what was left.
  memory.Charge(200);
  freed_by_relief = 2600;
  memory.RelieveIfOver();
  EXPECT_EQ(reliefs, 2);
  EXPECT_EQ(memory.bytes(), 15000u);
  memory.Charge(1001);
  memory.RelieveIfOver();
  EXPECT_EQ(reliefs, 3);  // Back under the limit: over it is enough again.
  memory.SetReliefHandler(nullptr);
}

class RunMemoryBoundTest : public RunTest {
 protected:
  void ConfigureBounds(size_t total, size_t per_run, size_t max_runs = 1000) {
    RunManagerOptions options;
    options.max_total_log_bytes = total;
    options.max_log_bytes = per_run;
    options.max_runs = max_runs;
    Configure(options);
  }

  // A Synthetic run whose call has emitted `n` thoughts of `size` bytes.
  struct Started {
    RunPtr run;
    std::shared_ptr<FakeAnalyzeCall> call;
  };
  Started StartFilled(int n, size_t size = 10 * kKiB) {
    Started s;
    auto run = StartRun("go", {"Synthetic"});
    EXPECT_THAT(run, IsOk());
    if (!run.ok()) return s;
    s.run = *run;
    s.call = CallOf("Synthetic", calls_++);
    EXPECT_NE(s.call, nullptr);
    if (s.call == nullptr) return s;
    for (int i = 0; i < n; ++i) s.call->Emit(ThinkingOf(size));
    return s;
  }

  size_t calls_ = 0;
};

TEST_F(RunMemoryBoundTest, TheRunThatEndedFirstLosesItsLogFirstToAdmitANewRun) {
  ConfigureBounds(256 * kKiB, 64 * kKiB);
  // Four runs of ~57 KiB each (5 thoughts of 10 KiB, their own updates and
  // bookkeeping): 3 leave room for a fourth, 4 do not leave room for a fifth.
  std::vector<Started> runs;
  for (int i = 0; i < 4; ++i) runs.push_back(StartFilled(5));
  ASSERT_EQ(manager_->run_count(), 4u);
  // They end in the order 1, 0, 2, 3.
  for (int i : {1, 0, 2, 3}) runs[i].call->Finish(absl::OkStatus());
  EXPECT_EQ(manager_->live_run_count(), 0u);
  ASSERT_GT(manager_->memory_bytes() + 64 * kKiB, 256 * kKiB);
  const std::string first_ended = runs[1].run->request_id();
  const uint64_t first_ended_last = runs[1].run->log()->last_seq();

  Started fifth = StartFilled(0);
  ASSERT_NE(fifth.run, nullptr);
  EXPECT_LE(manager_->memory_bytes() + 64 * kKiB, 256 * kKiB);
  EXPECT_EQ(metrics_.logs_dropped(), 1);
  EXPECT_EQ(manager_->Find(first_ended), nullptr);
  EXPECT_NE(manager_->Find(runs[0].run->request_id()), nullptr);
  // Its tombstone: a resume from the end ends cleanly, before it is a gap.
  EXPECT_THAT(manager_->Attach(first_ended, first_ended_last),
              ::agentstream::testing::IsOkAndHolds(nullptr));
  EXPECT_THAT(manager_->Attach(first_ended, 2),
              StatusIs(absl::StatusCode::kOutOfRange, StartsWith("gap:")));

  // The next one to make room for is the run that ended second.
  for (int i = 0; i < 5; ++i) fifth.call->Emit(ThinkingOf(10 * kKiB));
  Started sixth = StartFilled(0);
  ASSERT_NE(sixth.run, nullptr);
  EXPECT_EQ(metrics_.logs_dropped(), 2);
  EXPECT_EQ(manager_->Find(runs[0].run->request_id()), nullptr);
  EXPECT_NE(manager_->Find(runs[2].run->request_id()), nullptr);
  EXPECT_NE(manager_->Find(runs[3].run->request_id()), nullptr);
  EXPECT_EQ(metrics_.runs_refused("memory"), 0);
}

TEST_F(RunMemoryBoundTest, ANewRunGetsItsShareByCuttingTheLargestLiveLogs) {
  ConfigureBounds(256 * kKiB, 64 * kKiB);
  std::vector<Started> runs;
  for (int i = 0; i < 4; ++i) runs.push_back(StartFilled(5));
  ASSERT_EQ(manager_->live_run_count(), 4u);

  // A fifth run's share is 256 / 5 KiB: the four live logs are cut for it,
  // never ended, and nobody is refused.
  Started fifth = StartFilled(0);
  ASSERT_NE(fifth.run, nullptr);
  EXPECT_EQ(metrics_.runs_refused("memory"), 0);
  EXPECT_EQ(manager_->live_run_count(), 5u);
  EXPECT_GT(metrics_.updates_trimmed(), 0);
  EXPECT_LE(manager_->memory_bytes() + 256 * kKiB / 5, 256 * kKiB);
  const orchestrator::Run* cut = nullptr;
  for (const Started& s : runs) {
    EXPECT_FALSE(s.run->finished());
    if (s.run->log()->first_seq() > 1) cut = s.run.get();
  }
  ASSERT_NE(cut, nullptr);
  // What was cut is a gap for anyone who needs it.
  EXPECT_TRUE(cut->log()->ReadAfter(0).gap);
}

TEST_F(RunMemoryBoundTest, ANewRunIsRefusedWhenLiveLogsCannotBeCut) {
  // Each live log holds one update larger than a share: cutting keeps a
  // log's newest update, so no room can be made.
  ConfigureBounds(256 * kKiB, 128 * kKiB);
  std::vector<Started> runs;
  for (int i = 0; i < 3; ++i) runs.push_back(StartFilled(1, 70 * kKiB));
  ASSERT_EQ(manager_->live_run_count(), 3u);
  const size_t held = manager_->memory_bytes();

  EXPECT_THAT(StartRun("go", {"Synthetic"}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(StartsWith("at_capacity:"),
                             HasSubstr("--max-total-log-bytes"),
                             EndsWith("retry later"))));
  EXPECT_EQ(metrics_.runs_refused("memory"), 1);
  EXPECT_EQ(manager_->run_count(), 3u);
  EXPECT_LE(manager_->memory_bytes(), held);

  // Once one has ended, its log makes the room.
  const std::string ended = runs[0].run->request_id();
  runs[0].call->Finish(absl::OkStatus());
  Started next = StartFilled(0);
  ASSERT_NE(next.run, nullptr);
  EXPECT_EQ(metrics_.logs_dropped(), 1);
  EXPECT_EQ(manager_->Find(ended), nullptr);
  EXPECT_THAT(manager_->Attach(ended, 0),
              StatusIs(absl::StatusCode::kOutOfRange, StartsWith("gap:")));
}

TEST_F(RunMemoryBoundTest, MaxRunsCountsLiveRunsOnly) {
  ConfigureBounds(256 * kKiB, 64 * kKiB, /*max_runs=*/2);
  Started a = StartFilled(1);
  Started b = StartFilled(1);
  EXPECT_THAT(
      StartRun("go", {"Synthetic"}),
      StatusIs(
          absl::StatusCode::kResourceExhausted,
          AllOf(StartsWith("at_capacity:"), HasSubstr("2 runs are going on"),
                HasSubstr("--max-runs"), EndsWith("retry later"))));
  EXPECT_EQ(metrics_.runs_refused("max_runs"), 1);
  a.call->Finish(absl::OkStatus());
  Started c = StartFilled(1);
  ASSERT_NE(c.run, nullptr);
  // Memory was not short: the ended run is still held, whole.
  EXPECT_NE(manager_->Find(a.run->request_id()), nullptr);
  EXPECT_EQ(a.run->log()->first_seq(), 1u);
  EXPECT_EQ(metrics_.logs_dropped(), 0);
  EXPECT_EQ(manager_->live_run_count(), 2u);
}

TEST_F(RunMemoryBoundTest,
       PastTheBoundTheLargestLiveLogIsCutAndItsFollowerToldOfTheGap) {
  ConfigureBounds(256 * kKiB, 128 * kKiB);
  // All four admitted while the memory is empty.
  Started small = StartFilled(2, kKiB);
  Started large = StartFilled(0);
  Started medium = StartFilled(3);
  Started growing = StartFilled(0);
  // A follower of the large run, stuck writing its first update.
  FollowerSink sink;
  auto follower = std::make_shared<LogFollower>(large.run->log(), 0, &sink);
  follower->Start();
  ASSERT_EQ(sink.seqs(), std::vector<uint64_t>{1});
  for (int i = 0; i < 12; ++i) large.call->Emit(ThinkingOf(10 * kKiB));
  ASSERT_LE(manager_->memory_bytes(), 256 * kKiB);
  ASSERT_EQ(metrics_.updates_trimmed(), 0);

  // The growing run takes the total over the bound (5 KiB at a time).
  for (int i = 0; i < 40 && metrics_.updates_trimmed() == 0; ++i) {
    growing.call->Emit(ThinkingOf(5 * kKiB));
  }
  ASSERT_GT(metrics_.updates_trimmed(), 0);
  // The relief target, but for the update the follower is still writing
  // (cut from the log, still charged).
  EXPECT_LE(manager_->memory_bytes(), 240 * kKiB + kKiB);
  // Only the largest log was cut.
  EXPECT_GT(large.run->log()->first_seq(), 2u);
  EXPECT_EQ(growing.run->log()->first_seq(), 1u);
  EXPECT_EQ(medium.run->log()->first_seq(), 1u);
  EXPECT_EQ(small.run->log()->first_seq(), 1u);
  EXPECT_FALSE(large.run->finished());  // The run goes on.
  EXPECT_EQ(metrics_.logs_dropped(), 0);

  // The follower learns of the gap at its next read; it is not skipped
  // over silently.
  follower->OnWriteDone(true);
  EXPECT_TRUE(sink.ended());
  EXPECT_THAT(sink.status(),
              StatusIs(absl::StatusCode::kOutOfRange, StartsWith("gap:")));
  EXPECT_EQ(sink.seqs(), std::vector<uint64_t>{1});
  follower->Stop();
}

TEST_F(RunMemoryBoundTest, TheAccountingIsBackAtZeroOnceRunsHaveExpired) {
  ConfigureBounds(256 * kKiB, 64 * kKiB);
  Started a = StartFilled(3);
  Started b = StartFilled(2);
  EXPECT_GT(manager_->memory_bytes(), 50 * kKiB);
  EXPECT_EQ(metrics_.log_bytes(),
            static_cast<int64_t>(manager_->memory_bytes()));
  a.call->Finish(absl::OkStatus());
  AdvanceAndSweep(absl::Minutes(4));
  b.call->Finish(absl::OkStatus());
  AdvanceAndSweep(absl::Minutes(2));  // a has expired, b not yet.
  EXPECT_EQ(manager_->run_count(), 1u);
  EXPECT_EQ(a.run->log()->size(), 0u);
  a = Started();
  EXPECT_GT(manager_->memory_bytes(), 20 * kKiB);
  AdvanceAndSweep(absl::Minutes(4));
  EXPECT_EQ(manager_->run_count(), 0u);
  b = Started();
  EXPECT_EQ(manager_->memory_bytes(), 0u);
  EXPECT_EQ(metrics_.log_bytes(), 0);
  EXPECT_EQ(manager_->tombstone_count(), 2u);
}

}  // namespace
}  // namespace agentstream::orchestrator::testing
