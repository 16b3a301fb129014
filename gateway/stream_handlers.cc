// GatewayServer::Impl, part 2: new runs on /api/chat/stream and the SSE
// response every stream shares. A request that names a resume point goes to
// the attach path (runs_handlers.cc) instead: no run is started again.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash_table_shrink.h"
#include "common/log.h"
#include "common/run_id.h"
#include "common/update_json.h"
#include "gateway/chat_request.h"
#include "gateway/http_status.h"
#include "gateway/request_id.h"
#include "gateway/resume.h"
#include "gateway/server_impl.h"

namespace agentstream::gateway {
void GatewayServer::Impl::HandleChatStream(const ExchangePtr& ex,
                                           bool is_post) {
  const http::HttpRequest& req = ex->request();
  // The client's X-Request-Id is its correlation id (logs, the `connected`
  // event).
  const std::string correlation_id = RequestIdFor(req);
  std::optional<OnBehalfOf> who = Authenticate(ex, Need::kUser, correlation_id);
  if (!who) return;
  const auto params = http::ParseQuery(req.query);
  auto resume = ChatResumePoint(req.headers.GetOr("Last-Event-ID"), params);
  if (!resume.ok()) return SendError(ex, resume.status(), correlation_id);
  if (resume->has_value()) {
    // A reconnect: the message (if any) is not needed. Only how to stream
    // (stream_format.h) is taken from the request, when it parses.
    auto format = ParseStreamFormatQuery(params);
    if (!format.ok()) {
      return SendError(ex, format.status(), (*resume)->request_id);
    }
    if (is_post) {
      if (auto body = ParseChatBody(req.body); body.ok()) {
        *format = body->format;
      }
    }
    AttachTarget target{.request_id = (*resume)->request_id,
                        .after_seq = (*resume)->after_seq,
                        .has_resume_point = true};
    return ServeAttach(ex, target, *format, *who);
  }

  // A run's id is always ours (common/run_id.h), so no client can take, or
  // probe for, another's; the client's X-Request-Id is its correlation id,
  // which also names the request in any refusal (no run came of it).
  const std::string rid = NewRunId();
  absl::StatusOr<ChatRequest> chat =
      is_post ? ParseChatBody(req.body) : ParseChatQuery(params);
  if (!chat.ok()) return SendError(ex, chat.status(), correlation_id);
  auto encoder = std::make_unique<ChatStreamEncoder>(
      rid, ServerFormat(chat->format), options_.retry_ms);
  // The client's own id, when it sent one, comes back in `connected`.
  if (IsValidRequestId(req.headers.GetOr("X-Request-Id"))) {
    encoder->set_correlation_id(correlation_id);
  }
  StartRun(ex, correlation_id, *who, *chat, std::move(encoder));
}

void GatewayServer::Impl::StartRun(const ExchangePtr& ex,
                                   const std::string& correlation_id,
                                   const OnBehalfOf& who,
                                   const ChatRequest& chat,
                                   std::unique_ptr<StreamEncoder> encoder) {
  const http::HttpRequest& req = ex->request();
  const ClientLimiter::Refusal rate = limiter_.TakeRunStart(ClientKey(req));
  if (!rate.status.ok()) {
    metrics_.client_run_rate_refusals_total.fetch_add(1);
    return SendError(ex, rate.status, correlation_id, rate.retry_after_seconds);
  }
  std::unique_ptr<ClientLimiter::StreamSlot> slot =
      ReserveStreamSlots(ex, correlation_id);
  if (!slot) return;
  auto state = std::make_shared<StreamState>(
      metrics_, std::move(slot),
      client_->StartRun(RunParamsFor(encoder->request_id(), who, chat)),
      std::move(encoder));
  NegotiateGzip(req, *state);

  // Answer with a status code only once the orchestrator accepted the run:
  // its INVALID_ARGUMENT (an unknown specialist) is a 400, not a stream. The
  // handler returns now; the stream decides when the first answer comes.
  // Refusals name the request by its correlation id: no run came of it.
  auto opener = [this, ex, rid = correlation_id](StreamState& s,
                                                 bool timed_out) {
    switch (s.run->Wait(absl::ZeroDuration(), &s.first)) {
      case RunStream::Next::kUpdates:
        return StartSse(ex, s) ? OpenResult::kStreaming : OpenResult::kAnswered;
      case RunStream::Next::kTimeout:
        if (!timed_out) return OpenResult::kWaiting;
        s.run->Cancel();
        SendError(ex,
                  absl::DeadlineExceededError(absl::StrCat(
                      "the orchestrator did not answer within ",
                      absl::FormatDuration(options_.first_update_timeout))),
                  rid);
        return OpenResult::kAnswered;
      case RunStream::Next::kFinished:
        break;
    }
    const absl::Status status = s.run->status();
    if (status.ok()) {
      // An empty run: streamed as connected + done.
      return StartSse(ex, s) ? OpenResult::kStreaming : OpenResult::kAnswered;
    }
    if (status.code() == absl::StatusCode::kResourceExhausted) {
      // The orchestrator is at capacity (its run or log memory bound): the
      // gateway is fine, the service is not, for now.
      SendError(ex,
                absl::UnavailableError(absl::StrCat(
                    "orchestrator at capacity: ", status.message())),
                rid);
    } else if (IsRetryable(status.code())) {
      SendError(
          ex,
          absl::Status(status.code(), absl::StrCat("orchestrator unavailable: ",
                                                   status.message())),
          rid);
    } else {
      SendError(ex, status, rid);
    }
    return OpenResult::kAnswered;
  };
  ServeStream(ex, std::move(state), std::move(opener),
              options_.first_update_timeout);
}

RunParams GatewayServer::Impl::RunParamsFor(const std::string& run_id,
                                            const OnBehalfOf& who,
                                            const ChatRequest& chat) {
  RunParams params;
  params.request_id = run_id;
  params.on_behalf_of = who;
  params.message = chat.message;
  params.specialists = chat.specialists;
  params.options = JsonToStruct(chat.options);
  params.on_disconnect = chat.on_disconnect;
  return params;
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
    const StreamEncoder& encoder) {
  http::HttpHeaders h;
  encoder.AddHeaders(&h);
  h.Add("Cache-Control", "no-cache");
  h.Add("X-Accel-Buffering", "no");
  h.Add("X-Request-Id", encoder.request_id());
  return h;
}

StreamFormat GatewayServer::Impl::ServerFormat(StreamFormat format) const {
  format.compress_min_bytes = options_.compress_min_bytes;
  return format;
}

void GatewayServer::Impl::NegotiateGzip(const http::HttpRequest& req,
                                        StreamState& s) const {
  if (options_.stream_gzip &&
      AcceptsGzip(req.headers.GetOr("Accept-Encoding"))) {
    s.gzip = GzipStream::Create();  // Null (plain) if zlib cannot.
  }
}

bool GatewayServer::Impl::StartSse(const ExchangePtr& ex, StreamState& s) {
  metrics_.streams_total.fetch_add(1);
  http::HttpHeaders headers = StreamHeaders(*s.encoder);
  if (options_.stream_gzip) headers.Add("Vary", "Accept-Encoding");
  if (s.gzip != nullptr) headers.Add("Content-Encoding", "gzip");
  if (!ex->StartStream(200, headers)) {
    metrics_.client_disconnects_total.fetch_add(1);
    return false;  // The client is gone: ~StreamState cancels the call.
  }
  return true;
}

void GatewayServer::Impl::ServeStream(const ExchangePtr& ex,
                                      std::shared_ptr<StreamState> state,
                                      StreamOpener opener,
                                      absl::Duration opening_wait) {
  auto stream = std::make_shared<LiveStream>(
      ex, std::move(state), live_context_, std::move(opener),
      clock_->Now() + opening_wait, [this](LiveStream* ended) {
        // The stream is still alive here (its caller holds it).
        absl::MutexLock lock(&live_mu_);
        live_.erase(ended);
        ShrinkIfSparse(live_);
      });
  {
    absl::MutexLock lock(&live_mu_);
    live_.emplace(stream.get(), stream);
  }
  stream->Begin();
}

}  // namespace agentstream::gateway
