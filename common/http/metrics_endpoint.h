// A process's own small HTTP endpoint: `GET /metrics` (Prometheus text from
// `render`) and `GET /healthz`, on agentstream's HTTP server (server.h) with
// its bounds, so that no request to a metrics port can crash the process
// either. Used by the orchestrator and every specialist.
//
// Thread-safe. Stop() (or the destructor) closes it.
#ifndef AGENTSTREAM_COMMON_HTTP_METRICS_ENDPOINT_H_
#define AGENTSTREAM_COMMON_HTTP_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http/server.h"

namespace agentstream::http {

class MetricsEndpoint final {
 public:
  // Binds host:port (0: an ephemeral port) and serves. kUnavailable when
  // the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& host, int port, std::function<std::string()> render);
  ~MetricsEndpoint();

  int port() const { return server_->port(); }
  void Stop();

 private:
  explicit MetricsEndpoint(std::unique_ptr<HttpServer> server)
      : server_(std::move(server)) {}
  const std::unique_ptr<HttpServer> server_;
};

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_METRICS_ENDPOINT_H_
