// Internal to the gateway's HTTP server: GatewayServer::Impl, whose handlers
// are split by responsibility across http_server.cc (lifecycle, routing,
// small endpoints), stream_handlers.cc (new runs and the SSE response),
// runs_handlers.cc (existing runs: resume, attach, cancel) and the dialects'
// (a2a_handlers.cc: A2A). Include only from those files.
#ifndef AGENTSTREAM_GATEWAY_SERVER_IMPL_H_
#define AGENTSTREAM_GATEWAY_SERVER_IMPL_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/http/client_address.h"
#include "common/http/server.h"
#include "gateway/auth/authenticator.h"
#include "gateway/chat_request.h"
#include "gateway/chat_stream.h"
#include "gateway/client_limits.h"
#include "gateway/dialects/a2a_contexts.h"
#include "gateway/dialects/a2a_rpc.h"
#include "gateway/dialects/chat_index.h"
#include "gateway/http_server.h"
#include "gateway/live_stream.h"
#include "gateway/resume.h"
#include "gateway/timer_queue.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {

using ExchangePtr = std::shared_ptr<http::Exchange>;

class GatewayServer::Impl {
 public:
  Impl(GatewayOptions options, std::shared_ptr<OrchestratorClient> client,
       const Clock* clock);

  absl::Status Start();
  void Stop();
  int port() const { return server_ ? server_->port() : 0; }
  GatewayMetrics& metrics() { return metrics_; }

 private:
  // http_server.cc
  void Route();
  // The response every error gets: JSON body, X-Request-Id, Retry-After on
  // 503 and 429.
  http::HttpResponse ErrorResponse(const absl::Status& status,
                                   const std::string& request_id,
                                   int retry_after_seconds = 0) const;
  void SendError(const ExchangePtr& ex, const absl::Status& status,
                 const std::string& request_id,
                 int retry_after_seconds = 0) const;
  void SendJson(const ExchangePtr& ex, int code, const nlohmann::json& body,
                const std::string& request_id) const;
  // The client's X-Request-Id when valid, else a new one.
  static std::string RequestIdFor(const http::HttpRequest& req);
  // Who the client is, for per-client bounds: the peer, or the address a
  // trusted proxy names in X-Forwarded-For.
  std::string ClientKey(const http::HttpRequest& req) const;
  // What a request needs to be answered (docs/SECURITY.md).
  enum class Need {
    kNothing,  // Open (auth off, or /metrics and /readyz unprotected).
    kUser,     // Any authenticated principal: /api/*.
    kMetrics,  // The metrics scope (or admin).
  };
  // Whom the request acts for, with its correlation id `rid` and the
  // client's address; nullopt once the refusal (401 with WWW-Authenticate,
  // 400 for a malformed credential, 403 without the scope) has been sent
  // and audited.
  std::optional<OnBehalfOf> Authenticate(const ExchangePtr& ex, Need need,
                                         const std::string& rid);
  void HandleSpecialists(const ExchangePtr& ex);
  void HandleReady(const ExchangePtr& ex);
  void HandleMetrics(const ExchangePtr& ex);
  void HandleStatic(const ExchangePtr& ex);

  // stream_handlers.cc
  void HandleChatStream(const ExchangePtr& ex, bool is_post);
  // Starts a new run (`chat`) for `who`, rendered by `encoder` (which names
  // the run's id), once the client's run rate and stream slots allow it;
  // refusals name the request by `correlation_id`.
  // The orchestrator's request for run `run_id` of `chat`, for `who`.
  static RunParams RunParamsFor(const std::string& run_id,
                                const OnBehalfOf& who, const ChatRequest& chat);
  void StartRun(const ExchangePtr& ex, const std::string& correlation_id,
                const OnBehalfOf& who, const ChatRequest& chat,
                std::unique_ptr<StreamEncoder> encoder);
  // Takes one of the client's stream slots and one of the --max-streams
  // slots (both released by ~StreamState); null (and 429 or 503 answered)
  // when either is taken.
  std::unique_ptr<ClientLimiter::StreamSlot> ReserveStreamSlots(
      const ExchangePtr& ex, const std::string& rid);
  // Follows `state` until its response is decided by `opener` (within
  // `opening_wait`), then as an SSE stream until it ends, holding no thread
  // (live_stream.h): the handler returns at once.
  void ServeStream(const ExchangePtr& ex, std::shared_ptr<StreamState> state,
                   StreamOpener opener, absl::Duration opening_wait);
  // Answers 200 with the SSE headers; false when the client is gone.
  bool StartSse(const ExchangePtr& ex, StreamState& state);
  // The headers of every SSE response.
  static http::HttpHeaders StreamHeaders(const StreamEncoder& encoder);

  // runs_handlers.cc
  void HandleRunStream(const ExchangePtr& ex);
  // Follows an existing run (resume or second observer) and maps the first
  // answer of Attach onto the response (resume.h).
  void ServeAttach(const ExchangePtr& ex, const AttachTarget& target,
                   const StreamFormat& format, const OnBehalfOf& who);
  // The same, rendered by `encoder`, attaching after `attach_after_seq`
  // (a dialect replays from 0 up to the client's point to rebuild its
  // state, gateway/dialects/).
  void ServeAttach(const ExchangePtr& ex, const AttachTarget& target,
                   const OnBehalfOf& who,
                   std::unique_ptr<StreamEncoder> encoder,
                   uint64_t attach_after_seq);
  // The client's format with the server's part (the compression threshold).
  StreamFormat ServerFormat(StreamFormat format) const;
  // Makes `s` gzip-encoded when --stream-gzip and the client accepts it.
  void NegotiateGzip(const http::HttpRequest& req, StreamState& s) const;
  void HandleCancel(const ExchangePtr& ex);

  // ag_ui_handlers.cc: POST /api/ag-ui (docs/PROTOCOLS.md, "AG-UI").
  void HandleAgUi(const ExchangePtr& ex);

  // ai_sdk_handlers.cc: the AI SDK's UI message stream (docs/PROTOCOLS.md).
  // POST /api/ai-sdk/chat: a new run of the chat's last user message.
  void HandleAiSdkChat(const ExchangePtr& ex);
  // GET /api/ai-sdk/chat/{chatId}/stream: the chat's run again (replayed
  // from its start, or continued after Last-Event-ID), 204 when none is
  // left to send.
  void HandleAiSdkReconnect(const ExchangePtr& ex);
  // The encoder of a stream of `run_id` for `chat_id`, which keeps the chat
  // index told: `new_run` becomes the chat's run when its stream starts;
  // every stream that is sent to the end marks the run's end.
  std::unique_ptr<StreamEncoder> AiSdkStream(
      const OnBehalfOf& who, const std::string& chat_id,
      const std::string& run_id, bool new_run,
      std::optional<uint64_t> resume_after);

  // a2a_handlers.cc: A2A (docs/PROTOCOLS.md, "A2A").
  void HandleA2aCard(const ExchangePtr& ex);
  void HandleA2aRpc(const ExchangePtr& ex);
  // A message's chat request, or nullopt once its JSON-RPC error is sent.
  struct A2aChat {
    dialects::A2aMessage message;
    ChatRequest chat;
  };
  std::optional<A2aChat> ParseA2aChat(const ExchangePtr& ex,
                                      const dialects::A2aRequest& rpc,
                                      const std::string& correlation_id);
  // SendMessage: starts the run and answers its task at once.
  void A2aSend(const ExchangePtr& ex, const dialects::A2aRequest& rpc,
               const std::string& correlation_id, const OnBehalfOf& who);
  void A2aSendStreaming(const ExchangePtr& ex, const dialects::A2aRequest& rpc,
                        const std::string& correlation_id,
                        const OnBehalfOf& who);
  void A2aSubscribe(const ExchangePtr& ex, const dialects::A2aRequest& rpc,
                    const std::string& task_id, const OnBehalfOf& who);
  void A2aGetTask(const ExchangePtr& ex, const dialects::A2aRequest& rpc,
                  const std::string& task_id, const OnBehalfOf& who);
  void A2aCancelTask(const ExchangePtr& ex, const dialects::A2aRequest& rpc,
                     const std::string& task_id, const OnBehalfOf& who);
  // What run `run_id`'s log holds now (an Attach with replay_only), within
  // a bounded wait; the orchestrator's status when it refuses.
  absl::StatusOr<std::vector<agentstream::v1::Update>> ReadRunLog(
      const std::string& run_id, const OnBehalfOf& who);
  void SendA2a(const ExchangePtr& ex, const dialects::Json& body,
               const std::string& request_id) const;

  const GatewayOptions options_;
  const std::shared_ptr<OrchestratorClient> client_;
  const Clock* const clock_;

  GatewayMetrics metrics_;
  // Null until Start().
  std::unique_ptr<auth::Authenticator> auth_;
  ClientLimiter limiter_;
  // A2A: the contextIds clients gave their tasks.
  dialects::A2aContexts a2a_contexts_;
  http::TrustedProxies trusted_proxies_;
  std::atomic<bool> stopping_{false};
  // The AI SDK's chats -> their runs (shared with the streams' encoders).
  std::shared_ptr<dialects::ChatIndex> ai_sdk_chats_ =
      std::make_shared<dialects::ChatIndex>(dialects::ChatIndexOptions{},
                                            clock_);
  // Declared before server_: the server's event loop calls into live
  // streams, so it stops (and joins) before they and the timers go.
  TimerQueue timers_;
  LiveStreamContext live_context_;
  absl::Mutex live_mu_;
  absl::flat_hash_map<LiveStream*, std::shared_ptr<LiveStream>> live_
      ABSL_GUARDED_BY(live_mu_);
  std::unique_ptr<http::HttpServer> server_;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_SERVER_IMPL_H_
