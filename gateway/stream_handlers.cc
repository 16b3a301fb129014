// GatewayServer::Impl, part 2: new runs on /api/chat/stream and the SSE
// response every stream shares. A request that names a resume point goes to
// the attach path (runs_handlers.cc) instead: no run is started again.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/update_json.h"
#include "gateway/chat_request.h"
#include "gateway/http_status.h"
#include "gateway/resume.h"
#include "gateway/server_impl.h"

namespace agentstream::gateway {
void GatewayServer::Impl::HandleChatStream(const ExchangePtr& ex,
                                           bool is_post) {
  const http::HttpRequest& req = ex->request();
  const auto params = http::ParseQuery(req.query);
  auto resume = ChatResumePoint(req.headers.GetOr("Last-Event-ID"), params);
  if (!resume.ok()) return SendError(ex, resume.status(), RequestIdFor(req));
  if (resume->has_value()) {
    // A reconnect: the message (if any) is not needed. Only the heartbeat
    // style is taken from the request, when it parses.
    auto heartbeat = ParseHeartbeatQuery(params);
    if (!heartbeat.ok()) {
      return SendError(ex, heartbeat.status(), (*resume)->request_id);
    }
    HeartbeatStyle style = *heartbeat;
    if (is_post) {
      if (auto body = ParseChatBody(req.body); body.ok()) {
        style = body->heartbeat;
      }
    }
    AttachTarget target{.request_id = (*resume)->request_id,
                        .after_seq = (*resume)->after_seq,
                        .has_resume_point = true};
    return ServeAttach(ex, target, style);
  }

  const std::string rid = RequestIdFor(req);
  absl::StatusOr<ChatRequest> chat =
      is_post ? ParseChatBody(req.body) : ParseChatQuery(params);
  if (!chat.ok()) return SendError(ex, chat.status(), rid);
  const ClientLimiter::Refusal rate = limiter_.TakeRunStart(ClientKey(req));
  if (!rate.status.ok()) {
    metrics_.client_run_rate_refusals_total.fetch_add(1);
    return SendError(ex, rate.status, rid, rate.retry_after_seconds);
  }
  std::unique_ptr<ClientLimiter::StreamSlot> slot = ReserveStreamSlots(ex, rid);
  if (!slot) return;
  RunParams params_out;
  params_out.request_id = rid;
  params_out.message = chat->message;
  params_out.specialists = chat->specialists;
  params_out.options = JsonToStruct(chat->options);
  params_out.on_disconnect = chat->on_disconnect;
  auto state = std::make_shared<StreamState>(
      metrics_, std::move(slot), client_->StartRun(params_out),
      ChatStreamEncoder(rid, chat->heartbeat, options_.retry_ms));

  // Answer with a status code only once the orchestrator accepted the run:
  // its INVALID_ARGUMENT (an unknown specialist) is a 400, not a stream.
  switch (state->run->Wait(options_.first_update_timeout, &state->first)) {
    case RunStream::Next::kUpdates:
      break;
    case RunStream::Next::kTimeout:
      state->run->Cancel();
      return SendError(
          ex,
          absl::DeadlineExceededError(absl::StrCat(
              "the orchestrator did not answer within ",
              absl::FormatDuration(options_.first_update_timeout))),
          rid);
    case RunStream::Next::kFinished: {
      const absl::Status status = state->run->status();
      if (status.ok()) break;  // An empty run: streamed as connected + done.
      if (status.code() == absl::StatusCode::kResourceExhausted) {
        // The orchestrator is at capacity (its run or log memory bound):
        // the gateway is fine, the service is not, for now.
        return SendError(ex,
                         absl::UnavailableError(absl::StrCat(
                             "orchestrator at capacity: ", status.message())),
                         rid);
      }
      if (IsRetryable(status.code())) {
        return SendError(ex,
                         absl::Status(status.code(),
                                      absl::StrCat("orchestrator unavailable: ",
                                                   status.message())),
                         rid);
      }
      return SendError(ex, status, rid);
    }
  }
  ServeStream(ex, std::move(state));
}

std::unique_ptr<ClientLimiter::StreamSlot>
GatewayServer::Impl::ReserveStreamSlots(const ExchangePtr& ex,
                                        const std::string& rid) {
  if (stopping_.load()) {
    SendError(ex, absl::UnavailableError("the gateway is stopping"), rid);
    return nullptr;
  }
  ClientLimiter::StreamResult client =
      limiter_.AcquireStream(ClientKey(ex->request()));
  if (!client.slot) {
    metrics_.client_stream_refusals_total.fetch_add(1);
    SendError(ex, client.refusal.status, rid,
              client.refusal.retry_after_seconds);
    return nullptr;
  }
  if (metrics_.streams_open.fetch_add(1) >= options_.max_streams) {
    metrics_.streams_open.fetch_sub(1);
    metrics_.stream_rejections_total.fetch_add(1);
    SendError(
        ex,
        absl::UnavailableError(absl::StrCat(
            "too many open streams (", options_.max_streams, "); retry later")),
        rid);
    return nullptr;
  }
  return std::move(client.slot);
}

http::HttpHeaders GatewayServer::Impl::StreamHeaders(
    const std::string& request_id) {
  http::HttpHeaders h;
  h.Add("Content-Type", "text/event-stream; charset=utf-8");
  h.Add("Cache-Control", "no-cache");
  h.Add("X-Accel-Buffering", "no");
  h.Add("X-Request-Id", request_id);
  return h;
}

void GatewayServer::Impl::ServeStream(const ExchangePtr& ex,
                                      std::shared_ptr<StreamState> state) {
  metrics_.streams_total.fetch_add(1);
  if (!ex->StartStream(200, StreamHeaders(state->encoder.request_id()))) {
    metrics_.client_disconnects_total.fetch_add(1);
    return;  // The client is gone: ~StreamState cancels the call.
  }
  auto stream = std::make_shared<LiveStream>(
      ex, std::move(state), live_context_, [this](LiveStream* ended) {
        // The stream is still alive here (its caller holds it).
        absl::MutexLock lock(&live_mu_);
        live_.erase(ended);
      });
  {
    absl::MutexLock lock(&live_mu_);
    live_.emplace(stream.get(), stream);
  }
  stream->Begin();
}

}  // namespace agentstream::gateway
