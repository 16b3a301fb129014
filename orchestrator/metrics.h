// The orchestrator's counters and gauges, rendered as Prometheus text; every
// name is prefixed `agentstream_orchestrator_`.
//
// Pure bookkeeping (the HTTP endpoint is metrics_http_server.h). Thread-safe;
// every method is cheap (one mutex, at most one map lookup, or one atomic)
// and takes no other lock, so it may be called with any lock of the caller
// held.
#ifndef AGENTSTREAM_ORCHESTRATOR_METRICS_H_
#define AGENTSTREAM_ORCHESTRATOR_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::orchestrator {

inline constexpr char kMetricsPrefix[] = "agentstream_orchestrator_";

class OrchestratorMetrics final {
 public:
  OrchestratorMetrics();

  void RunStarted();
  // `outcome` is a lower-case outcome name ("ok", "partial", "cancelled").
  void RunCompleted(const std::string& outcome);
  // `reason`: "request", "disconnect", "grace" or "shutdown".
  void RunCancelled(const std::string& reason);
  void UpdatesEmitted(int64_t n);
  void SpecialistCall(const std::string& specialist,
                      const std::string& instance);
  void SpecialistError(const std::string& specialist);
  void SpecialistRetry(const std::string& specialist);
  // `action`: "continuing" or "abandoned".
  void SpecialistTimeout(const std::string& specialist,
                         const std::string& action);
  void FollowerAdded();
  void FollowerRemoved();
  // An Attach call; a resume when it asks for updates after a seq > 0.
  void Attached(bool resume);
  void Gap();
  void UpdatesCoalesced(int64_t n);
  void SlowConsumerCutOff();
  // The bytes charged to the runs' RunMemory changed by `delta` (lock-free:
  // called on every log entry's creation and destruction).
  void LogBytesChanged(int64_t delta);
  // A new run refused at capacity; `reason`: "max_runs" or "memory".
  void RunRefused(const std::string& reason);
  // Ended runs' logs dropped before their TTL to make room.
  void LogsDropped(int64_t n);
  // Updates dropped from live runs' logs to stay within the total bound.
  void UpdatesTrimmed(int64_t n);

  // Prometheus text exposition format, version 0.0.4.
  std::string Render() const;

  int64_t runs_active() const;
  int64_t followers_active() const;
  int64_t updates_total() const;
  int64_t runs_cancelled(const std::string& reason) const;
  int64_t gaps() const;
  int64_t coalesced() const;
  int64_t slow_consumer_cutoffs() const;
  int64_t specialist_retries(const std::string& specialist) const;
  int64_t log_bytes() const;
  int64_t runs_refused(const std::string& reason) const;
  int64_t logs_dropped() const;
  int64_t updates_trimmed() const;

 private:
  std::atomic<int64_t> log_bytes_{0};
  mutable absl::Mutex mu_;
  int64_t runs_started_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t runs_active_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t updates_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t followers_active_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t attaches_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t resumes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t gaps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t coalesced_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cutoffs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t logs_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t updates_trimmed_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> runs_refused_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> runs_completed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> runs_cancelled_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, int64_t> calls_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> retries_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, int64_t> timeouts_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_METRICS_H_
