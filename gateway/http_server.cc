#include "gateway/http_server.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/audit.h"
#include "common/log.h"
#include "gateway/chat_request.h"
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

GatewayServer::Impl::Impl(GatewayOptions options,
                          std::shared_ptr<OrchestratorClient> client,
                          const Clock* clock)
    : options_(std::move(options)),
      client_(std::move(client)),
      clock_(clock),
      limiter_(options_.client_limits, clock),
      a2a_contexts_(clock) {
  metrics_.SetUpstream(client_->upstream_counters());
  live_context_.metrics = &metrics_;
  live_context_.timers = &timers_;
  live_context_.clock = clock_;
  live_context_.stopping = &stopping_;
  live_context_.options = ChatStreamOptions{
      .heartbeat_interval = options_.heartbeat_interval,
      .metrics = &metrics_,
  };
}

absl::Status GatewayServer::Impl::Start() {
  auto trusted = http::TrustedProxies::Parse(options_.trusted_proxies);
  if (!trusted.ok()) return trusted.status();
  trusted_proxies_ = *trusted;
  auto authenticator = auth::Authenticator::Create(options_.auth, clock_);
  if (!authenticator.ok()) return authenticator.status();
  auth_ = *std::move(authenticator);

  http::HttpServerOptions o;
  o.host = options_.host;
  o.port = options_.port;
  o.listen_backlog = options_.listen_backlog;
  o.limits = options_.limits;
  o.header_timeout = options_.header_timeout;
  o.body_timeout = options_.body_timeout;
  o.idle_timeout = options_.idle_timeout;
  o.write_timeout = options_.write_timeout;
  o.max_connections = options_.max_connections;
  o.max_connections_per_address = options_.max_connections_per_client;
  // A trusted proxy carries many clients on its connections.
  o.exempt_proxies = trusted_proxies_;
  o.max_queued_response_bytes = options_.max_stream_buffer_bytes;
  o.max_handler_threads =
      static_cast<size_t>(std::max<int64_t>(options_.handler_threads, 1));
  o.handler_stack_bytes = options_.thread_stack_bytes;
  o.max_waiting_requests = 1024;
  o.retry_after_seconds = options_.retry_after_seconds;
  o.error_response = [](int status, std::string_view message,
                        const http::HttpRequest* request) {
    http::HttpResponse r;
    r.status = status;
    const std::string rid = request != nullptr ? RequestIdFor(*request)
                                               : AcceptOrGenerateRequestId("");
    r.headers.Add("Content-Type", "application/json");
    r.headers.Add("Cache-Control", "no-store");
    r.headers.Add("X-Request-Id", rid);
    r.body = HttpErrorBody(status, message, rid);
    return r;
  };
  o.on_response = [this](const http::HttpRequest& req, int status) {
    metrics_.CountHttpRequest(status);
    AS_LOG(DEBUG) << req.method << " " << req.path << " " << status;
  };
  server_ = std::make_unique<http::HttpServer>(std::move(o));
  Route();
  if (absl::Status s = server_->Start(); !s.ok()) return s;
  AS_LOG(INFO) << "listening on " << options_.host << ":" << server_->port();
  return absl::OkStatus();
}

void GatewayServer::Impl::Stop() {
  if (stopping_.exchange(true)) return;
  // Every live stream ends now with its retryable error (the client resumes
  // through another gateway); a stream that starts meanwhile sees
  // `stopping_` on its first step.
  std::vector<std::shared_ptr<LiveStream>> live;
  {
    absl::MutexLock lock(&live_mu_);
    for (const auto& [raw, stream] : live_) live.push_back(stream);
  }
  for (const auto& stream : live) stream->Kick();
  live.clear();
  if (server_) server_->Stop();
  timers_.Stop();
}

http::HttpResponse GatewayServer::Impl::ErrorResponse(
    const absl::Status& status, const std::string& request_id,
    int retry_after_seconds) const {
  http::HttpResponse r;
  r.status = HttpStatusFor(status.code());
  r.headers.Add("Content-Type", "application/json");
  r.headers.Add("Cache-Control", "no-store");
  r.headers.Add("X-Request-Id", request_id);
  if (r.status == 503 || r.status == 429) {
    r.headers.Add(
        "Retry-After",
        std::to_string(retry_after_seconds > 0 ? retry_after_seconds
                                               : options_.retry_after_seconds));
  }
  r.body = ErrorBody(status, request_id);
  return r;
}

void GatewayServer::Impl::SendError(const ExchangePtr& ex,
                                    const absl::Status& status,
                                    const std::string& request_id,
                                    int retry_after_seconds) const {
  ex->Respond(ErrorResponse(status, request_id, retry_after_seconds));
}

void GatewayServer::Impl::SendJson(const ExchangePtr& ex, int code,
                                   const nlohmann::json& body,
                                   const std::string& request_id) const {
  http::HttpResponse r;
  r.status = code;
  r.headers.Add("Content-Type", "application/json");
  r.headers.Add("Cache-Control", "no-store");
  r.headers.Add("X-Request-Id", request_id);
  r.body = Dump(body);
  ex->Respond(std::move(r));
}

std::string GatewayServer::Impl::RequestIdFor(const http::HttpRequest& req) {
  return AcceptOrGenerateRequestId(req.headers.GetOr("X-Request-Id"));
}

std::optional<OnBehalfOf> GatewayServer::Impl::Authenticate(
    const ExchangePtr& ex, Need need, const std::string& rid) {
  const http::HttpRequest& req = ex->request();
  OnBehalfOf who;
  who.client_address = ClientKey(req);
  who.correlation_id = rid;
  if (need == Need::kNothing || auth_->mode() == auth::AuthMode::kNone) {
    return who;
  }
  auth::AuthResult result = auth_->Authenticate(auth::CredentialInputFrom(req));
  if (result.ok() && need == Need::kMetrics && !result.principal->metrics) {
    result.failure = auth::InsufficientScope(auth_->options().metrics_scope);
    result.principal.reset();
  }
  if (result.ok()) {
    who.principal = result.principal->name;
    who.admin = result.principal->admin;
    return who;
  }
  const auth::AuthFailure& failure = result.failure;
  const int code = auth::HttpStatusFor(failure);
  // Who was refused, what and from where; never the credential.
  Audit("auth_refused",
        {{"error", failure.error.empty() ? "missing" : failure.error},
         {"source", std::string(auth::CredentialSourceName(result.source))},
         {"method", req.method},
         {"path", req.path},
         {"client", who.client_address},
         {"status", code}});
  const std::string message = failure.description.empty()
                                  ? "authentication required"
                                  : failure.description;
  absl::Status status = code == 400   ? absl::InvalidArgumentError(message)
                        : code == 403 ? absl::PermissionDeniedError(message)
                                      : absl::UnauthenticatedError(message);
  http::HttpResponse r = ErrorResponse(status, rid);
  r.headers.Add("WWW-Authenticate", auth::WwwAuthenticate(failure));
  ex->Respond(std::move(r));
  return std::nullopt;
}

std::string GatewayServer::Impl::ClientKey(const http::HttpRequest& req) const {
  return trusted_proxies_.ClientAddress(req.peer.ip,
                                        req.headers.GetOr("X-Forwarded-For"));
}

void GatewayServer::Impl::Route() {
  using Options = http::HttpServer::RouteOptions;
  // Answered on the event loop: they never block.
  const Options kInline{.inline_handler = true, .serves_head = true};
  // Streams start on the event loop too: their handlers parse, start the
  // gRPC call and return; the stream is then driven by events
  // (live_stream.h). A burst of clients costs no thread.
  const Options kInlineStream{.inline_handler = true};
  server_->Route(
      "GET", "/api/chat/stream",
      [this](ExchangePtr ex) { HandleChatStream(ex, /*is_post=*/false); },
      kInlineStream);
  server_->Route(
      "POST", "/api/chat/stream",
      [this](ExchangePtr ex) { HandleChatStream(ex, /*is_post=*/true); },
      kInlineStream);
  server_->Route(
      "GET", "/api/runs/{id}/stream",
      [this](ExchangePtr ex) { HandleRunStream(ex); }, kInlineStream);
  // The AI SDK's UI message stream (ai_sdk_handlers.cc).
  server_->Route(
      "POST", "/api/ai-sdk/chat",
      [this](ExchangePtr ex) { HandleAiSdkChat(ex); }, kInlineStream);
  server_->Route(
      "GET", "/api/ai-sdk/chat/{chatId}/stream",
      [this](ExchangePtr ex) { HandleAiSdkReconnect(ex); }, kInlineStream);
  server_->Route("DELETE", "/api/runs/{id}",
                 [this](ExchangePtr ex) { HandleCancel(ex); });
  server_->Route(
      "POST", "/api/ag-ui", [this](ExchangePtr ex) { HandleAgUi(ex); },
      kInlineStream);
  server_->Route(
      "GET", "/api/specialists",
      [this](ExchangePtr ex) { HandleSpecialists(ex); },
      Options{.serves_head = true});
  server_->Route(
      "GET", "/healthz",
      [this](ExchangePtr ex) {
        SendJson(ex, 200, {{"status", "ok"}}, RequestIdFor(ex->request()));
      },
      kInline);
  server_->Route(
      "GET", "/readyz", [this](ExchangePtr ex) { HandleReady(ex); },
      Options{.serves_head = true});
  server_->Route(
      "GET", "/metrics", [this](ExchangePtr ex) { HandleMetrics(ex); },
      kInline);
  // A2A (docs/PROTOCOLS.md): on handler threads, as they read the
  // orchestrator before answering.
  server_->Route(
      "GET", "/.well-known/agent-card.json",
      [this](ExchangePtr ex) { HandleA2aCard(ex); },
      Options{.serves_head = true});
  server_->Route("POST", "/api/a2a",
                 [this](ExchangePtr ex) { HandleA2aRpc(ex); });
  server_->Route(
      "GET", "/{path...}", [this](ExchangePtr ex) { HandleStatic(ex); },
      kInline);
}

void GatewayServer::Impl::HandleMetrics(const ExchangePtr& ex) {
  if (!Authenticate(ex, options_.auth_metrics ? Need::kMetrics : Need::kNothing,
                    RequestIdFor(ex->request()))) {
    return;
  }
  http::HttpResponse r;
  r.headers.Add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  r.headers.Add("Cache-Control", "no-store");
  const http::HttpServerStats stats = server_->stats();
  r.body = metrics_.RenderPrometheus(&stats);
  ex->Respond(std::move(r));
}

void GatewayServer::Impl::HandleSpecialists(const ExchangePtr& ex) {
  const std::string rid = RequestIdFor(ex->request());
  if (!Authenticate(ex, Need::kUser, rid)) return;
  auto response = client_->ListSpecialists(absl::Seconds(5), rid);
  if (!response.ok()) return SendError(ex, response.status(), rid);
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
  SendJson(ex, 200, {{"specialists", list}, {"request_id", rid}}, rid);
}

void GatewayServer::Impl::HandleReady(const ExchangePtr& ex) {
  const std::string rid = RequestIdFor(ex->request());
  if (!Authenticate(ex, options_.auth_readyz ? Need::kMetrics : Need::kNothing,
                    rid)) {
    return;
  }
  auto response = client_->ListSpecialists(options_.readiness_timeout, rid);
  if (!response.ok()) {
    return SendError(
        ex,
        absl::UnavailableError(absl::StrCat("orchestrator not ready: ",
                                            response.status().message())),
        rid);
  }
  SendJson(ex, 200,
           {{"status", "ready"}, {"specialists", response->specialists_size()}},
           rid);
}

void GatewayServer::Impl::HandleStatic(const ExchangePtr& ex) {
  const std::string rid = RequestIdFor(ex->request());
  const std::string path =
      http::PercentDecode(ex->request().path, /*plus_as_space=*/false);
  auto resolved = ResolveStaticPath(options_.web_root, path);
  if (!resolved.ok()) return SendError(ex, resolved.status(), rid);
  std::ifstream in(*resolved, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return SendError(ex, absl::NotFoundError("cannot read the file"), rid);
  }
  http::HttpResponse r;
  r.headers.Add("Content-Type", ContentTypeForPath(*resolved));
  r.headers.Add("Cache-Control", "no-cache");
  r.headers.Add("X-Request-Id", rid);
  r.body = std::move(content).str();
  ex->Respond(std::move(r));
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
