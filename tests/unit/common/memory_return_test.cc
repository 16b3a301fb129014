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

TEST(TrimPolicyTest, AsksForTheFreeHeapOnlyWhenResidentSizeGrew) {
  TrimPolicy p(Options(), 16 * kMiB);
  EXPECT_FALSE(p.WantsFreeHeap(16 * kMiB));
  EXPECT_FALSE(p.WantsFreeHeap(23 * kMiB));
  EXPECT_TRUE(p.WantsFreeHeap(24 * kMiB));
  // The floor follows the resident size down.
  EXPECT_FALSE(p.WantsFreeHeap(10 * kMiB));
  EXPECT_TRUE(p.WantsFreeHeap(18 * kMiB));
}

TEST(TrimPolicyTest, TrimsWhenMemoryWasFreedAfterABurst) {
  TrimPolicy p(Options(), 16 * kMiB);
  // During the burst: memory in use, little free.
  ASSERT_TRUE(p.WantsFreeHeap(130 * kMiB));
  EXPECT_FALSE(p.ShouldTrim(2 * kMiB + 0));
  // The burst ended: 100 MiB free, the resident size unchanged.
  ASSERT_TRUE(p.WantsFreeHeap(130 * kMiB));
  EXPECT_TRUE(p.ShouldTrim(100 * kMiB));
  p.Trimmed(30 * kMiB);
  // The trimmed chunks are still counted free: no trim again and again.
  ASSERT_TRUE(p.WantsFreeHeap(30 * kMiB));
  EXPECT_FALSE(p.ShouldTrim(100 * kMiB));
  EXPECT_FALSE(p.ShouldTrim(100 * kMiB));
  // The next burst reuses them, then frees again: trimmed again.
  ASSERT_TRUE(p.WantsFreeHeap(130 * kMiB));
  EXPECT_FALSE(p.ShouldTrim(5 * kMiB));
  EXPECT_TRUE(p.ShouldTrim(90 * kMiB));
}

TEST(TrimPolicyTest, ABusyProcessIsNotTrimmed) {
  TrimPolicy p(Options(), 16 * kMiB);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(p.WantsFreeHeap(200 * kMiB));
    EXPECT_FALSE(p.ShouldTrim(3 * kMiB + i * kMiB / 4));
  }
}

TEST(MemoryReturnTest, TheReturnerGivesAFreedBurstBack) {
  const auto rss = [] { return ResidentBytes().value_or(-1); };
  ASSERT_GT(rss(), 0);
  MemoryReturnOptions options = Options();
  options.period = absl::Milliseconds(20);
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
