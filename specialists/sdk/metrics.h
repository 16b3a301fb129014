// The metrics of one specialist process, on the process's registry
// (common/metrics/metrics.h), rendered in the Prometheus text format (served
// by the SDK at GET /metrics on --metrics-port). Every sample carries
// specialist="X"; docs/METRICS.md lists them all:
//
//   agentstream_specialist_analyses_started_total
//   agentstream_specialist_analyses_completed_total{outcome="ok|cancelled|failed"}
//   agentstream_specialist_analyses_active
//   agentstream_specialist_analyses_waiting
//   agentstream_specialist_updates_sent_total
//   agentstream_specialist_update_bytes_sent_total
//   agentstream_specialist_queued_updates
//   agentstream_specialist_hop_emit_to_write_seconds (histogram)
//   agentstream_specialist_last_cancel_stop_ms
//       time from a cancellation being requested to Analyze() returning, for
//       the most recent cancelled analysis (-1 before any).
//
// Thread-safe (prometheus-cpp's atomics).
#ifndef AGENTSTREAM_SPECIALISTS_SDK_METRICS_H_
#define AGENTSTREAM_SPECIALISTS_SDK_METRICS_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "common/metrics/metrics.h"

namespace agentstream::specialists {

enum class AnalysisOutcome { kOk, kCancelled, kFailed };

class SpecialistMetrics final {
 public:
  explicit SpecialistMetrics(const std::string& specialist);

  void AnalysisStarted();
  void AnalysisEnded(AnalysisOutcome outcome);
  void UpdateSent() { UpdatesSent(1); }
  // Written to the client (a write completed): `n` updates of `bytes`
  // serialized bytes.
  void UpdatesSent(int64_t n, int64_t bytes = 0);
  void CancelStopped(int64_t stop_ms);
  // The updates queued across all stream queues changed by `delta`.
  void QueuedChanged(int64_t delta) {
    queued_.fetch_add(delta, std::memory_order_relaxed);
  }
  // Blocking analyses waiting for a pool thread (set before rendering).
  void SetAnalysesWaiting(int64_t n) { waiting_.Set(static_cast<double>(n)); }
  // The hop emitted_at -> handed to gRPC for writing (seconds; HopBatch).
  metrics::HopHistogram& hop_to_write() { return hop_to_write_; }

  int64_t started() const { return Int(started_); }
  int64_t active() const { return Int(active_); }
  int64_t completed(AnalysisOutcome outcome) const;
  int64_t updates_sent() const { return Int(updates_sent_); }
  int64_t queued_updates() const {
    return queued_.load(std::memory_order_relaxed);
  }
  int64_t last_cancel_stop_ms() const { return Int(last_cancel_stop_ms_); }

  std::string RenderPrometheus() const;

 private:
  template <typename T>
  static int64_t Int(const T& metric) {
    return static_cast<int64_t>(metric.Value());
  }

  metrics::Registry registry_;
  prometheus::Counter& started_;
  prometheus::Family<prometheus::Counter>& completed_;
  prometheus::Counter& ok_;
  prometheus::Counter& cancelled_;
  prometheus::Counter& failed_;
  prometheus::Gauge& active_;
  prometheus::Gauge& waiting_;
  prometheus::Counter& updates_sent_;
  prometheus::Counter& bytes_sent_;
  std::atomic<int64_t> queued_{0};  // Lock-free: changed on every update.
  metrics::HopHistogram& hop_to_write_;
  prometheus::Gauge& last_cancel_stop_ms_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_METRICS_H_
