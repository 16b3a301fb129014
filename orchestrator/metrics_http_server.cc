#include "orchestrator/metrics_http_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace agentstream::orchestrator {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host, int port, std::function<std::string()> render) {
  std::unique_ptr<MetricsHttpServer> self(new MetricsHttpServer());
  self->server_ = std::make_unique<httplib::Server>();
  self->server_->Get(
      "/metrics", [render](const httplib::Request&, httplib::Response& res) {
        res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
      });
  self->server_->Get("/healthz",
                     [](const httplib::Request&, httplib::Response& res) {
                       res.set_content("ok\n", "text/plain");
                     });
  if (port == 0) {
    self->port_ = self->server_->bind_to_any_port(host);
    if (self->port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot bind a metrics port on ", host));
    }
  } else {
    if (!self->server_->bind_to_port(host, port)) {
      return absl::UnavailableError(
          absl::StrCat("cannot bind the metrics port ", host, ":", port));
    }
    self->port_ = port;
  }
  httplib::Server* server = self->server_.get();
  self->thread_ = std::thread([server] { server->listen_after_bind(); });
  return self;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace agentstream::orchestrator
