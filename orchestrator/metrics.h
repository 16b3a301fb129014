// The orchestrator's counters and gauges, rendered as Prometheus text.
//
// Pure bookkeeping (the HTTP endpoint is metrics_http_server.h). Thread-safe;
// every method is cheap (one mutex, one map lookup).
#ifndef AGENTSTREAM_ORCHESTRATOR_METRICS_H_
#define AGENTSTREAM_ORCHESTRATOR_METRICS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::orchestrator {

class OrchestratorMetrics final {
 public:
  void RunStarted();
  // `outcome` is a lower-case outcome name ("ok", "partial", "cancelled").
  void RunCompleted(const std::string& outcome);
  void UpdatesEmitted(int64_t n);
  void SpecialistCall(const std::string& specialist,
                      const std::string& instance);
  void SpecialistError(const std::string& specialist);
  void FollowerAdded();
  void FollowerRemoved();

  // Prometheus text exposition format, version 0.0.4.
  std::string Render() const;

  int64_t runs_active() const;
  int64_t followers_active() const;
  int64_t updates_total() const;

 private:
  mutable absl::Mutex mu_;
  int64_t runs_started_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t runs_active_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t updates_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t followers_active_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> runs_completed_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, int64_t> calls_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_METRICS_H_
