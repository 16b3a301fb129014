// The orchestrator's counters, gauges and hop histograms on the process's
// registry (common/metrics/metrics.h), rendered as Prometheus text; every
// name is prefixed `agentstream_orchestrator_` and listed in
// docs/METRICS.md.
//
// Pure bookkeeping (the HTTP endpoint is common/http/metrics_endpoint.h).
// Thread-safe; every method is cheap (atomics, or at most one lookup of a
// labelled family under prometheus-cpp's own mutex) and takes no lock of
// the caller's, so it may be called with any lock of the caller held.
#ifndef AGENTSTREAM_ORCHESTRATOR_METRICS_H_
#define AGENTSTREAM_ORCHESTRATOR_METRICS_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "common/metrics/metrics.h"

namespace agentstream::orchestrator {

inline constexpr char kMetricsPrefix[] = "agentstream_orchestrator_";

class OrchestratorMetrics final {
 public:
  OrchestratorMetrics();

  void RunStarted();
  // Run store (docs/SCALING.md): a run continued here after its owner was
  // lost; a run stopped here because another replica took it over.
  void RunTakenOver();
  void RunLost();
  // The store's connection went up or down; a command that failed; updates
  // the store acknowledged.
  void StoreUp(bool up);
  void StoreError();
  void StoreAppended(int64_t n);
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
  // An Attach of a run another replica holds, served from the run store.
  void AttachedThroughStore();
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

  // Issue 11: where the time goes, and the flow in and out.
  // Updates (and their serialized bytes) received from specialists.
  void SpecialistUpdatesReceived(int64_t updates, int64_t bytes);
  // Updates (and bytes) handed to gRPC for writing to followers (the
  // gateway's Run and Attach streams).
  void UpdatesSent(int64_t updates, int64_t bytes);
  // Hop histograms (seconds; HopBatch): emitted_at -> received from the
  // specialist, and emitted_at -> handed to gRPC for a follower.
  metrics::HopHistogram& hop_to_receipt() { return hop_to_receipt_; }
  metrics::HopHistogram& hop_to_write() { return hop_to_write_; }

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
  using CounterFamily = prometheus::Family<prometheus::Counter>;
  static int64_t Get(CounterFamily& family, const prometheus::Labels& labels);

  metrics::Registry registry_;
  std::atomic<int64_t> log_bytes_{0};
  prometheus::Counter& runs_started_;
  prometheus::Counter& runs_taken_over_;
  prometheus::Counter& runs_lost_;
  prometheus::Gauge& store_up_;
  prometheus::Counter& store_errors_;
  prometheus::Counter& store_appended_;
  prometheus::Gauge& runs_active_;
  CounterFamily& runs_completed_;
  CounterFamily& runs_cancelled_;
  prometheus::Counter& updates_;
  prometheus::Gauge& followers_active_;
  prometheus::Counter& attaches_;
  prometheus::Counter& resumes_;
  prometheus::Counter& store_attaches_;
  prometheus::Counter& gaps_;
  prometheus::Counter& coalesced_;
  prometheus::Counter& cutoffs_;
  CounterFamily& runs_refused_;
  prometheus::Counter& logs_dropped_;
  prometheus::Counter& updates_trimmed_;
  CounterFamily& calls_;
  CounterFamily& errors_;
  CounterFamily& retries_;
  CounterFamily& timeouts_;
  prometheus::Counter& received_updates_;
  prometheus::Counter& received_bytes_;
  prometheus::Counter& sent_updates_;
  prometheus::Counter& sent_bytes_;
  metrics::HopHistogram& hop_to_receipt_;
  metrics::HopHistogram& hop_to_write_;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_METRICS_H_
