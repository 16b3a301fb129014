// TombstoneTable (orchestrator/tombstones.h): lookup, expiry, the count
// bound, replacement, id lengths, memory given back after a mass expiry, and
// the bytes one tombstone costs; plus a randomised comparison with a plain
// map-based model of the same contract.
#include "orchestrator/tombstones.h"

#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

using ::testing::Eq;
using ::testing::Optional;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);
const absl::Duration kTtl = absl::Hours(24);

// A generated request id: "req_" and 16 hex digits (GenerateRequestId).
std::string GeneratedId(uint64_t n) {
  return absl::StrFormat("req_%016x", n * 0x9e3779b97f4a7c15ULL);
}

TEST(TombstoneTableTest, FindsWhatWasAdded) {
  TombstoneTable table(10, kTtl);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find("a", kStart), std::nullopt);
  table.Add("a", 5, kStart);
  table.Add("b", 0, kStart);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_THAT(table.Find("a", kStart), Optional(Eq(5u)));
  EXPECT_THAT(table.Find("b", kStart), Optional(Eq(0u)));
  EXPECT_EQ(table.Find("c", kStart), std::nullopt);
  EXPECT_EQ(table.Find("aa", kStart), std::nullopt);
  EXPECT_EQ(table.Find("", kStart), std::nullopt);
}

TEST(TombstoneTableTest, ExpiresAfterItsTtlEvenBeforePrune) {
  TombstoneTable table(10, absl::Hours(1));
  table.Add("a", 5, kStart);
  table.Add("b", 6, kStart + absl::Minutes(30));
  const absl::Time a_expires = kStart + absl::Hours(1);
  EXPECT_THAT(table.Find("a", a_expires - absl::Nanoseconds(1)),
              Optional(Eq(5u)));
  EXPECT_EQ(table.Find("a", a_expires), std::nullopt);
  EXPECT_EQ(table.size(), 2u);  // Until pruned.

  table.Prune(a_expires - absl::Nanoseconds(1));
  EXPECT_EQ(table.size(), 2u);
  table.Prune(a_expires);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_THAT(table.Find("b", a_expires), Optional(Eq(6u)));
  table.Prune(a_expires + absl::Minutes(30));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find("b", a_expires), std::nullopt);
}

TEST(TombstoneTableTest, AnInfiniteTtlNeverExpires) {
  TombstoneTable table(10, absl::InfiniteDuration());
  table.Add("a", 5, kStart);
  table.Prune(kStart + absl::Hours(24 * 365 * 100));
  EXPECT_THAT(table.Find("a", kStart + absl::Hours(24 * 365 * 100)),
              Optional(Eq(5u)));
}

TEST(TombstoneTableTest, TheCountBoundDropsTheOldestFirst) {
  TombstoneTable table(3, kTtl);
  for (int i = 0; i < 5; ++i) {
    table.Add(GeneratedId(i), i, kStart + absl::Seconds(i));
  }
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.Find(GeneratedId(0), kStart), std::nullopt);
  EXPECT_EQ(table.Find(GeneratedId(1), kStart), std::nullopt);
  for (int i = 2; i < 5; ++i) {
    EXPECT_THAT(table.Find(GeneratedId(i), kStart),
                Optional(Eq(static_cast<uint64_t>(i))));
  }
}

TEST(TombstoneTableTest, ZeroCountKeepsNone) {
  TombstoneTable table(0, kTtl);
  table.Add("a", 5, kStart);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find("a", kStart), std::nullopt);
  EXPECT_EQ(table.AllocatedBytes(), 0u);
}

TEST(TombstoneTableTest, ReAddingAnIdReplacesItsTombstoneAndItsAge) {
  TombstoneTable table(10, absl::Hours(1));
  table.Add("a", 1, kStart);
  table.Add("b", 2, kStart + absl::Minutes(10));
  table.Add("a", 7, kStart + absl::Minutes(20));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_THAT(table.Find("a", kStart), Optional(Eq(7u)));
  // The first "a" would have expired now; the second has not.
  table.Prune(kStart + absl::Minutes(65));
  EXPECT_EQ(table.size(), 2u);
  table.Prune(kStart + absl::Minutes(75));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Find("b", kStart + absl::Minutes(75)), std::nullopt);
  EXPECT_THAT(table.Find("a", kStart + absl::Minutes(75)), Optional(Eq(7u)));
  table.Prune(kStart + absl::Minutes(80));
  EXPECT_EQ(table.size(), 0u);
}

TEST(TombstoneTableTest, AReplacedIdCountsOnceTowardsTheBound) {
  TombstoneTable table(2, kTtl);
  table.Add("a", 1, kStart);
  table.Add("b", 2, kStart);
  table.Add("a", 3, kStart);  // Now "b" is the oldest.
  EXPECT_EQ(table.size(), 2u);
  table.Add("c", 4, kStart);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find("b", kStart), std::nullopt);
  EXPECT_THAT(table.Find("a", kStart), Optional(Eq(3u)));
  EXPECT_THAT(table.Find("c", kStart), Optional(Eq(4u)));
}

TEST(TombstoneTableTest, EraseRemovesOnlyThatId) {
  TombstoneTable table(10, kTtl);
  table.Add("a", 1, kStart);
  table.Add("b", 2, kStart);
  EXPECT_TRUE(table.Erase("a"));
  EXPECT_FALSE(table.Erase("a"));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Find("a", kStart), std::nullopt);
  EXPECT_THAT(table.Find("b", kStart), Optional(Eq(2u)));
  table.Add("a", 3, kStart);
  EXPECT_THAT(table.Find("a", kStart), Optional(Eq(3u)));
}

TEST(TombstoneTableTest, IdsOfEveryAllowedLength) {
  TombstoneTable table(100, kTtl);
  const std::vector<size_t> lengths = {
      1, 20, 63, 64, 65, 127, 128, TombstoneTable::kMaxIdBytes};
  for (size_t length : lengths) {
    // Same character, so that ids differ only in length.
    table.Add(std::string(length, 'x'), length, kStart);
    table.Add(std::string(length - 1, 'y') + "z", 1000 + length, kStart);
  }
  EXPECT_EQ(table.size(), 2 * lengths.size());
  for (size_t length : lengths) {
    EXPECT_THAT(table.Find(std::string(length, 'x'), kStart),
                Optional(Eq(length)))
        << length;
    EXPECT_THAT(table.Find(std::string(length - 1, 'y') + "z", kStart),
                Optional(Eq(1000 + length)))
        << length;
  }
  EXPECT_EQ(table.Find(std::string(2, 'y'), kStart), std::nullopt);
  // Beyond the limit an id is not kept (request ids never are that long).
  table.Add(std::string(TombstoneTable::kMaxIdBytes + 1, 'x'), 1, kStart);
  EXPECT_EQ(table.size(), 2 * lengths.size());
}

TEST(TombstoneTableTest, MemoryComesBackAfterAMassExpiry) {
  TombstoneTable table(100000, absl::Hours(1));
  for (int i = 0; i < 10000; ++i) table.Add(GeneratedId(i), i, kStart);
  for (int i = 10000; i < 10100; ++i) {
    table.Add(GeneratedId(i), i, kStart + absl::Minutes(30));
  }
  const size_t full = table.AllocatedBytes();
  table.Prune(kStart + absl::Hours(1));
  EXPECT_EQ(table.size(), 100u);
  // 100 of 10,100 left: far less than a tenth of the memory.
  EXPECT_LT(table.AllocatedBytes(), full / 20)
      << full << " -> " << table.AllocatedBytes();
  for (int i = 10000; i < 10100; ++i) {
    EXPECT_THAT(table.Find(GeneratedId(i), kStart + absl::Hours(1)),
                Optional(Eq(static_cast<uint64_t>(i))));
  }
  table.Prune(kStart + absl::Minutes(90));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.AllocatedBytes(), 0u);
}

TEST(TombstoneTableTest, ReplacedAndErasedRecordsDoNotAccumulate) {
  // Without any Prune: 100 ids replaced 2,000 times each, half of them
  // erased in between; memory stays that of about 100 tombstones.
  TombstoneTable table(100000, kTtl);
  for (int round = 0; round < 2000; ++round) {
    for (int i = 0; i < 100; ++i) {
      if (i % 2 == 0) table.Erase(GeneratedId(i));
      table.Add(GeneratedId(i), round, kStart);
    }
  }
  EXPECT_EQ(table.size(), 100u);
  EXPECT_LT(table.AllocatedBytes(), 100u * 128 * 4);
  for (int i = 0; i < 100; ++i) {
    EXPECT_THAT(table.Find(GeneratedId(i), kStart), Optional(Eq(1999u)));
  }
}

TEST(TombstoneTableTest, BytesPerTombstoneOfGeneratedIds) {
  TombstoneTable table(100000, kTtl);
  constexpr int kCount = 10000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(GeneratedId(i).size(), 20u);
    table.Add(GeneratedId(i), i, kStart);
  }
  ASSERT_EQ(table.size(), static_cast<size_t>(kCount));
  const double per = static_cast<double>(table.AllocatedBytes()) / kCount;
  std::printf("bytes per tombstone (%d ids of 20 chars, by capacity): %.1f\n",
              kCount, per);
  EXPECT_LE(per, 128.0);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_THAT(table.Find(GeneratedId(i), kStart),
                Optional(Eq(static_cast<uint64_t>(i))));
  }
}

// The contract, spelled out on plain containers: creation order in a deque
// (entries of replaced or erased ids skipped), the current one in a map.
class Model {
 public:
  Model(size_t max_count, absl::Duration ttl)
      : max_count_(max_count), ttl_(ttl) {}
  void Add(const std::string& id, uint64_t seq, absl::Time now) {
    current_[id] = {seq, now + ttl_, ++generation_};
    order_.push_back({generation_, id});
    PopFront([&](const Entry&) { return current_.size() > max_count_; });
  }
  std::optional<uint64_t> Find(const std::string& id, absl::Time now) const {
    auto it = current_.find(id);
    if (it == current_.end() || it->second.expires <= now) return std::nullopt;
    return it->second.seq;
  }
  bool Erase(const std::string& id) { return current_.erase(id) != 0; }
  void Prune(absl::Time now) {
    PopFront([&](const Entry& e) {
      return current_.size() > max_count_ || e.expires <= now;
    });
  }
  size_t size() const { return current_.size(); }

 private:
  struct Entry {
    uint64_t seq;
    absl::Time expires;
    uint64_t generation;
  };
  template <typename Pred>
  void PopFront(Pred pop) {
    while (!order_.empty()) {
      auto it = current_.find(order_.front().second);
      if (it != current_.end() &&
          it->second.generation == order_.front().first) {
        if (!pop(it->second)) break;
        current_.erase(it);
      }
      order_.pop_front();
    }
  }
  const size_t max_count_;
  const absl::Duration ttl_;
  uint64_t generation_ = 0;
  std::map<std::string, Entry> current_;
  std::deque<std::pair<uint64_t, std::string>> order_;
};

TEST(TombstoneTableTest, BehavesLikeTheModelUnderRandomOperations) {
  std::mt19937_64 random(11);
  const absl::Duration ttl = absl::Seconds(100);
  TombstoneTable table(60, ttl);
  Model model(60, ttl);
  std::vector<std::string> ids;
  for (int i = 0; i < 120; ++i) {
    // Lengths 1..128, some long enough for several hundred bytes a rewrite.
    ids.push_back(std::string(1 + random() % 128, 'a' + i % 26) +
                  std::to_string(i));
    if (ids.back().size() > 128) ids.back().resize(128);
  }
  absl::Time now = kStart;
  for (int step = 0; step < 200000; ++step) {
    const std::string& id = ids[random() % ids.size()];
    switch (random() % 8) {
      case 0:
        ASSERT_EQ(table.Erase(id), model.Erase(id)) << step;
        break;
      case 1:
        table.Prune(now);
        model.Prune(now);
        break;
      case 2:
        now += absl::Seconds(random() % 3);
        break;
      default:
        table.Add(id, step, now);
        model.Add(id, step, now);
        break;
    }
    ASSERT_EQ(table.size(), model.size()) << step;
    if (step % 97 == 0) {
      for (const std::string& each : ids) {
        ASSERT_EQ(table.Find(each, now), model.Find(each, now)) << step;
      }
    }
  }
}

}  // namespace
}  // namespace agentstream::orchestrator
