#include "gateway/timer_queue.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"

namespace agentstream::gateway {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Schedule(absl::Time at, std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  timers_.emplace(at, std::move(callback));
}

void TimerQueue::Stop() {
  std::multimap<absl::Time, std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    dropped.swap(timers_);
  }
  if (thread_.joinable()) thread_.join();
  // `dropped` is destroyed here, outside the lock: callbacks may own things
  // whose destructors take other locks.
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

void TimerQueue::Loop() {
  std::vector<std::function<void()>> due;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Wakes for Stop(), for a new earliest timer, or at the earliest one.
      const absl::Time earliest =
          timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first;
      auto ready = [this, earliest]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ ||
               (!timers_.empty() && timers_.begin()->first < earliest);
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), earliest);
      if (stopping_) return;
      const absl::Time now = absl::Now();
      while (!timers_.empty() && timers_.begin()->first <= now) {
        due.push_back(std::move(timers_.begin()->second));
        timers_.erase(timers_.begin());
      }
    }
    for (auto& callback : due) callback();
    due.clear();
  }
}

}  // namespace agentstream::gateway
