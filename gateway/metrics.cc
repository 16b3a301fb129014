#include "gateway/metrics.h"

#include "absl/strings/str_cat.h"

namespace agentstream::gateway {
namespace {

void AppendMetric(std::string* out, const char* name, const char* type,
                  const char* help, int64_t value) {
  absl::StrAppend(out, "# HELP agentstream_gateway_", name, " ", help, "\n",
                  "# TYPE agentstream_gateway_", name, " ", type, "\n",
                  "agentstream_gateway_", name, " ", value, "\n");
}

}  // namespace

void GatewayMetrics::CountHttpRequest(int code) {
  absl::MutexLock lock(&mu_);
  ++http_requests_[code];
}

int64_t GatewayMetrics::HttpRequests(int code) const {
  absl::MutexLock lock(&mu_);
  auto it = http_requests_.find(code);
  return it == http_requests_.end() ? 0 : it->second;
}

std::string GatewayMetrics::RenderPrometheus(
    const http::HttpServerStats* http) const {
  std::string out;
  AppendMetric(&out, "streams_open", "gauge", "SSE streams open now.",
               streams_open.load());
  AppendMetric(&out, "streams_total", "counter", "SSE streams started.",
               streams_total.load());
  AppendMetric(&out, "events_sent_total", "counter",
               "SSE events written (heartbeat comments excluded).",
               events_sent_total.load());
  AppendMetric(&out, "stream_rejections_total", "counter",
               "Streams refused with 503 because --max-streams were open.",
               stream_rejections_total.load());
  AppendMetric(&out, "client_disconnects_total", "counter",
               "Streams ended because the client went away.",
               client_disconnects_total.load());
  AppendMetric(&out, "resumes_total", "counter",
               "Streams that resumed a run from a resume point "
               "(Last-Event-ID, last_event_id= or after=), answered 200 or "
               "204.",
               resumes_total.load());
  AppendMetric(&out, "gaps_total", "counter",
               "`gap` errors sent: the resume point was no longer in the "
               "run's log.",
               gaps_total.load());
  AppendMetric(&out, "slow_consumer_cutoffs_total", "counter",
               "Streams the orchestrator cut off for lagging (slow_consumer).",
               slow_consumer_cutoffs_total.load());
  AppendMetric(&out, "upstream_failures_total", "counter",
               "Streams whose orchestrator call was lost mid-stream.",
               upstream_failures_total.load());
  AppendMetric(&out, "cancels_total", "counter",
               "DELETE /api/runs/{id} accepted (202).", cancels_total.load());
  AppendMetric(&out, "heartbeats_sent_total", "counter",
               "Heartbeats written (comments or events).",
               heartbeats_sent_total.load());
  AppendMetric(&out, "client_stream_refusals_total", "counter",
               "Streams refused with 429: the client held its bound of open "
               "streams (--max-streams-per-client).",
               client_stream_refusals_total.load());
  AppendMetric(&out, "client_run_rate_refusals_total", "counter",
               "Runs refused with 429: the client started runs faster than "
               "--run-starts-per-second allows.",
               client_run_rate_refusals_total.load());
  if (http != nullptr) {
    AppendMetric(&out, "connections_open", "gauge",
                 "HTTP connections open now.", http->connections_open);
    AppendMetric(&out, "connections_total", "counter",
                 "HTTP connections accepted.", http->connections_total);
    AppendMetric(&out, "connections_refused_total", "counter",
                 "Connections closed at once: --max-connections or "
                 "--max-connections-per-client reached, or out of files.",
                 http->connections_refused);
    AppendMetric(&out, "header_timeouts_total", "counter",
                 "Requests whose head did not arrive within "
                 "--header-timeout-ms (408).",
                 http->header_timeouts);
    AppendMetric(&out, "body_timeouts_total", "counter",
                 "Requests whose body did not arrive within "
                 "--body-timeout-ms (408).",
                 http->body_timeouts);
    AppendMetric(&out, "write_timeouts_total", "counter",
                 "Connections closed because the client read nothing for "
                 "--write-timeout-ms.",
                 http->write_timeouts);
    AppendMetric(&out, "malformed_requests_total", "counter",
                 "Requests refused by the HTTP parser (400, 413, 414, 431, "
                 "501, 505).",
                 http->parse_errors);
    AppendMetric(&out, "handler_threads", "gauge",
                 "Threads running request handlers (streams hold one each).",
                 http->handler_threads);
  }
  absl::StrAppend(&out,
                  "# HELP agentstream_gateway_http_requests_total HTTP "
                  "responses by status code.\n"
                  "# TYPE agentstream_gateway_http_requests_total counter\n");
  absl::MutexLock lock(&mu_);
  for (const auto& [code, count] : http_requests_) {
    absl::StrAppend(&out, "agentstream_gateway_http_requests_total{code=\"",
                    code, "\"} ", count, "\n");
  }
  return out;
}

}  // namespace agentstream::gateway
