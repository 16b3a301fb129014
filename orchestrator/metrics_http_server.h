// A tiny HTTP endpoint serving `GET /metrics` (Prometheus text) and
// `GET /healthz`, with cpp-httplib on its own thread.
#ifndef AGENTSTREAM_ORCHESTRATOR_METRICS_HTTP_SERVER_H_
#define AGENTSTREAM_ORCHESTRATOR_METRICS_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace agentstream::orchestrator {

class MetricsHttpServer final {
 public:
  // Binds host:port (0: ephemeral) and serves `render()` on /metrics.
  // kUnavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, std::function<std::string()> render);
  ~MetricsHttpServer();

  int port() const { return port_; }
  void Stop();

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_METRICS_HTTP_SERVER_H_
