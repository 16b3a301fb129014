#include "common/memory_return.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace agentstream {
namespace {

constexpr int64_t kMiB = 1 << 20;

MemoryReturnOptions Options() {
  MemoryReturnOptions o;
  o.min_growth_bytes = 8 * kMiB;
  return o;
}

constexpr absl::Time T0 = absl::UnixEpoch();
constexpr absl::Duration kSecond = absl::Seconds(1);

TEST(TrimPolicyTest, TrimsOnlyWhenResidentSizeGrew) {
  TrimPolicy p(Options(), 16 * kMiB);
  EXPECT_FALSE(p.ShouldTrim(16 * kMiB, T0));
  EXPECT_FALSE(p.ShouldTrim(23 * kMiB, T0 + kSecond));
  EXPECT_TRUE(p.ShouldTrim(24 * kMiB, T0 + 2 * kSecond));
  // The floor follows the resident size down.
  EXPECT_FALSE(p.ShouldTrim(10 * kMiB, T0 + 3 * kSecond));
  EXPECT_TRUE(p.ShouldTrim(18 * kMiB, T0 + 4 * kSecond));
}

TEST(TrimPolicyTest, TrimsAgainSoonWhileTrimsGiveBackMuch) {
  TrimPolicy p(Options(), 16 * kMiB);
  // Mid-burst some is free: trimmed, though the burst goes on.
  ASSERT_TRUE(p.ShouldTrim(130 * kMiB, T0));
  p.Trimmed(130 * kMiB, 100 * kMiB, T0);
  EXPECT_FALSE(p.ShouldTrim(120 * kMiB, T0 + 4 * kSecond));
  // The burst reuses those pages and ends: trimmed again after
  // min_interval, though nothing tells how much is free (a policy that
  // waited for the free heap to grow past its level at the last trim kept
  // 45 MiB resident for good).
  ASSERT_TRUE(p.ShouldTrim(120 * kMiB, T0 + 5 * kSecond));
  p.Trimmed(120 * kMiB, 20 * kMiB, T0 + 5 * kSecond);
  // Idle again: nothing more to do.
  EXPECT_FALSE(p.ShouldTrim(20 * kMiB, T0 + 60 * kSecond));
}

TEST(TrimPolicyTest, ABusyProcessIsWalkedLessAndLessOften) {
  TrimPolicy p(Options(), 16 * kMiB);
  // Its memory is in use: every trim gives back little.
  absl::Time now = T0;
  std::vector<absl::Duration> gaps;
  absl::Time last = now;
  for (int i = 0; i < 200 && gaps.size() < 6; ++i, now += kSecond) {
    if (!p.ShouldTrim(200 * kMiB, now)) continue;
    if (now != T0) gaps.push_back(now - last);
    last = now;
    p.Trimmed(200 * kMiB, 199 * kMiB, now);
  }
  ASSERT_EQ(gaps.size(), 6u);
  EXPECT_EQ(gaps[0], absl::Seconds(10));
  EXPECT_EQ(gaps[1], absl::Seconds(20));
  // At most max_interval apart, so a drop in load is seen within it.
  EXPECT_EQ(gaps[5], absl::Seconds(20));
  // Once a trim gives back much, the next comes after min_interval.
  p.Trimmed(200 * kMiB, 100 * kMiB, now);
  EXPECT_FALSE(p.ShouldTrim(180 * kMiB, now + 4 * kSecond));
  EXPECT_TRUE(p.ShouldTrim(180 * kMiB, now + 5 * kSecond));
}

TEST(MemoryReturnTest, TheReturnerGivesAFreedBurstBack) {
#if defined(__SANITIZE_ADDRESS__)
  // ASan replaces glibc's allocator (and quarantines what is freed):
  // malloc_trim has nothing of it to give back.
  GTEST_SKIP() << "glibc's allocator is replaced by AddressSanitizer's";
#endif
  const auto rss = [] { return ResidentBytes().value_or(-1); };
  ASSERT_GT(rss(), 0);
  MemoryReturnOptions options = Options();
  options.period = absl::Milliseconds(20);
  options.min_interval = absl::Milliseconds(20);
  options.max_interval = absl::Milliseconds(20);
  StartMemoryReturner(options);
  const int64_t before = rss();
  {
    // 64 MiB in small blocks (below the mmap threshold: on the heap), with
    // every other one kept so that the heap cannot simply shrink at its top.
    std::vector<std::unique_ptr<char[]>> blocks;
    std::vector<std::unique_ptr<char[]>> kept;
    for (int i = 0; i < 64 * 1024; ++i) {
      blocks.emplace_back(new char[1024]);
      blocks.back()[0] = 1;
      for (int k = 0; k < 1024; k += 512)
        blocks.back()[k] = static_cast<char>(k);
      if (i % 64 == 0) kept.emplace_back(new char[16]);
    }
    ASSERT_GT(rss(), before + 48 * kMiB);
    blocks.clear();
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (rss() > before + 24 * kMiB && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_LE(rss(), before + 24 * kMiB)
        << "freed heap still resident: " << (rss() - before) / kMiB << " MiB";
  }
}

}  // namespace
}  // namespace agentstream
