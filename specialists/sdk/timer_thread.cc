#include "specialists/sdk/timer_thread.h"

namespace agentstream::specialists {

TimerThread::TimerThread(const Clock* clock)
    : clock_(clock), thread_([this] { Loop(); }) {}

TimerThread::~TimerThread() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

TimerThread::Id TimerThread::Schedule(absl::Time when,
                                      std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  const Id id{when, next_seq_++};
  // A new earliest timer wakes the thread (unlocking re-evaluates its wait).
  if (timers_.empty() || id < timers_.begin()->first) ++wakes_;
  timers_.emplace(id, std::move(callback));
  return id;
}

bool TimerThread::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  return timers_.erase(id) > 0;
}

void TimerThread::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakes_;
}

size_t TimerThread::pending() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

void TimerThread::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    const absl::Time now = clock_->Now();
    if (!timers_.empty() && timers_.begin()->first.first <= now) {
      auto node = timers_.extract(timers_.begin());
      mu_.Unlock();
      node.mapped()();
      node.mapped() = nullptr;  // Whatever it holds goes before relocking.
      mu_.Lock();
      continue;
    }
    const uint64_t wakes = wakes_;
    auto woken = [this, wakes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || wakes_ != wakes;
    };
    const absl::Duration wait =
        timers_.empty() ? absl::Hours(1) : timers_.begin()->first.first - now;
    mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
  }
}

}  // namespace agentstream::specialists
