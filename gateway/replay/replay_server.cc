#include "gateway/replay/replay_server.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "gateway/http_status.h"
#include "gateway/request_id.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::replay {
namespace {

constexpr int kRetryAfterSeconds = 2;
// The gateway's bound on a POST body (docs/GATEWAY.md, "Limits").
constexpr size_t kMaxBodyBytes = 256 * 1024;

std::string RequestIdFor(const http::HttpRequest& req) {
  return AcceptOrGenerateRequestId(req.headers.GetOr("X-Request-Id"));
}

http::HttpHeaders StreamHeaders(std::string_view request_id) {
  http::HttpHeaders h;
  h.Add("Content-Type", "text/event-stream; charset=utf-8");
  h.Add("Cache-Control", "no-cache");
  h.Add("X-Accel-Buffering", "no");
  h.Add("X-Request-Id", std::string(request_id));
  return h;
}

// The recording's span from its first to its last timed update.
int64_t DurationMs(const Recording& r) {
  std::optional<int64_t> first, last;
  for (const RecordedEvent& ev : r.events) {
    if (!ev.emitted_at_ns) continue;
    if (!first) first = ev.emitted_at_ns;
    last = ev.emitted_at_ns;
  }
  return first ? (*last - *first) / 1000000 : 0;
}

}  // namespace

// Wakes a stream's wait: its client went away, or the server stops.
struct ReplayServer::Waker {
  void Wake() {
    absl::MutexLock lock(&mu);
    woken = true;
  }
  // True when woken; false when `timeout` passed first.
  bool Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(&woken), timeout);
    return woken;
  }
  absl::Mutex mu;
  bool woken ABSL_GUARDED_BY(mu) = false;
};

ReplayServer::ReplayServer(ReplayServerOptions options,
                           std::unique_ptr<RecordingLibrary> library,
                           const Clock* clock)
    : options_(std::move(options)),
      library_(std::move(library)),
      clock_(clock) {}

ReplayServer::~ReplayServer() { Stop(); }

absl::Status ReplayServer::Start() {
  http::HttpServerOptions o;
  o.host = options_.host;
  o.port = options_.port;
  o.write_timeout = options_.write_timeout;
  o.max_queued_response_bytes = options_.max_stream_buffer_bytes;
  o.limits.max_body_bytes = kMaxBodyBytes;
  // A stream holds its handler thread while it plays; the bound on streams
  // is checked before (503), so a few more threads serve everything else.
  o.max_handler_threads = options_.max_streams + 8;
  o.max_waiting_requests = 64;
  o.retry_after_seconds = kRetryAfterSeconds;
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
  server_ = std::make_unique<http::HttpServer>(std::move(o));
  using Options = http::HttpServer::RouteOptions;
  const Options kInline{.inline_handler = true, .serves_head = true};
  server_->Route("GET", "/api/chat/stream",
                 [this](ExchangePtr ex) { HandleChat(ex, /*is_post=*/false); });
  server_->Route("POST", "/api/chat/stream",
                 [this](ExchangePtr ex) { HandleChat(ex, /*is_post=*/true); });
  server_->Route("GET", "/api/runs/{id}/stream",
                 [this](ExchangePtr ex) { HandleRun(ex); });
  server_->Route(
      "DELETE", "/api/runs/{id}", [this](ExchangePtr ex) { HandleCancel(ex); },
      Options{.inline_handler = true});
  server_->Route(
      "GET", "/api/recordings", [this](ExchangePtr ex) { HandleList(ex); },
      kInline);
  server_->Route(
      "GET", "/healthz",
      [](ExchangePtr ex) {
        http::HttpResponse r;
        r.headers.Add("Content-Type", "application/json");
        r.headers.Add("Cache-Control", "no-store");
        r.headers.Add("X-Request-Id", RequestIdFor(ex->request()));
        r.body = R"({"status":"ok"})";
        ex->Respond(std::move(r));
      },
      kInline);
  return server_->Start();
}

int ReplayServer::port() const { return server_ ? server_->port() : 0; }

void ReplayServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (const auto& w : wakers_) w->Wake();
  }
  if (server_) server_->Stop();
}

void ReplayServer::SendError(const ExchangePtr& ex, const absl::Status& status,
                             std::string_view request_id) const {
  http::HttpResponse r;
  r.status = HttpStatusFor(status.code());
  r.headers.Add("Content-Type", "application/json");
  r.headers.Add("Cache-Control", "no-store");
  r.headers.Add("X-Request-Id", std::string(request_id));
  if (r.status == 503 || r.status == 429) {
    r.headers.Add("Retry-After", std::to_string(kRetryAfterSeconds));
  }
  r.body = ErrorBody(status, request_id);
  ex->Respond(std::move(r));
}

void ReplayServer::HandleChat(const ExchangePtr& ex, bool is_post) {
  const http::HttpRequest& req = ex->request();
  absl::StatusOr<QueryParams> params = http::ParseQuery(req.query);
  if (is_post) params = ChatBodyParams(req.body);
  if (!params.ok()) {
    SendError(ex, params.status(), RequestIdFor(req));
    return;
  }
  auto request = ParseChatRequest(req.headers.GetOr("Last-Event-ID"), *params,
                                  options_.replay);
  if (!request.ok()) {
    SendError(ex, request.status(), RequestIdFor(req));
    return;
  }
  const Recording* recording = nullptr;
  if (!request->run_id.empty()) {
    recording = library_->Find(request->run_id);
    if (recording == nullptr && !request->after_seq.has_value()) {
      SendError(ex,
                absl::NotFoundError(
                    absl::StrCat("no recording of run ", request->run_id)),
                RequestIdFor(req));
      return;
    }
  } else {
    recording = library_->ForQuestion(request->message);
  }
  Serve(ex, recording, *request);
}

void ReplayServer::HandleRun(const ExchangePtr& ex) {
  const http::HttpRequest& req = ex->request();
  auto request =
      ParseRunStreamRequest(ex->param("id"), req.headers.GetOr("Last-Event-ID"),
                            http::ParseQuery(req.query), options_.replay);
  if (!request.ok()) {
    SendError(ex, request.status(), RequestIdFor(req));
    return;
  }
  Serve(ex, library_->Find(request->run_id), *request);
}

void ReplayServer::HandleCancel(const ExchangePtr& ex) {
  const std::string id(ex->param("id"));
  if (!IsValidRequestId(id)) {
    SendError(ex, absl::InvalidArgumentError("invalid run id"),
              RequestIdFor(ex->request()));
  } else if (library_->Find(id) == nullptr) {
    SendError(ex, absl::NotFoundError(absl::StrCat("no recording of run ", id)),
              id);
  } else {
    SendError(ex,
              absl::FailedPreconditionError(absl::StrCat(
                  "run ", id, " is a recording: it has already ended")),
              id);
  }
}

void ReplayServer::HandleList(const ExchangePtr& ex) {
  nlohmann::json list = nlohmann::json::array();
  for (const Recording& r : library_->recordings()) {
    list.push_back({{"request_id", r.request_id},
                    {"question", r.question},
                    {"file", r.source},
                    {"updates", r.updates},
                    {"last_seq", r.last_seq},
                    {"duration_ms", DurationMs(r)}});
  }
  http::HttpResponse resp;
  resp.headers.Add("Content-Type", "application/json");
  resp.headers.Add("Cache-Control", "no-store");
  resp.headers.Add("X-Request-Id", RequestIdFor(ex->request()));
  resp.body = nlohmann::json{{"recordings", std::move(list)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  ex->Respond(std::move(resp));
}

void ReplayServer::Serve(const ExchangePtr& ex, const Recording* recording,
                         const ReplayRequest& request) {
  auto plan = PlanReplay(recording, request, options_.replay);
  const std::string rid =
      recording != nullptr ? recording->request_id : request.run_id;
  if (!plan.ok()) {
    SendError(ex, plan.status(),
              rid.empty() ? RequestIdFor(ex->request()) : rid);
    return;
  }
  if (plan->opening == Opening::kNoContent) {
    http::HttpResponse r;
    r.status = 204;
    r.headers.Add("Cache-Control", "no-store");
    r.headers.Add("X-Request-Id", rid);
    ex->Respond(std::move(r));
    return;
  }
  if (open_streams_.fetch_add(1) >= options_.max_streams) {
    open_streams_.fetch_sub(1);
    SendError(ex,
              absl::UnavailableError(absl::StrCat(
                  "more than ", options_.max_streams, " streams are open")),
              rid);
    return;
  }
  Play(ex, *std::move(plan), request);
  open_streams_.fetch_sub(1);
}

bool ReplayServer::WriteAll(const ExchangePtr& ex, const std::string& bytes) {
  for (;;) {
    switch (ex->Write(bytes)) {
      case http::Exchange::WriteResult::kOk:
        return true;
      case http::Exchange::WriteResult::kClosed:
        return false;
      case http::Exchange::WriteResult::kFull:
        if (!ex->WaitWritable(options_.write_timeout)) return false;
        break;
    }
  }
}

void ReplayServer::Play(const ExchangePtr& ex, ReplayPlan plan,
                        const ReplayRequest& request) {
  const std::string rid = plan.request_id;
  auto waker = std::make_shared<Waker>();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      SendError(ex, absl::UnavailableError("the replay server is stopping"),
                rid);
      return;
    }
    wakers_.insert(waker);
  }
  ex->OnClose([waker] { waker->Wake(); });
  const auto stopping = [this] {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  if (ex->StartStream(200, StreamHeaders(rid))) {
    ReplayPacer pacer(std::move(plan.events), clock_->Now(),
                      options_.replay.heartbeat_interval,
                      HeartbeatBytes(request.heartbeat, rid));
    for (;;) {
      const ReplayPacer::Step step = pacer.Next(clock_->Now());
      if (!step.bytes.empty() && !WriteAll(ex, step.bytes)) break;
      if (step.finished) break;
      // Bounded: the plan's pauses are at most max_gap, heartbeats closer.
      if (waker->Wait(step.next - clock_->Now())) {
        if (stopping()) {
          // The gateway's words when it stops: the client resumes elsewhere.
          WriteAll(ex, GatewayErrorBytes(
                           rid, "unavailable",
                           "the gateway is shutting down; reconnect", true));
        }
        break;
      }
    }
  }
  ex->End();
  absl::MutexLock lock(&mu_);
  wakers_.erase(waker);
}

}  // namespace agentstream::gateway::replay
