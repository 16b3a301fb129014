// One thread that runs callbacks when they are due: the SDK's timers for
// asynchronous analyses (async_specialist.h), so an analysis that waits holds
// an entry in a map, not a thread. One per server.
//
// Callbacks run on the timer thread, one at a time, in due order (ties in
// scheduling order), and must not block. Thread-safe.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_TIMER_THREAD_H_
#define AGENTSTREAM_SPECIALISTS_SDK_TIMER_THREAD_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace agentstream::specialists {

class TimerThread final {
 public:
  using Id = std::pair<absl::Time, uint64_t>;

  // `clock` (which must outlive this) says when a timer is due.
  explicit TimerThread(const Clock* clock = Clock::Real());
  // Stops the thread; timers not yet run are dropped without running.
  ~TimerThread();
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  // Runs `callback` once `clock` reads `when` or later.
  Id Schedule(absl::Time when, std::function<void()> callback);
  // True when the timer was removed before it ran: its callback never runs.
  // False when it has run or is running (or never existed).
  bool Cancel(Id id);
  // Makes the thread read the clock again now (for a FakeClock that moved).
  void Wake();
  size_t pending() const;

 private:
  void Loop();

  const Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::btree_map<Id, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wakes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_TIMER_THREAD_H_
