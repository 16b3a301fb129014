// The gateway's counters and their Prometheus text form (GET /metrics).
// Thread-safe: lock-free counters, and a mutex for the per-code map.
#ifndef AGENTSTREAM_GATEWAY_METRICS_H_
#define AGENTSTREAM_GATEWAY_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http/server.h"

namespace agentstream::gateway {

class GatewayMetrics final {
 public:
  std::atomic<int64_t> streams_open{0};
  std::atomic<int64_t> streams_total{0};
  std::atomic<int64_t> events_sent_total{0};
  std::atomic<int64_t> stream_rejections_total{0};
  std::atomic<int64_t> client_disconnects_total{0};
  // Issue 4: resume, gaps, cut-offs, failures, cancels, heartbeats.
  std::atomic<int64_t> resumes_total{0};
  std::atomic<int64_t> gaps_total{0};
  std::atomic<int64_t> slow_consumer_cutoffs_total{0};
  std::atomic<int64_t> upstream_failures_total{0};
  std::atomic<int64_t> cancels_total{0};
  std::atomic<int64_t> heartbeats_sent_total{0};
  // Issue 10: per-client bounds (429).
  std::atomic<int64_t> client_stream_refusals_total{0};
  std::atomic<int64_t> client_run_rate_refusals_total{0};

  void CountHttpRequest(int code);
  int64_t HttpRequests(int code) const;

  // Prometheus text exposition format 0.0.4; every name is prefixed with
  // `agentstream_gateway_`. `http` adds the HTTP server's connection
  // figures when given.
  std::string RenderPrometheus(
      const http::HttpServerStats* http = nullptr) const;

 private:
  mutable absl::Mutex mu_;
  std::map<int, int64_t> http_requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_METRICS_H_
