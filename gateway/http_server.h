// The gateway's HTTP server: a thin adapter on agentstream's own HTTP/1.1
// server (common/http/server.h) that turns requests into calls on the
// OrchestratorClient and RunChatStream.
//
// With authentication on (GatewayOptions::auth), every /api/* request needs
// a valid credential (401 with WWW-Authenticate otherwise) and acts for its
// principal: the runs it starts are its own, and those of others answer 404
// (docs/SECURITY.md).
//
// Endpoints: GET/POST /api/chat/stream (SSE: a new run, or a resumed one
// with Last-Event-ID / last_event_id=), GET /api/runs/{id}/stream (SSE:
// attach, ?after=SEQ), DELETE /api/runs/{id} (cancel), GET /api/specialists,
// GET /healthz, GET /readyz, GET /metrics, GET / and static files from the
// web root; A2A's GET /.well-known/agent-card.json and POST /api/a2a
// (a2a_handlers.cc, docs/PROTOCOLS.md). Unknown paths are 404, known paths with
// another method 405 with Allow; every error has a JSON body. See
// docs/GATEWAY.md.
//
// The handlers live in three files by responsibility: http_server.cc
// (lifecycle, routing, small endpoints), stream_handlers.cc (new runs and the
// SSE response), runs_handlers.cc (existing runs: resume, attach, cancel).
//
// Every resource a client can make it spend is bounded (docs/GATEWAY.md,
// "Limits"): the HTTP server's limits and deadlines, bytes queued per stream,
// streams per gateway (503) and, per client, open streams and run starts
// (429). A stream runs on a handler thread; /healthz, /metrics and static
// files are answered on the event loop, so they answer while every stream
// slot is taken.
//
// Thread-safe. Start() once; Stop() (or the destructor) ends every stream
// with a retryable `error` (no `done`: the runs go on in the orchestrator and
// clients resume them elsewhere) and joins every thread.
#ifndef AGENTSTREAM_GATEWAY_HTTP_SERVER_H_
#define AGENTSTREAM_GATEWAY_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/request_parser.h"
#include "gateway/auth/auth_options.h"
#include "gateway/chat_request.h"
#include "gateway/client_limits.h"
#include "gateway/metrics.h"
#include "gateway/orchestrator_client.h"

namespace agentstream::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: an ephemeral port (see GatewayServer::port()).
  absl::Duration heartbeat_interval = absl::Seconds(15);
  int64_t retry_ms = 2000;
  int64_t max_streams = 10000;
  // How long a new stream waits for the orchestrator's first update (or its
  // failure) before answering 503.
  absl::Duration first_update_timeout = absl::Seconds(10);
  // How long an attach (resume, second observer) waits for the
  // orchestrator's first answer before answering 503. The orchestrator
  // answers at once either way: it accepts (initial metadata, also for a
  // live run with nothing new to send) or refuses (unknown run, gap, bad
  // seq); an orchestrator that is down fails the call at once. So this only
  // bounds an orchestrator that is stuck or unreachable without a refusal.
  absl::Duration attach_first_answer_wait = absl::Seconds(5);
  // Deadline of the Cancel call behind DELETE /api/runs/{id}.
  absl::Duration cancel_timeout = absl::Seconds(5);
  // A client that takes no bytes for this long is dropped (the stream ends
  // as a disconnect).
  absl::Duration write_timeout = absl::Seconds(30);
  std::string web_root;
  int listen_backlog = 4096;
  // Stack of each handler thread. Nothing a request holds recurses by its
  // input (docs/GATEWAY.md, "Limits").
  size_t thread_stack_bytes = 128 * 1024;
  // Handler threads, for the short requests that block on the orchestrator
  // (/api/specialists, /readyz, DELETE). Streams hold none: they start on
  // the event loop and are driven by events (docs/GATEWAY.md, "Threads").
  int64_t handler_threads = 64;
  // compress=1: updates whose JSON is larger than this go gzipped in an
  // envelope (stream_format.h).
  size_t compress_min_bytes = kDefaultCompressMinBytes;
  // Whether a stream whose client sends `Accept-Encoding: gzip` is sent
  // gzip-encoded (one deflate stream, sync-flushed after every write; some
  // 16 KiB more per stream: docs/GATEWAY.md, "Compression").
  bool stream_gzip = false;
  // Sent as Retry-After on every 503.
  int retry_after_seconds = 2;
  absl::Duration readiness_timeout = absl::Seconds(1);

  // Bounds of the HTTP layer (docs/GATEWAY.md, "Limits").
  http::HttpLimits limits{.max_body_bytes = kMaxPostBodyBytes};
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(15);
  absl::Duration idle_timeout = absl::Seconds(60);
  size_t max_connections = 20000;
  size_t max_connections_per_client = 512;
  // Unsent bytes a stream may queue for a slow client; past it the stream
  // waits (and the orchestrator is held back by gRPC flow control).
  size_t max_stream_buffer_bytes = 1024 * 1024;
  ClientLimitOptions client_limits;
  // Proxies whose X-Forwarded-For names the client (addresses or prefixes,
  // e.g. "127.0.0.1", "10.0.0.0/8"); none by default.
  std::vector<std::string> trusted_proxies;
  // Authentication of /api/* (docs/SECURITY.md); off by default. /healthz
  // and the web client's files stay open; /metrics and /readyz ask for the
  // metrics scope when these say so.
  auth::AuthOptions auth;
  bool auth_metrics = false;
  bool auth_readyz = false;
  // A2A (docs/PROTOCOLS.md): the URL clients reach the gateway at
  // ("https://agents.example.com"), named in the agent card; empty: the
  // request's Host, over http.
  std::string public_url;
};

class GatewayServer final {
 public:
  GatewayServer(GatewayOptions options,
                std::shared_ptr<OrchestratorClient> orchestrator,
                const Clock* clock = Clock::Real());
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  // Binds and starts serving on a background thread. kUnavailable when the
  // address cannot be bound; kInvalidArgument for bad trusted proxies or
  // authentication settings (unreadable key or token files).
  absl::Status Start();
  // The bound port (after Start()).
  int port() const;
  void Stop();

  const GatewayMetrics& metrics() const;

 private:
  class Impl;
  const std::unique_ptr<Impl> impl_;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_HTTP_SERVER_H_
