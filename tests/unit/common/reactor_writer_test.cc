#include "common/reactor_writer.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream {
namespace {

using ::testing::ElementsAre;

// Records what the writer asks of a reactor; the test completes writes.
class FakeReactor {
 public:
  void StartWrite(const std::string* message) {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    written_.push_back(*message);
  }
  // The half-close, recorded among the writes as "<writes done>".
  void StartWritesDone() {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    written_.push_back("<writes done>");
  }
  template <typename Writer>
  void CompleteWritesDone(Writer& writer) {
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
    }
    writer.WritesDoneDone();
  }
  void RemoveHold() {
    absl::MutexLock lock(&mu_);
    ++holds_removed_;
  }
  // The write in flight completed (as gRPC's OnWriteDone would say).
  template <typename Writer>
  void Complete(Writer& writer, bool ok) {
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
    }
    writer.WriteDone(ok);
  }
  std::vector<std::string> written() {
    absl::MutexLock lock(&mu_);
    return written_;
  }
  int in_flight() {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }
  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }
  int holds_removed() {
    absl::MutexLock lock(&mu_);
    return holds_removed_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> written_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int holds_removed_ ABSL_GUARDED_BY(mu_) = 0;
};

using Writer = ReactorWriter<FakeReactor, std::string>;

TEST(ReactorWriterTest, OneWriteInFlightTheRestInOrder) {
  FakeReactor reactor;
  Writer writer(&reactor);
  writer.Send("a");
  writer.Send("b");
  writer.Send("c");
  EXPECT_THAT(reactor.written(), ElementsAre("a"));
  reactor.Complete(writer, true);
  reactor.Complete(writer, true);
  EXPECT_THAT(reactor.written(), ElementsAre("a", "b", "c"));
  reactor.Complete(writer, true);
  EXPECT_EQ(reactor.max_in_flight(), 1);
  EXPECT_EQ(reactor.holds_removed(), 0);  // Not over: the hold stays.
}

TEST(ReactorWriterTest, CloseWritesHalfClosesAfterTheQueue) {
  FakeReactor reactor;
  Writer writer(&reactor);
  writer.Send("a");
  writer.Send("b");
  writer.CloseWrites();
  writer.Send("c");  // Refused: the call is closing.
  EXPECT_THAT(reactor.written(), ElementsAre("a"));
  reactor.Complete(writer, true);
  EXPECT_THAT(reactor.written(), ElementsAre("a", "b"));
  reactor.Complete(writer, true);
  EXPECT_THAT(reactor.written(), ElementsAre("a", "b", "<writes done>"));
  EXPECT_EQ(reactor.holds_removed(), 0);
  reactor.CompleteWritesDone(writer);
  EXPECT_EQ(reactor.holds_removed(), 1);
  EXPECT_EQ(reactor.max_in_flight(), 1);
  writer.Send("d");
  writer.CloseWrites();
  EXPECT_THAT(reactor.written(), ElementsAre("a", "b", "<writes done>"));
}

TEST(ReactorWriterTest, CloseWritesWithNothingQueuedAtOnceAndOnlyOnce) {
  FakeReactor reactor;
  Writer writer(&reactor);
  writer.CloseWrites();
  writer.CloseWrites();
  EXPECT_THAT(reactor.written(), ElementsAre("<writes done>"));
  writer.Stop();  // The read side ended meanwhile: the hold waits for it.
  EXPECT_EQ(reactor.holds_removed(), 0);
  reactor.CompleteWritesDone(writer);
  EXPECT_EQ(reactor.holds_removed(), 1);
}

TEST(ReactorWriterTest, CloseWritesAfterAFailedWriteDoesNothing) {
  FakeReactor reactor;
  Writer writer(&reactor);
  writer.Send("a");
  reactor.Complete(writer, false);
  writer.CloseWrites();
  EXPECT_THAT(reactor.written(), ElementsAre("a"));
  EXPECT_EQ(reactor.holds_removed(), 1);
}

TEST(ReactorWriterTest, TheHoldGoesOnceStoppedAndNoWriteIsInFlight) {
  FakeReactor reactor;
  Writer writer(&reactor);
  writer.Send("a");
  writer.Stop();
  EXPECT_EQ(reactor.holds_removed(), 0);  // "a" is still in flight.
  writer.Send("dropped");
  reactor.Complete(writer, true);
  EXPECT_EQ(reactor.holds_removed(), 1);
  EXPECT_THAT(reactor.written(), ElementsAre("a"));
  writer.Stop();
  EXPECT_EQ(reactor.holds_removed(), 1);  // Once.
}

TEST(ReactorWriterTest, AFailedWriteEndsWriting) {
  FakeReactor reactor;
  Writer writer(&reactor);
  writer.Send("a");
  writer.Send("b");
  reactor.Complete(writer, false);
  EXPECT_THAT(reactor.written(), ElementsAre("a"));
  EXPECT_EQ(reactor.holds_removed(), 1);
  EXPECT_FALSE(writer.Enqueue("c"));
}

// Messages numbered under the caller's lock and enqueued under it go out
// in their numbers' order, whichever thread sends them.
TEST(ReactorWriterTest, EnqueuedUnderTheCallersLockTheyKeepItsOrder) {
  FakeReactor reactor;
  Writer writer(&reactor);
  absl::Mutex caller_mu;
  int next = 0;
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) {
      }
      for (int i = 0; i < 250; ++i) {
        bool start;
        {
          absl::MutexLock lock(&caller_mu);
          start = writer.Enqueue(std::to_string(++next));
        }
        if (start) writer.Start();
      }
    });
  }
  go = true;
  // Completes writes as they come until all 1,000 went out.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (reactor.written().size() < 1000 && absl::Now() < deadline) {
    if (reactor.in_flight() > 0) reactor.Complete(writer, true);
  }
  for (auto& t : threads) t.join();
  const std::vector<std::string> written = reactor.written();
  ASSERT_EQ(written.size(), 1000u);
  for (size_t i = 0; i < written.size(); ++i) {
    ASSERT_EQ(written[i], std::to_string(i + 1));
  }
  EXPECT_EQ(reactor.max_in_flight(), 1);
}

}  // namespace
}  // namespace agentstream
