// agentstream's HTTP/1.1 server: one epoll event loop that owns every socket
// (accepting, reading, parsing, deadlines, writing what handlers queued),
// and handler threads for handlers that block. Built for long-lived streams
// (Server-Sent Events) next to short requests, with every resource a client
// can make it spend bounded (docs/HTTP.md):
//
//   request line, header bytes and count, body bytes  414 / 431 / 413
//   time to send a request's head, then its body      408, then close
//   time a keep-alive connection may idle             close
//   time a response may wait for a client to read     close
//   bytes queued per response                         Write() says kFull
//   connections in all, and per client address       503 / 429, then close
//   handler threads, and requests waiting for one     503
//
// HTTP done right: pipelined requests are answered in order (one at a time
// per connection; what arrives meanwhile waits, bounded); HTTP/1.0 clients
// get Content-Length or a body ended by closing, never chunked framing; HEAD
// runs a GET route only when the route allows it (router.h), and gets no
// body; a known path asked with another method is 405 with Allow.
//
// Handlers run on a handler thread, or, when the route says `inline`, on the
// event loop itself (for answers that never block: /healthz, /metrics, files
// in memory). A handler answers through its Exchange, from any thread, at
// any time until it does: Respond() once, or StartStream() then Write() and
// End(). An exchange dropped without an answer is answered 500.
//
// Thread-safe. Start() once; Stop() closes the listener, gives running
// exchanges `drain_timeout` to end, closes every connection and joins.
#ifndef AGENTSTREAM_COMMON_HTTP_SERVER_H_
#define AGENTSTREAM_COMMON_HTTP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http/client_address.h"
#include "common/http/http_message.h"
#include "common/http/request_parser.h"
#include "common/http/router.h"

namespace agentstream::http {

class Connection;
class HttpServer;

// One request and its response. Shared by the server and the handler; every
// method is thread-safe.
class Exchange final {
 public:
  enum class WriteResult {
    kOk,      // Queued (and sent as far as the socket took it).
    kFull,    // Nothing queued: the response already holds its bound of
              // unsent bytes. WaitWritable(), then write again.
    kClosed,  // The client is gone (or the exchange ended): nothing queued.
  };

  Exchange(std::shared_ptr<Connection> connection, HttpRequest request,
           Router::Match match, size_t max_queued_bytes);
  ~Exchange();  // Answers 500 if nothing was answered; ends a stream.
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const HttpRequest& request() const { return request_; }
  // A path parameter captured by the route ({id}), or "".
  std::string_view param(std::string_view name) const {
    return RouteParam(match_, name);
  }
  // A HEAD request served by a GET route: the body is never sent.
  bool head() const { return match_.head; }

  // The whole response. False when already answered or the client is gone.
  bool Respond(HttpResponse response);
  // Starts a streaming response: chunked for HTTP/1.1, ended by closing for
  // HTTP/1.0. False when already answered or the client is gone.
  bool StartStream(int status, const HttpHeaders& headers);
  // Body bytes of a stream, flushed at once (no byte waits for another).
  WriteResult Write(std::string_view bytes);
  // Waits until the queued bytes fall to half the bound (true), or the
  // client is gone or `timeout` passed (false).
  bool WaitWritable(absl::Duration timeout);
  // Event-driven forms of WaitWritable() and closed(), for a stream that
  // holds no thread. `callback` runs once: for NotifyWritable, when the
  // queued bytes fall to half the bound or the client is gone (at once, on
  // the caller's thread, if that is already so; replaces an earlier waiter);
  // for OnClose, when the client is gone (at once if it is). Otherwise it
  // runs on the event loop, outside every lock of the server: it must not
  // block (Write() is fine). End() drops both.
  void NotifyWritable(std::function<void()> callback);
  void OnClose(std::function<void()> callback);
  // Ends a stream (the last chunk, or closing for HTTP/1.0). Idempotent.
  void End();
  // Whether the client is gone (closed, reset, or its connection was closed
  // for a deadline or by Stop()).
  bool closed() const;
  size_t queued_bytes() const;

 private:
  friend class HttpServer;
  const std::shared_ptr<Connection> connection_;
  const HttpRequest request_;
  const Router::Match match_;
  const size_t max_queued_bytes_;
  std::atomic<int> stage_{0};  // 0 unanswered, 1 streaming, 2 done.
};

using Handler = std::function<void(std::shared_ptr<Exchange>)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port (see HttpServer::port()).
  int listen_backlog = 4096;
  HttpLimits limits;
  // From a connection's first byte of a request (or its accept) to the end
  // of the request's head; then 408 and close (a connection that sent no
  // byte is closed without an answer).
  absl::Duration header_timeout = absl::Seconds(10);
  // From the end of the head to the end of the body; then 408 and close.
  absl::Duration body_timeout = absl::Seconds(15);
  // A keep-alive connection between requests; then closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  // A response with unsent bytes whose client takes none for this long:
  // the connection is closed.
  absl::Duration write_timeout = absl::Seconds(30);
  // Open connections at most; more are answered 503 and closed.
  size_t max_connections = 20000;
  // Open connections per client address (0: no bound); more are answered
  // 429 and closed. Peers in `exempt_proxies` are not counted.
  size_t max_connections_per_address = 1024;
  TrustedProxies exempt_proxies;
  // Unsent bytes a response may queue before Write() reports kFull.
  size_t max_queued_response_bytes = 1024 * 1024;
  // Handler threads at most, their stack, and requests that may wait for
  // one (more: 503).
  size_t max_handler_threads = 1024;
  size_t handler_stack_bytes = 256 * 1024;
  size_t max_waiting_requests = 1024;
  // How long Stop() lets running exchanges end before closing connections.
  absl::Duration drain_timeout = absl::Seconds(5);
  // The response the server makes itself (400, 404, 405, 408, 413, 414,
  // 429, 431, 500, 503, ...): `request` is null when no request line was
  // read. Default: {"error": <reason>, "message": ...} as JSON.
  std::function<HttpResponse(int status, std::string_view message,
                             const HttpRequest* request)>
      error_response;
  // Called once per answered request (from any thread) with its status.
  std::function<void(const HttpRequest& request, int status)> on_response;
  // Retry-After (seconds) on the server's own 503s and 429s.
  int retry_after_seconds = 2;
};

struct HttpServerStats {
  int64_t connections_open = 0;
  int64_t connections_total = 0;
  int64_t connections_refused = 0;  // max_connections / per address.
  int64_t requests_total = 0;
  int64_t header_timeouts = 0;
  int64_t body_timeouts = 0;
  int64_t write_timeouts = 0;
  int64_t parse_errors = 0;
  int64_t handler_threads = 0;
  int64_t handler_threads_busy = 0;
};

class HttpServer final {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes: before Start(). `inline_handler`: run on the event loop (must
  // never block). `serves_head`: a GET route that may answer HEAD.
  struct RouteOptions {
    bool inline_handler = false;
    bool serves_head = false;
  };
  void Route(std::string_view method, std::string_view pattern, Handler handler,
             RouteOptions options);
  void Route(std::string_view method, std::string_view pattern,
             Handler handler) {
    Route(method, pattern, std::move(handler), RouteOptions{});
  }

  // Binds, listens and starts the event loop. kUnavailable when the address
  // cannot be bound; kInvalidArgument for a bad route.
  absl::Status Start();
  int port() const;
  void Stop();

  HttpServerStats stats() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_SERVER_H_
