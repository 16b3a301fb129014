#include "gateway/dialects/chat_index.h"

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace agentstream::gateway::dialects {
namespace {

TEST(ChatIndexTest, FindsTheChatsLatestRun) {
  FakeClock clock;
  ChatIndex index({}, &clock);
  EXPECT_FALSE(index.Find("alice", "chat-1").has_value());
  index.Started("alice", "chat-1", "run_a");
  index.Started("alice", "chat-1", "run_b");
  auto entry = index.Find("alice", "chat-1");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->run_id, "run_b");
  EXPECT_FALSE(entry->finished);
  EXPECT_EQ(index.size(), 1u);
}

TEST(ChatIndexTest, FinishedOnlyForTheChatsCurrentRun) {
  FakeClock clock;
  ChatIndex index({}, &clock);
  index.Started("alice", "chat-1", "run_a");
  index.Started("alice", "chat-1", "run_b");
  index.Finished("alice", "chat-1", "run_a", 40);  // An older run: ignored.
  EXPECT_FALSE(index.Find("alice", "chat-1")->finished);
  index.Finished("alice", "chat-1", "run_b", 17);
  auto entry = index.Find("alice", "chat-1");
  EXPECT_TRUE(entry->finished);
  EXPECT_EQ(entry->final_seq, 17u);
  index.Finished("alice", "chat-2", "run_b", 17);  // Unknown chat: nothing.
  EXPECT_FALSE(index.Find("alice", "chat-2").has_value());
  // A new message starts the chat over.
  index.Started("alice", "chat-1", "run_c");
  EXPECT_FALSE(index.Find("alice", "chat-1")->finished);
}

TEST(ChatIndexTest, PrincipalsAreIsolated) {
  FakeClock clock;
  ChatIndex index({}, &clock);
  index.Started("alice", "chat-1", "run_a");
  EXPECT_FALSE(index.Find("bob", "chat-1").has_value());
  EXPECT_FALSE(index.Find("", "chat-1").has_value());
  // No pair spells another's key.
  index.Started("ab", "c", "run_x");
  EXPECT_FALSE(index.Find("a", "bc").has_value());
  index.Started("bob", "chat-1", "run_b");
  EXPECT_EQ(index.Find("alice", "chat-1")->run_id, "run_a");
  EXPECT_EQ(index.Find("bob", "chat-1")->run_id, "run_b");
}

TEST(ChatIndexTest, EntriesExpire) {
  FakeClock clock;
  ChatIndex index({.max_entries = 10, .ttl = absl::Minutes(30)}, &clock);
  index.Started("alice", "chat-1", "run_a");
  clock.Advance(absl::Minutes(20));
  index.Started("alice", "chat-2", "run_b");
  clock.Advance(absl::Minutes(9));
  EXPECT_TRUE(index.Find("alice", "chat-1").has_value());
  // Finishing writes the entry again: its TTL starts over.
  index.Finished("alice", "chat-1", "run_a", 5);
  clock.Advance(absl::Minutes(25));
  EXPECT_TRUE(index.Find("alice", "chat-1").has_value());
  EXPECT_FALSE(index.Find("alice", "chat-2").has_value());
  clock.Advance(absl::Minutes(5));
  EXPECT_FALSE(index.Find("alice", "chat-1").has_value());
  EXPECT_EQ(index.size(), 0u);
}

TEST(ChatIndexTest, BoundedOldestWrittenGoesFirst) {
  FakeClock clock;
  ChatIndex index({.max_entries = 3, .ttl = absl::Hours(1)}, &clock);
  index.Started("u", "c1", "r1");
  index.Started("u", "c2", "r2");
  index.Started("u", "c3", "r3");
  index.Finished("u", "c1", "r1", 9);  // c1 is now the newest written.
  index.Started("u", "c4", "r4");
  EXPECT_EQ(index.size(), 3u);
  EXPECT_FALSE(index.Find("u", "c2").has_value());
  EXPECT_TRUE(index.Find("u", "c1").has_value());
  EXPECT_TRUE(index.Find("u", "c3").has_value());
  EXPECT_TRUE(index.Find("u", "c4").has_value());
  for (int i = 0; i < 100; ++i) {
    index.Started("u", absl::StrCat("x", i), "r");
  }
  EXPECT_EQ(index.size(), 3u);
}

}  // namespace
}  // namespace agentstream::gateway::dialects
