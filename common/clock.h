// Time as an injected dependency: everything that decides deadlines, TTLs or
// heartbeats takes a Clock, so unit tests use FakeClock and never sleep.
#ifndef AGENTSTREAM_COMMON_CLOCK_H_
#define AGENTSTREAM_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace agentstream {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Nanoseconds since the Unix epoch, as carried in Update.emitted_at.
  int64_t NowNanos() const { return absl::ToUnixNanos(Now()); }

  // The process-wide real clock. Never null, never destroyed.
  static Clock* Real();
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_CLOCK_H_
