// One thread that runs callbacks at given times: the heartbeats, opening
// deadlines and finish graces of every stream the gateway holds, so that a
// waiting stream costs an entry here instead of a thread (docs/GATEWAY.md,
// "Threads").
#ifndef AGENTSTREAM_GATEWAY_TIMER_QUEUE_H_
#define AGENTSTREAM_GATEWAY_TIMER_QUEUE_H_

#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace agentstream::gateway {

// Thread-safe. Callbacks run on the queue's thread, in time order, outside
// its lock; they must not block (they may Schedule()). The clock is real
// time: what is timed here is a socket's life, not logic under test.
class TimerQueue final {
 public:
  TimerQueue();
  ~TimerQueue();  // Stop().
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` at `at` or soon after (at once if `at` has passed).
  // Dropped after Stop().
  void Schedule(absl::Time at, std::function<void()> callback);
  // Drops what is scheduled and joins the thread. Idempotent.
  void Stop();
  size_t size() const;

 private:
  void Loop();

  mutable absl::Mutex mu_;
  std::multimap<absl::Time, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_TIMER_QUEUE_H_
