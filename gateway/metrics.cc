#include "gateway/metrics.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace agentstream::gateway {
namespace {

using prometheus::MetricType;

}  // namespace

GatewayMetrics::GatewayMetrics()
    : registry_("agentstream_gateway_"),
      http_requests_(registry_.Counter("http_requests_total",
                                       "HTTP responses by status code.")),
      hop_to_write_(
          registry_.Hop("hop_emit_to_write_seconds",
                        "Seconds from an update's emitted_at (its emitter's "
                        "clock) to its SSE event being handed to the HTTP "
                        "server's write.")) {
  auto counter = [this](const char* name, const char* help,
                        const std::atomic<int64_t>& value) {
    registry_.CounterFn(name, help, [&value] {
      return static_cast<double>(value.load(std::memory_order_relaxed));
    });
  };
  registry_.GaugeFn("streams_open", "SSE streams open now.", [this] {
    return static_cast<double>(streams_open.load(std::memory_order_relaxed));
  });
  counter("streams_total", "SSE streams started.", streams_total);
  counter("events_sent_total",
          "SSE events written (heartbeat comments excluded).",
          events_sent_total);
  counter("stream_rejections_total",
          "Streams refused with 503 because --max-streams were open.",
          stream_rejections_total);
  counter("client_disconnects_total",
          "Streams ended because the client went away.",
          client_disconnects_total);
  counter("resumes_total",
          "Streams that resumed a run from a resume point (Last-Event-ID, "
          "last_event_id= or after=), answered 200 or 204.",
          resumes_total);
  counter("gaps_total",
          "`gap` errors sent: the resume point was no longer in the run's "
          "log.",
          gaps_total);
  counter("slow_consumer_cutoffs_total",
          "Streams the orchestrator cut off for lagging (slow_consumer).",
          slow_consumer_cutoffs_total);
  counter("upstream_failures_total",
          "Streams whose orchestrator call was lost mid-stream.",
          upstream_failures_total);
  counter("cancels_total", "DELETE /api/runs/{id} accepted (202).",
          cancels_total);
  counter("heartbeats_sent_total", "Heartbeats written (comments or events).",
          heartbeats_sent_total);
  counter("client_stream_refusals_total",
          "Streams refused with 429: the client held its bound of open "
          "streams (--max-streams-per-client).",
          client_stream_refusals_total);
  counter("client_run_rate_refusals_total",
          "Runs refused with 429: the client started runs faster than "
          "--run-starts-per-second allows.",
          client_run_rate_refusals_total);
  counter("sse_bytes_sent_total",
          "SSE bytes (events, heartbeats, the stream's opening and end) "
          "handed to the HTTP server's write.",
          sse_bytes_sent_total);
  registry_.CounterFn(
      "updates_received_total",
      "Updates received from the orchestrator (Run, Attach and their "
      "batched forms).",
      [this] { return Upstream(&UpstreamCounters::updates_received); });
  registry_.CounterFn(
      "update_bytes_received_total",
      "Serialized bytes of the updates received from the orchestrator.",
      [this] { return Upstream(&UpstreamCounters::bytes_received); });
  registry_.GaugeFn(
      "queued_updates",
      "Updates received from the orchestrator that their stream has not "
      "taken yet, across all streams (each bounded by --stream-queue).",
      [this] { return Upstream(&UpstreamCounters::queued_updates); });
  registry_.GaugeFn(
      "queued_bytes",
      "Serialized bytes of those queued updates (each stream bounded by "
      "--stream-queue-kib).",
      [this] { return Upstream(&UpstreamCounters::queued_bytes); });
}

void GatewayMetrics::SetUpstream(
    std::shared_ptr<const UpstreamCounters> upstream) {
  absl::MutexLock lock(&mu_);
  upstream_ = std::move(upstream);
}

int64_t GatewayMetrics::Upstream(
    std::atomic<int64_t> UpstreamCounters::*field) const {
  absl::MutexLock lock(&mu_);
  if (upstream_ == nullptr) return 0;
  return ((*upstream_).*field).load(std::memory_order_relaxed);
}

void GatewayMetrics::CountHttpRequest(int code) {
  http_requests_.Add({{"code", absl::StrCat(code)}}).Increment();
}

int64_t GatewayMetrics::HttpRequests(int code) const {
  const prometheus::Labels labels{{"code", absl::StrCat(code)}};
  if (!http_requests_.Has(labels)) return 0;
  // Add() of an existing label set returns it; nothing is created.
  return static_cast<int64_t>(http_requests_.Add(labels).Value());
}

std::string GatewayMetrics::RenderPrometheus(
    const http::HttpServerStats* http) const {
  std::vector<metrics::Value> extra;
  if (http != nullptr) {
    auto add = [&extra](const char* name, MetricType type, const char* help,
                        int64_t value) {
      extra.push_back({name, help, type, static_cast<double>(value)});
    };
    add("connections_open", MetricType::Gauge, "HTTP connections open now.",
        http->connections_open);
    add("connections_total", MetricType::Counter, "HTTP connections accepted.",
        http->connections_total);
    add("connections_refused_total", MetricType::Counter,
        "Connections closed at once: --max-connections or "
        "--max-connections-per-client reached, or out of files.",
        http->connections_refused);
    add("header_timeouts_total", MetricType::Counter,
        "Requests whose head did not arrive within --header-timeout-ms (408).",
        http->header_timeouts);
    add("body_timeouts_total", MetricType::Counter,
        "Requests whose body did not arrive within --body-timeout-ms (408).",
        http->body_timeouts);
    add("write_timeouts_total", MetricType::Counter,
        "Connections closed because the client read nothing for "
        "--write-timeout-ms.",
        http->write_timeouts);
    add("malformed_requests_total", MetricType::Counter,
        "Requests refused by the HTTP parser (400, 413, 414, 431, 501, 505).",
        http->parse_errors);
    add("handler_threads", MetricType::Gauge,
        "Threads running request handlers (streams hold one each).",
        http->handler_threads);
  }
  return registry_.Render(extra);
}

}  // namespace agentstream::gateway
