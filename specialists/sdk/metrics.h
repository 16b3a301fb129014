// Counters of one specialist process, rendered in the Prometheus text format
// (served by the SDK at GET /metrics on --metrics-port).
//
//   agentstream_specialist_analyses_started_total{specialist="X"}
//   agentstream_specialist_analyses_completed_total{specialist="X",outcome="ok|cancelled|failed"}
//   agentstream_specialist_analyses_active{specialist="X"}
//   agentstream_specialist_updates_sent_total{specialist="X"}
//   agentstream_specialist_last_cancel_stop_ms{specialist="X"}
//       time from a cancellation being requested to Analyze() returning, for
//       the most recent cancelled analysis (-1 before any).
//
// Thread-safe (atomics).
#ifndef AGENTSTREAM_SPECIALISTS_SDK_METRICS_H_
#define AGENTSTREAM_SPECIALISTS_SDK_METRICS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

namespace agentstream::specialists {

enum class AnalysisOutcome { kOk, kCancelled, kFailed };

class SpecialistMetrics final {
 public:
  explicit SpecialistMetrics(std::string specialist)
      : specialist_(std::move(specialist)) {}

  void AnalysisStarted();
  void AnalysisEnded(AnalysisOutcome outcome);
  void UpdateSent() { updates_sent_.fetch_add(1); }
  void UpdatesSent(int64_t n) { updates_sent_.fetch_add(n); }
  void CancelStopped(int64_t stop_ms);

  int64_t started() const { return started_.load(); }
  int64_t active() const { return active_.load(); }
  int64_t completed(AnalysisOutcome outcome) const;
  int64_t updates_sent() const { return updates_sent_.load(); }
  int64_t last_cancel_stop_ms() const { return last_cancel_stop_ms_.load(); }

  std::string RenderPrometheus() const;

 private:
  const std::string specialist_;
  std::atomic<int64_t> started_{0};
  std::atomic<int64_t> active_{0};
  std::atomic<int64_t> ok_{0};
  std::atomic<int64_t> cancelled_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> updates_sent_{0};
  std::atomic<int64_t> last_cancel_stop_ms_{-1};
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_METRICS_H_
