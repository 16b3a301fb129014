// Counts a client's gRPC calls in flight, so that the client (and its stub)
// outlives every reactor: gRPC calls OnDone after a cancel, and the stub must
// still exist then.
#ifndef AGENTSTREAM_GATEWAY_CALL_COUNTER_H_
#define AGENTSTREAM_GATEWAY_CALL_COUNTER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace agentstream::gateway {

// Thread-safe.
class CallCounter {
 public:
  // Counts one call for its life.
  class Token {
   public:
    explicit Token(CallCounter& counter) : counter_(counter) {
      counter_.Started();
    }
    ~Token() { counter_.Ended(); }
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;

   private:
    CallCounter& counter_;
  };

  void Started() {
    absl::MutexLock lock(&mu_);
    ++calls_;
  }
  void Ended() {
    absl::MutexLock lock(&mu_);
    --calls_;
  }
  // True when every call ended within `timeout`.
  bool WaitAllEnded(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto none = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
  }

 private:
  absl::Mutex mu_;
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_CALL_COUNTER_H_
