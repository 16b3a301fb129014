// The memory all runs of one orchestrator hold, against one bound
// (--max-total-log-bytes; the rules that keep it are RunManager's, see
// run_manager.h).
//
// What is charged, for as long as it is alive: every log entry (its
// serialized update, its specialist name and a fixed estimate of its
// bookkeeping, LogEntry::Charge) and every run's own bookkeeping (question,
// plan, options; Run's constructor). A charge is released when the object is
// destroyed, not when a log lets go of it, so an entry a follower is still
// writing counts until the write is done.
//
// Relief: RunLog::Notify (called after appends, outside every lock) calls
// RelieveIfOver(), which runs the handler the RunManager installed when the
// bytes are over the limit; the handler frees down to relief_target(), a
// sixteenth of the limit below it, so that relief runs once per sixteenth of
// the limit appended, not on every append. What it cannot free (entries still
// being written) is not tried again until another sixteenth of the limit has
// been charged.
//
// Thread-safe. Shared (shared_ptr) by the manager, its runs and their log
// entries, any of which may outlive the others.
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_MEMORY_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_MEMORY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "orchestrator/metrics.h"

namespace agentstream::orchestrator {

class RunMemory final {
 public:
  // `limit` 0: unbounded (never relieved). `metrics` may be null; it must
  // outlive every charge.
  RunMemory(size_t limit, OrchestratorMetrics* metrics);

  RunMemory(const RunMemory&) = delete;
  RunMemory& operator=(const RunMemory&) = delete;

  void Charge(size_t n);
  void Release(size_t n);

  // One sixteenth of the limit: how far below it a relief frees, and how
  // far above what a relief left the next one starts.
  static constexpr int64_t kReliefDivisor = 16;

  size_t bytes() const;
  // INT64_MAX when unbounded.
  size_t limit() const { return static_cast<size_t>(limit_); }
  // What a relief frees down to: the limit less a sixteenth.
  size_t relief_target() const {
    return static_cast<size_t>(limit_ - limit_ / kReliefDivisor);
  }

  // What RelieveIfOver runs (null: nothing). The handler must not call
  // SetReliefHandler or RelieveIfOver.
  void SetReliefHandler(std::function<void()> handler);
  // Runs the relief handler if the bytes are over the limit (one relief at a
  // time). Call without holding any lock.
  void RelieveIfOver();

 private:
  const int64_t limit_;
  OrchestratorMetrics* const metrics_;
  std::atomic<int64_t> bytes_{0};
  // Relief runs above this: the limit, or, after a relief that left the
  // bytes over it, those bytes plus a sixteenth of the limit.
  std::atomic<int64_t> relieve_above_;
  absl::Mutex mu_;
  std::function<void()> handler_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_MEMORY_H_
