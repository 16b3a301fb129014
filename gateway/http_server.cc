#include "gateway/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "gateway/chat_request.h"
#include "gateway/connection_threads.h"
#include "gateway/http_status.h"
#include "gateway/request_id.h"
#include "gateway/server_impl.h"
#include "gateway/static_files.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {
namespace {

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

absl::Status GatewayServer::Impl::Start() {
  Route();
  server_.set_tcp_nodelay(true);
  const int64_t write_timeout_us =
      std::max<int64_t>(absl::ToInt64Microseconds(options_.write_timeout), 1);
  server_.set_write_timeout(static_cast<time_t>(write_timeout_us / 1000000),
                            static_cast<time_t>(write_timeout_us % 1000000));
  server_.set_payload_max_length(kMaxPostBodyBytes);
  const size_t max_threads =
      static_cast<size_t>(std::max<int64_t>(options_.max_streams, 1) +
                          std::max<int64_t>(options_.headroom_threads, 1));
  const size_t stack = options_.thread_stack_bytes;
  server_.new_task_queue = [max_threads, stack]() -> httplib::TaskQueue* {
    return new ConnectionThreads(max_threads, stack);
  };
  // The listening socket passes through the socket-options hook; keep the
  // library's defaults (SO_REUSEADDR) and remember it.
  server_.set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = sock;
  });
  const bool bound = options_.port == 0
                         ? server_.bind_to_any_port(options_.host) > 0
                         : server_.bind_to_port(options_.host, options_.port);
  if (!bound) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", options_.host, ":", options_.port));
  }
  const int fd = listen_fd_;
  // cpp-httplib listens with a backlog of 5 (fixed when Debian compiled it);
  // listen() again on the bound socket raises it.
  if (::listen(fd, options_.listen_backlog) != 0) {
    AS_LOG(WARNING) << "cannot raise the listen backlog: "
                    << std::strerror(errno);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port_ = addr.ss_family == AF_INET6
                ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  listen_thread_ = std::thread([this] { server_.listen_after_bind(); });
  // Stop() only works on a running server: do not return before it runs.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!server_.is_running() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  AS_LOG(INFO) << "listening on " << options_.host << ":" << port_;
  return absl::OkStatus();
}

void GatewayServer::Impl::Stop() {
  if (stopping_.exchange(true)) return;
  server_.stop();
  if (listen_thread_.joinable()) listen_thread_.join();
}

void GatewayServer::Impl::SendJson(httplib::Response& res, int code,
                                   const nlohmann::json& body) const {
  res.status = code;
  res.set_header("Cache-Control", "no-store");
  res.set_content(Dump(body), "application/json");
}

void GatewayServer::Impl::SendError(httplib::Response& res,
                                    const absl::Status& status,
                                    const std::string& request_id) const {
  res.status = HttpStatusFor(status.code());
  if (res.status == 503) {
    res.set_header("Retry-After", std::to_string(options_.retry_after_seconds));
  }
  res.set_header("Cache-Control", "no-store");
  res.set_content(ErrorBody(status, request_id), "application/json");
}

std::string GatewayServer::Impl::RequestIdFor(const httplib::Request& req,
                                              httplib::Response& res) const {
  std::string id =
      AcceptOrGenerateRequestId(req.get_header_value("X-Request-Id"));
  res.set_header("X-Request-Id", id);
  return id;
}

void GatewayServer::Impl::Route() {
  server_.Get("/api/chat/stream",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleChatStream(req, res, /*is_post=*/false);
              });
  server_.Post("/api/chat/stream",
               [this](const httplib::Request& req, httplib::Response& res) {
                 HandleChatStream(req, res, /*is_post=*/true);
               });
  server_.Get(R"(/api/runs/([^/]+)/stream)",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleRunStream(req, res);
              });
  server_.Delete(R"(/api/runs/([^/]+))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   HandleCancel(req, res);
                 });
  server_.Get("/api/specialists",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleSpecialists(req, res);
              });
  server_.Get("/healthz",
              [this](const httplib::Request& req, httplib::Response& res) {
                RequestIdFor(req, res);
                SendJson(res, 200, {{"status", "ok"}});
              });
  server_.Get("/readyz",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleReady(req, res);
              });
  server_.Get("/metrics",
              [this](const httplib::Request&, httplib::Response& res) {
                res.set_header("Cache-Control", "no-store");
                res.set_content(metrics_.RenderPrometheus(),
                                "text/plain; version=0.0.4; charset=utf-8");
              });
  server_.Get("/.*",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleStatic(req, res);
              });

  // Every error produced outside our handlers (404 for unknown paths, 413
  // for big bodies, 400 for unparsable requests) gets the JSON error body.
  server_.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        std::string id = res.get_header_value("X-Request-Id");
        if (id.empty()) id = RequestIdFor(req, res);
        // A request line longer than cpp-httplib's 8 KiB limit can only be a
        // long GET message: same answer as any too-long message.
        if (res.status == 414) res.status = 413;
        const absl::StatusCode code = CodeForHttpStatus(res.status);
        std::string message;
        switch (res.status) {
          case 404:
            message =
                absl::StrCat("no such resource: ", req.method, " ", req.path);
            break;
          case 413:
            message = absl::StrCat(
                "request too large: bodies up to ", kMaxPostBodyBytes,
                " bytes; GET URLs up to 8 KiB (use POST for long messages)");
            break;
          default:
            message = absl::StrCat("HTTP ", res.status);
        }
        res.set_header("Cache-Control", "no-store");
        if (res.status == 503) {
          res.set_header("Retry-After",
                         std::to_string(options_.retry_after_seconds));
        }
        res.set_content(ErrorBody(absl::Status(code, message), id),
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  server_.set_exception_handler([this](const httplib::Request& req,
                                       httplib::Response& res,
                                       std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    AS_LOG(ERROR) << req.method << " " << req.path << ": " << what;
    SendError(res, absl::InternalError("internal error"),
              res.get_header_value("X-Request-Id"));
  });
  server_.set_logger(
      [this](const httplib::Request& req, const httplib::Response& res) {
        metrics_.CountHttpRequest(res.status);
        AS_LOG(DEBUG) << req.method << " " << req.path << " " << res.status
                      << " rid=" << res.get_header_value("X-Request-Id");
      });
}

void GatewayServer::Impl::HandleSpecialists(const httplib::Request& req,
                                            httplib::Response& res) {
  const std::string rid = RequestIdFor(req, res);
  auto response = client_->ListSpecialists(absl::Seconds(5), rid);
  if (!response.ok()) return SendError(res, response.status(), rid);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& info : response->specialists()) {
    const auto& card = info.card();
    list.push_back({
        {"name", card.name()},
        {"display_name", card.display_name()},
        {"icon", card.icon()},
        {"description", card.description()},
        {"skills",
         std::vector<std::string>(card.skills().begin(), card.skills().end())},
        {"keywords", std::vector<std::string>(card.keywords().begin(),
                                              card.keywords().end())},
        {"version", card.version()},
        {"explicit_only", card.explicit_only()},
        {"address", info.address()},
        {"available", info.available()},
    });
  }
  SendJson(res, 200, {{"specialists", list}, {"request_id", rid}});
}

void GatewayServer::Impl::HandleReady(const httplib::Request& req,
                                      httplib::Response& res) {
  const std::string rid = RequestIdFor(req, res);
  auto response = client_->ListSpecialists(options_.readiness_timeout, rid);
  if (!response.ok()) {
    return SendError(
        res,
        absl::UnavailableError(absl::StrCat("orchestrator not ready: ",
                                            response.status().message())),
        rid);
  }
  SendJson(
      res, 200,
      {{"status", "ready"}, {"specialists", response->specialists_size()}});
}

void GatewayServer::Impl::HandleStatic(const httplib::Request& req,
                                       httplib::Response& res) {
  auto path = ResolveStaticPath(options_.web_root, req.path);
  if (!path.ok()) {
    return SendError(res, path.status(), RequestIdFor(req, res));
  }
  std::string content;
  httplib::detail::read_file(*path, content);
  res.set_header("Cache-Control", "no-cache");
  res.set_content(std::move(content), ContentTypeForPath(*path));
}

GatewayServer::GatewayServer(GatewayOptions options,
                             std::shared_ptr<OrchestratorClient> orchestrator,
                             const Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(orchestrator),
                                   clock)) {}

GatewayServer::~GatewayServer() { Stop(); }

absl::Status GatewayServer::Start() { return impl_->Start(); }
int GatewayServer::port() const { return impl_->port(); }
void GatewayServer::Stop() { impl_->Stop(); }
const GatewayMetrics& GatewayServer::metrics() const {
  return impl_->metrics();
}

}  // namespace agentstream::gateway
