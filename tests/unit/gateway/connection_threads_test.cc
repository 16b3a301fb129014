#include "gateway/connection_threads.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {
namespace {

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

TEST(ConnectionThreadsTest, GrowsOneThreadPerBlockedJobUpToTheCap) {
  ConnectionThreads queue(/*max_threads=*/4, /*stack_bytes=*/64 * 1024);
  absl::Notification release;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  for (int i = 0; i < 6; ++i) {
    queue.enqueue([&] {
      started.fetch_add(1);
      release.WaitForNotification();
      finished.fetch_add(1);
    });
  }
  ASSERT_TRUE(WaitFor([&] { return started.load() == 4; }, absl::Seconds(5)));
  EXPECT_EQ(queue.thread_count(), 4u);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(started.load(), 4);  // Two wait for a free thread.
  release.Notify();
  ASSERT_TRUE(WaitFor([&] { return finished.load() == 6; }, absl::Seconds(5)));
  EXPECT_EQ(queue.thread_count(), 4u);
  queue.shutdown();
}

TEST(ConnectionThreadsTest, IdleThreadsAreReused) {
  ConnectionThreads queue(100, 64 * 1024);
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    queue.enqueue([&] { done.fetch_add(1); });
    ASSERT_TRUE(
        WaitFor([&] { return done.load() == i + 1; }, absl::Seconds(5)));
    ASSERT_TRUE(
        WaitFor([&] { return queue.idle_count() == queue.thread_count(); },
                absl::Seconds(5)));
  }
  EXPECT_EQ(queue.thread_count(), 1u);
  queue.shutdown();
}

TEST(ConnectionThreadsTest, ShutdownRunsQueuedJobsAndJoins) {
  std::atomic<int> done{0};
  {
    ConnectionThreads queue(2, 64 * 1024);
    for (int i = 0; i < 10; ++i) {
      queue.enqueue([&] {
        absl::SleepFor(absl::Milliseconds(5));
        done.fetch_add(1);
      });
    }
    queue.shutdown();
    EXPECT_EQ(done.load(), 10);
  }
}

TEST(ConnectionThreadsTest, SmallStacksHoldJsonAndStringWork) {
  // A stand-in for what a request thread does: parse a 256 KiB JSON body of
  // the deepest nesting the gateway accepts.
  ConnectionThreads queue(1, 64 * 1024);
  std::atomic<bool> ok{false};
  queue.enqueue([&] {
    std::string body = std::string(33, '[') + std::string(33, ']');
    body.resize(256 * 1024, ' ');
    auto json = nlohmann::json::parse(body, nullptr, false);
    ok = !json.is_discarded() && json.dump().size() == 66;
  });
  queue.shutdown();
  EXPECT_TRUE(ok.load());
}

}  // namespace
}  // namespace agentstream::gateway
