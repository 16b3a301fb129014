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

TEST(TrimPolicyTest, AsksForTheFreeHeapOnlyWhenResidentSizeGrew) {
  TrimPolicy p(Options(), 16 * kMiB);
  EXPECT_FALSE(p.WantsFreeHeap(16 * kMiB, T0));
  EXPECT_FALSE(p.WantsFreeHeap(23 * kMiB, T0 + kSecond));
  EXPECT_TRUE(p.WantsFreeHeap(24 * kMiB, T0 + 2 * kSecond));
  // The floor follows the resident size down.
  EXPECT_FALSE(p.WantsFreeHeap(10 * kMiB, T0 + 10 * kSecond));
  EXPECT_TRUE(p.WantsFreeHeap(18 * kMiB, T0 + 20 * kSecond));
}

TEST(TrimPolicyTest, LooksAtMostOncePerInterval) {
  TrimPolicy p(Options(), 16 * kMiB);
  ASSERT_TRUE(p.WantsFreeHeap(200 * kMiB, T0));
  EXPECT_FALSE(p.WantsFreeHeap(200 * kMiB, T0 + kSecond));
  EXPECT_FALSE(p.WantsFreeHeap(200 * kMiB, T0 + 4 * kSecond));
  EXPECT_TRUE(p.WantsFreeHeap(200 * kMiB, T0 + 5 * kSecond));
}

TEST(TrimPolicyTest, TrimsWhatABurstFreed) {
  TrimPolicy p(Options(), 16 * kMiB);
  // During the burst: memory in use, little free.
  ASSERT_TRUE(p.WantsFreeHeap(130 * kMiB, T0));
  EXPECT_FALSE(p.ShouldTrim(2 * kMiB));
  // Mid-burst some is free: trimmed, though the burst goes on.
  ASSERT_TRUE(p.WantsFreeHeap(130 * kMiB, T0 + 5 * kSecond));
  EXPECT_TRUE(p.ShouldTrim(40 * kMiB));
  p.Trimmed(100 * kMiB);
  // The burst reuses those pages and ends: as much free as before, and the
  // resident size up again. Trimmed again (glibc cannot tell which free
  // pages are resident; a policy that waited for the free heap to grow
  // past what it was at the last trim kept 45 MiB resident for good).
  ASSERT_TRUE(p.WantsFreeHeap(120 * kMiB, T0 + 10 * kSecond));
  EXPECT_TRUE(p.ShouldTrim(40 * kMiB));
  p.Trimmed(20 * kMiB);
  // Idle again: nothing more to do.
  EXPECT_FALSE(p.WantsFreeHeap(20 * kMiB, T0 + 20 * kSecond));
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
