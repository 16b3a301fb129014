// GatewayServer::Impl, part 2: new runs on /api/chat/stream and the SSE
// response every stream shares. A request that names a resume point goes to
// the attach path (runs_handlers.cc) instead: no run is started again.
#include <httplib.h>

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
namespace {

// An EventSink over httplib's chunked DataSink. In cpp-httplib 0.11.4,
// DataSink::is_writable() polls the socket for POLLOUT and peeks at it, so it
// reports a closed peer at once (tests/unit/gateway/httplib_probe_test.cc
// pins that down); a stream waiting for its next event asks it every poll
// interval.
class HttplibEventSink final : public EventSink {
 public:
  explicit HttplibEventSink(httplib::DataSink& sink) : sink_(sink) {}

  bool Write(std::string_view bytes) override {
    return sink_.write(bytes.data(), bytes.size());
  }
  bool PeerGone() override { return !sink_.is_writable(); }

 private:
  httplib::DataSink& sink_;
};

}  // namespace

void GatewayServer::Impl::HandleChatStream(const httplib::Request& req,
                                           httplib::Response& res,
                                           bool is_post) {
  auto resume =
      ChatResumePoint(req.get_header_value("Last-Event-ID"), req.params);
  if (!resume.ok()) {
    return SendError(res, resume.status(), RequestIdFor(req, res));
  }
  if (resume->has_value()) {
    // A reconnect: the message (if any) is not needed. Only the heartbeat
    // style is taken from the request, when it parses.
    auto heartbeat = ParseHeartbeatQuery(req.params);
    if (!heartbeat.ok()) {
      res.set_header("X-Request-Id", (*resume)->request_id);
      return SendError(res, heartbeat.status(), (*resume)->request_id);
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
    return ServeAttach(req, res, target, style);
  }

  const std::string rid = RequestIdFor(req, res);
  absl::StatusOr<ChatRequest> chat =
      is_post ? ParseChatBody(req.body) : ParseChatQuery(req.params);
  if (!chat.ok()) return SendError(res, chat.status(), rid);
  if (!ReserveStreamSlot(res, rid)) return;
  RunParams params;
  params.request_id = rid;
  params.message = chat->message;
  params.specialists = chat->specialists;
  params.options = JsonToStruct(chat->options);
  params.on_disconnect = chat->on_disconnect;
  auto state = std::make_shared<StreamState>(
      metrics_, client_->StartRun(params),
      ChatStreamEncoder(rid, chat->heartbeat, options_.retry_ms));

  // Answer with a status code only once the orchestrator accepted the run:
  // its INVALID_ARGUMENT (an unknown specialist) is a 400, not a stream.
  switch (state->run->Wait(options_.first_update_timeout, &state->first)) {
    case RunStream::Next::kUpdates:
      break;
    case RunStream::Next::kTimeout:
      state->run->Cancel();
      return SendError(
          res,
          absl::DeadlineExceededError(absl::StrCat(
              "the orchestrator did not answer within ",
              absl::FormatDuration(options_.first_update_timeout))),
          rid);
    case RunStream::Next::kFinished: {
      const absl::Status status = state->run->status();
      if (status.ok()) break;  // An empty run: streamed as connected + done.
      if (IsRetryable(status.code())) {
        return SendError(res,
                         absl::Status(status.code(),
                                      absl::StrCat("orchestrator unavailable: ",
                                                   status.message())),
                         rid);
      }
      return SendError(res, status, rid);
    }
  }
  ServeStream(req, res, std::move(state));
}

bool GatewayServer::Impl::ReserveStreamSlot(httplib::Response& res,
                                            const std::string& rid) {
  if (stopping_.load()) {
    SendError(res, absl::UnavailableError("the gateway is stopping"), rid);
    return false;
  }
  if (metrics_.streams_open.fetch_add(1) >= options_.max_streams) {
    metrics_.streams_open.fetch_sub(1);
    metrics_.stream_rejections_total.fetch_add(1);
    SendError(
        res,
        absl::UnavailableError(absl::StrCat(
            "too many open streams (", options_.max_streams, "); retry later")),
        rid);
    return false;
  }
  return true;
}

void GatewayServer::Impl::SetStreamHeaders(const httplib::Request& req,
                                           httplib::Response& res) {
  // cpp-httplib 0.11.4 compresses any response whose Content-Type is not
  // exactly "text/event-stream" when the client accepts gzip or br, and a
  // compressor holds events back. The request object is not const where the
  // library owns it; dropping the header here turns compression off for
  // this response only.
  const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
}

void GatewayServer::Impl::ServeStream(const httplib::Request& req,
                                      httplib::Response& res,
                                      std::shared_ptr<StreamState> state) {
  metrics_.streams_total.fetch_add(1);
  SetStreamHeaders(req, res);
  const ChatStreamOptions stream_options{
      .heartbeat_interval = options_.heartbeat_interval,
      .poll_interval = options_.poll_interval,
      .metrics = &metrics_,
  };
  res.set_chunked_content_provider(
      "text/event-stream; charset=utf-8",
      [this, state, stream_options](size_t, httplib::DataSink& sink) {
        HttplibEventSink events(sink);
        const ChatStreamResult result =
            RunChatStream(*state->run, state->encoder, std::move(state->first),
                          events, *clock_, stream_options, stopping_);
        if (result.end == StreamEnd::kClientGone) {
          metrics_.client_disconnects_total.fetch_add(1);
          AS_LOG(INFO) << "client of " << state->encoder.request_id()
                       << " went away after seq " << state->encoder.last_seq()
                       << "; call cancelled";
          return false;
        }
        if (result.end == StreamEnd::kReconnect) {
          AS_LOG(INFO) << "stream of " << state->encoder.request_id()
                       << " ended after seq " << state->encoder.last_seq()
                       << " for the client to resume ("
                       << (result.ending == CallEnding::kSlowConsumer
                               ? "slow_consumer"
                               : "orchestrator lost")
                       << ")";
        }
        sink.done();
        return true;
      });
}

}  // namespace agentstream::gateway
