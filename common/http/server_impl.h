// Internal to common/http, not part of its API (server.h is): the
// declaration of HttpServer::Impl, the event loop. Its definitions are split
// by responsibility: server.cc starts and stops the server and runs the loop
// (listening, accepting, refusing, stats); connection_io.cc does each
// connection's I/O (reading, dispatching, writing, deadlines, closing). It
// is a header also so that Exchange (exchange.cc) can reach what it needs of
// the server: Post() to wake the loop, ErrorResponse(), CountResponse(),
// stopping() and ExchangeEnded().
#ifndef AGENTSTREAM_COMMON_HTTP_SERVER_IMPL_H_
#define AGENTSTREAM_COMMON_HTTP_SERVER_IMPL_H_

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/connection.h"
#include "common/http/handler_threads.h"
#include "common/http/http_message.h"
#include "common/http/router.h"
#include "common/http/server.h"

namespace agentstream::http {

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options);
  ~Impl() { Stop(); }

  void Route(std::string_view method, std::string_view pattern, Handler handler,
             RouteOptions route_options) {
    const size_t id = routes_.size();
    routes_.push_back({std::move(handler), route_options});
    if (absl::Status s =
            router_.Add(method, pattern, id, route_options.serves_head);
        !s.ok() && route_error_.ok()) {
      route_error_ = s;
    }
  }

  absl::Status Start();
  void Stop();
  int port() const { return port_; }
  HttpServerStats stats() const;

  // From any thread.
  void Post(uint64_t id, Note note) {
    {
      absl::MutexLock lock(&notes_mu_);
      notes_.emplace_back(id, note);
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  const HttpServerOptions& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  void CountResponse(const HttpRequest& request, int status) {
    if (options_.on_response) options_.on_response(request, status);
  }
  HttpResponse ErrorResponse(int status, std::string_view message,
                             const HttpRequest* request) const {
    HttpResponse r = options_.error_response(status, message, request);
    if (status == 503 || status == 429) {
      r.headers.Set("Retry-After",
                    std::to_string(options_.retry_after_seconds));
    }
    return r;
  }
  void ExchangeEnded() { active_exchanges_.fetch_sub(1); }

 private:
  struct RouteEntry {
    Handler handler;
    RouteOptions options;
  };

  // The loop's one read buffer (read_buf_): Start() allocates it and
  // OnReadable() fills it.
  static constexpr size_t kReadBufferBytes = 64 * 1024;

  // server.cc
  void Loop();
  void Accept();
  void Refuse(int fd, int status, std::string_view message);

  // connection_io.cc
  void OnReadable(const std::shared_ptr<Connection>& c);
  void ProcessInput(const std::shared_ptr<Connection>& c,
                    std::string_view data);
  void Dispatch(const std::shared_ptr<Connection>& c);
  void ServerError(const std::shared_ptr<Connection>& c, int status,
                   std::string_view message, const HttpRequest* request);
  void OnWritable(const std::shared_ptr<Connection>& c);
  void OnNote(uint64_t id, Note note);
  void FinishExchange(const std::shared_ptr<Connection>& c);
  void ArmWrite(const std::shared_ptr<Connection>& c);
  void UpdateEvents(const std::shared_ptr<Connection>& c);
  void UpdateTimer(const std::shared_ptr<Connection>& c);
  void OnDeadline(const std::shared_ptr<Connection>& c, absl::Time now);
  void Close(const std::shared_ptr<Connection>& c);
  // Half-closes, then drops what the client still sends (kLingerTime).
  void Linger(const std::shared_ptr<Connection>& c);

  HttpServerOptions options_;
  Router router_;
  std::vector<RouteEntry> routes_;
  absl::Status route_error_;
  HandlerThreads handlers_;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int spare_fd_ = -1;  // Given up to accept-and-close when out of files.
  int port_ = 0;
  std::thread loop_thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> quit_{false};
  std::atomic<bool> close_listener_{false};
  std::atomic<int64_t> active_exchanges_{0};
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;

  absl::Mutex notes_mu_;
  std::vector<std::pair<uint64_t, Note>> notes_ ABSL_GUARDED_BY(notes_mu_);

  // Loop-only.
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::unordered_map<std::string, size_t> per_address_;
  std::set<std::pair<absl::Time, uint64_t>> timers_;
  uint64_t next_id_ = 2;
  std::unique_ptr<char[]> read_buf_;

  // Stats.
  std::atomic<int64_t> connections_open_{0};
  std::atomic<int64_t> connections_total_{0};
  std::atomic<int64_t> connections_refused_{0};
  std::atomic<int64_t> requests_total_{0};
  std::atomic<int64_t> header_timeouts_{0};
  std::atomic<int64_t> body_timeouts_{0};
  std::atomic<int64_t> write_timeouts_{0};
  std::atomic<int64_t> parse_errors_{0};
};

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_SERVER_IMPL_H_
