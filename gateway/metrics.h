// The gateway's metrics and their Prometheus text form (GET /metrics), on
// the process's registry (common/metrics/metrics.h); every name is prefixed
// with `agentstream_gateway_` and listed in docs/METRICS.md.
//
// Thread-safe. The counters below are lock-free atomics that the request
// and stream code bumps directly; they are read when rendered.
#ifndef AGENTSTREAM_GATEWAY_METRICS_H_
#define AGENTSTREAM_GATEWAY_METRICS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http/server.h"
#include "common/metrics/metrics.h"

namespace agentstream::gateway {

// What the gateway's orchestrator client counts of the updates it receives
// (gateway/orchestrator_client.h): kept by the client, shared with the
// metrics, which read it when rendered. Lock-free.
struct UpstreamCounters {
  std::atomic<int64_t> updates_received{0};
  std::atomic<int64_t> bytes_received{0};  // Serialized Update bytes.
  // Received and not yet taken by their stream, across all streams.
  std::atomic<int64_t> queued_updates{0};
  std::atomic<int64_t> queued_bytes{0};
};

class GatewayMetrics final {
 public:
  GatewayMetrics();

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
  // Issue 11: SSE bytes handed to the HTTP server's write.
  std::atomic<int64_t> sse_bytes_sent_total{0};

  void CountHttpRequest(int code);
  int64_t HttpRequests(int code) const;

  // The hop emitted_at -> handed to the HTTP server's write (seconds), for
  // HopBatch (common/metrics/metrics.h).
  metrics::HopHistogram& hop_to_write() { return hop_to_write_; }

  // Where updates_received_total and the queue gauges are read from (the
  // orchestrator client's; null: zeros).
  void SetUpstream(std::shared_ptr<const UpstreamCounters> upstream);

  // Prometheus text exposition format 0.0.4. `http` adds the HTTP server's
  // connection figures when given.
  std::string RenderPrometheus(
      const http::HttpServerStats* http = nullptr) const;

 private:
  int64_t Upstream(std::atomic<int64_t> UpstreamCounters::*field) const;

  metrics::Registry registry_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  metrics::HopHistogram& hop_to_write_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const UpstreamCounters> upstream_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_METRICS_H_
