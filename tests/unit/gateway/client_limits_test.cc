#include "gateway/client_limits.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::gateway {
namespace {

using ::agentstream::testing::StatusIs;

TEST(ClientLimiterTest, StreamsPerClientAreBoundedAndReleased) {
  FakeClock clock;
  ClientLimiter limiter({.max_streams_per_client = 2}, &clock);
  auto a = limiter.AcquireStream("1.1.1.1");
  auto b = limiter.AcquireStream("1.1.1.1");
  ASSERT_TRUE(a.slot && b.slot);
  auto c = limiter.AcquireStream("1.1.1.1");
  EXPECT_FALSE(c.slot);
  EXPECT_THAT(c.refusal.status, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_GE(c.refusal.retry_after_seconds, 1);
  // Another client is not affected.
  EXPECT_TRUE(limiter.AcquireStream("2.2.2.2").slot);
  a.slot.reset();
  EXPECT_EQ(limiter.open_streams("1.1.1.1"), 1);
  EXPECT_TRUE(limiter.AcquireStream("1.1.1.1").slot);
}

TEST(ClientLimiterTest, RunStartsFollowATokenBucket) {
  FakeClock clock;
  ClientLimiter limiter({.run_starts_per_second = 10, .run_start_burst = 5},
                        &clock);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(limiter.TakeRunStart("c").status.ok()) << i;
  }
  auto refused = limiter.TakeRunStart("c");
  EXPECT_THAT(refused.status, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(refused.retry_after_seconds, 1);
  clock.Advance(absl::Milliseconds(100));  // One token back.
  EXPECT_TRUE(limiter.TakeRunStart("c").status.ok());
  EXPECT_FALSE(limiter.TakeRunStart("c").status.ok());
  clock.Advance(absl::Seconds(10));  // Full again, never past the burst.
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(limiter.TakeRunStart("c").status.ok());
  EXPECT_FALSE(limiter.TakeRunStart("c").status.ok());
}

TEST(ClientLimiterTest, SlowRatesGiveLongerRetryAfter) {
  FakeClock clock;
  ClientLimiter limiter({.run_starts_per_second = 0.25, .run_start_burst = 1},
                        &clock);
  EXPECT_TRUE(limiter.TakeRunStart("c").status.ok());
  EXPECT_EQ(limiter.TakeRunStart("c").retry_after_seconds, 4);
}

TEST(ClientLimiterTest, ZeroTurnsBoundsOff) {
  FakeClock clock;
  ClientLimiter limiter(
      {.max_streams_per_client = 0, .run_starts_per_second = 0}, &clock);
  std::vector<std::unique_ptr<ClientLimiter::StreamSlot>> slots;
  for (int i = 0; i < 1000; ++i) {
    auto r = limiter.AcquireStream("c");
    ASSERT_TRUE(r.slot);
    slots.push_back(std::move(r.slot));
    ASSERT_TRUE(limiter.TakeRunStart("c").status.ok());
  }
  EXPECT_EQ(limiter.open_streams("c"), 1000);
}

TEST(ClientLimiterTest, TheTableOfClientsIsBounded) {
  FakeClock clock;
  ClientLimiter limiter({.max_streams_per_client = 4,
                         .run_starts_per_second = 1,
                         .run_start_burst = 2,
                         .max_clients = 100},
                        &clock);
  auto held = limiter.AcquireStream("holder");
  ASSERT_TRUE(held.slot);
  for (int i = 0; i < 1000; ++i) {
    limiter.TakeRunStart(absl::StrCat("c", i));
    ASSERT_LE(limiter.tracked_clients(), 100u);
  }
  // A client with an open stream is never forgotten.
  EXPECT_EQ(limiter.open_streams("holder"), 1);
}

TEST(ClientLimiterTest,
     AClientIsForgottenWhenItsLastStreamEndsWithAFullBucket) {
  FakeClock clock;
  ClientLimiter limiter({}, &clock);
  {
    auto a = limiter.AcquireStream("a");
    auto b = limiter.AcquireStream("a");
    ASSERT_TRUE(a.slot && b.slot);
    EXPECT_EQ(limiter.tracked_clients(), 1u);
    a.slot.reset();
    EXPECT_EQ(limiter.tracked_clients(), 1u);  // One stream still open.
  }
  EXPECT_EQ(limiter.tracked_clients(), 0u);
  // A burst of clients leaves nothing behind.
  std::vector<std::unique_ptr<ClientLimiter::StreamSlot>> slots;
  for (int i = 0; i < 10000; ++i) {
    auto r =
        limiter.AcquireStream(absl::StrCat("127.0.", i / 256, ".", i % 256));
    ASSERT_TRUE(r.slot);
    slots.push_back(std::move(r.slot));
  }
  EXPECT_EQ(limiter.tracked_clients(), 10000u);
  slots.clear();
  EXPECT_EQ(limiter.tracked_clients(), 0u);
}

TEST(ClientLimiterTest, AnIdleClientIsForgottenOnlyOnceItsBucketIsFull) {
  FakeClock clock;
  // 10 a second, bursts of 100: an empty bucket is full after 10 s, and
  // idle clients are looked for that often.
  ClientLimiter limiter({.run_starts_per_second = 10, .run_start_burst = 100},
                        &clock);
  ASSERT_TRUE(limiter.TakeRunStart("b").status.ok());  // Looks at t=0.
  clock.Advance(absl::Seconds(5));
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(limiter.TakeRunStart("a").status.ok());
  EXPECT_FALSE(limiter.TakeRunStart("a").status.ok());
  clock.Advance(absl::Seconds(5));  // t=10: b is full again, a half.
  ASSERT_TRUE(limiter.TakeRunStart("c").status.ok());
  EXPECT_EQ(limiter.tracked_clients(), 2u);  // a and c.
  // a's bucket was kept: 50 tokens, not a fresh 100.
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(limiter.TakeRunStart("a").status.ok());
  EXPECT_FALSE(limiter.TakeRunStart("a").status.ok());
  clock.Advance(absl::Seconds(20));
  ASSERT_TRUE(limiter.TakeRunStart("d").status.ok());
  EXPECT_EQ(limiter.tracked_clients(), 1u);  // Only d.
}

}  // namespace
}  // namespace agentstream::gateway
