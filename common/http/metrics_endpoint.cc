#include "common/http/metrics_endpoint.h"

#include <utility>

namespace agentstream::http {

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& host, int port, std::function<std::string()> render) {
  HttpServerOptions options;
  options.host = host;
  options.port = port;
  options.listen_backlog = 128;
  options.limits.max_request_line_bytes = 8 * 1024;
  options.limits.max_header_bytes = 16 * 1024;
  options.limits.max_body_bytes = 0;
  options.max_connections = 256;
  options.max_connections_per_address = 0;
  options.max_handler_threads = 2;
  auto server = std::make_unique<HttpServer>(std::move(options));
  // Both answers are built in memory: served on the event loop.
  const HttpServer::RouteOptions kInline{.inline_handler = true,
                                         .serves_head = true};
  server->Route(
      "GET", "/metrics",
      [render = std::move(render)](std::shared_ptr<Exchange> ex) {
        HttpResponse r;
        r.headers.Add("Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
        r.headers.Add("Cache-Control", "no-store");
        r.body = render();
        ex->Respond(std::move(r));
      },
      kInline);
  server->Route(
      "GET", "/healthz",
      [](std::shared_ptr<Exchange> ex) {
        HttpResponse r;
        r.headers.Add("Content-Type", "text/plain");
        r.body = "ok\n";
        ex->Respond(std::move(r));
      },
      kInline);
  if (absl::Status s = server->Start(); !s.ok()) return s;
  return std::unique_ptr<MetricsEndpoint>(
      new MetricsEndpoint(std::move(server)));
}

MetricsEndpoint::~MetricsEndpoint() { Stop(); }

void MetricsEndpoint::Stop() { server_->Stop(); }

}  // namespace agentstream::http
