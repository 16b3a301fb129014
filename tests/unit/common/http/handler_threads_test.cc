#include "common/http/handler_threads.h"

#include <atomic>
#include <functional>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace agentstream::http {
namespace {

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

TEST(HandlerThreadsTest, GrowsOneThreadPerBlockedJobUpToTheCap) {
  HandlerThreads threads(/*max_threads=*/4, /*stack_bytes=*/64 * 1024,
                         /*max_queued=*/16);
  absl::Notification release;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(threads.Submit([&] {
      started.fetch_add(1);
      release.WaitForNotification();
      finished.fetch_add(1);
    }));
  }
  ASSERT_TRUE(WaitFor([&] { return started.load() == 4; }, absl::Seconds(5)));
  EXPECT_EQ(threads.thread_count(), 4u);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(started.load(), 4);  // Two wait for a free thread.
  release.Notify();
  ASSERT_TRUE(WaitFor([&] { return finished.load() == 6; }, absl::Seconds(5)));
  EXPECT_EQ(threads.thread_count(), 4u);
  threads.Shutdown();
}

TEST(HandlerThreadsTest, RefusesPastTheQueueBound) {
  HandlerThreads threads(/*max_threads=*/1, 64 * 1024, /*max_queued=*/2);
  absl::Notification release;
  std::atomic<int> done{0};
  auto job = [&] {
    release.WaitForNotification();
    done.fetch_add(1);
  };
  ASSERT_TRUE(threads.Submit(job));  // Runs.
  ASSERT_TRUE(
      WaitFor([&] { return threads.busy_count() == 1; }, absl::Seconds(5)));
  EXPECT_TRUE(threads.Submit(job));   // Waits.
  EXPECT_TRUE(threads.Submit(job));   // Waits.
  EXPECT_FALSE(threads.Submit(job));  // Refused: two wait already.
  release.Notify();
  threads.Shutdown();
  EXPECT_EQ(done.load(), 3);
  EXPECT_FALSE(threads.Submit(job));  // After Shutdown().
}

TEST(HandlerThreadsTest, IdleThreadsAreReused) {
  HandlerThreads threads(100, 64 * 1024, 16);
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(threads.Submit([&] { done.fetch_add(1); }));
    ASSERT_TRUE(
        WaitFor([&] { return done.load() == i + 1; }, absl::Seconds(5)));
    ASSERT_TRUE(
        WaitFor([&] { return threads.busy_count() == 0; }, absl::Seconds(5)));
  }
  EXPECT_EQ(threads.thread_count(), 1u);
  threads.Shutdown();
}

TEST(HandlerThreadsTest, ShutdownRunsQueuedJobsAndJoins) {
  std::atomic<int> done{0};
  HandlerThreads threads(2, 64 * 1024, 16);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(threads.Submit([&] {
      absl::SleepFor(absl::Milliseconds(5));
      done.fetch_add(1);
    }));
  }
  threads.Shutdown();
  EXPECT_EQ(done.load(), 10);
}

TEST(HandlerThreadsTest, SmallStacksHoldJsonAndStringWork) {
  // A stand-in for what a request thread does: parse a 256 KiB JSON body of
  // the deepest nesting the gateway accepts.
  HandlerThreads threads(1, 64 * 1024, 16);
  std::atomic<bool> ok{false};
  ASSERT_TRUE(threads.Submit([&] {
    std::string body = std::string(33, '[') + std::string(33, ']');
    body.resize(256 * 1024, ' ');
    auto json = nlohmann::json::parse(body, nullptr, false);
    ok = !json.is_discarded() && json.dump().size() == 66;
  }));
  threads.Shutdown();
  EXPECT_TRUE(ok.load());
}

}  // namespace
}  // namespace agentstream::http
