#include "common/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http/handler_threads.h"
#include "common/http/response_writer.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace agentstream::http {
namespace {

constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = 1;
// Bytes of pipelined requests read while an earlier one is being answered;
// reading pauses past it (TCP then holds the client back).
constexpr size_t kMaxPipelinedBytes = 64 * 1024;
// A send buffer larger than this is given back once it empties.
constexpr size_t kKeepBufferCapacity = 64 * 1024;
constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr int kMaxEvents = 256;
constexpr int kMaxAcceptsPerWake = 256;
// After the last response of a connection the server closes, what the
// client still sends is read and dropped for up to this long, so that
// closing does not reset the connection before the client read the answer
// (a close with unread input sends RST, which can discard it).
constexpr absl::Duration kLingerTime = absl::Seconds(2);

HttpResponse DefaultErrorResponse(int status, std::string_view message,
                                  const HttpRequest*) {
  HttpResponse r;
  r.status = status;
  r.headers.Add("Content-Type", "application/json");
  r.headers.Add("Cache-Control", "no-store");
  r.body = nlohmann::json{{"error", std::string(ReasonPhrase(status))},
                          {"message", std::string(message)}}
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

PeerAddress PeerOf(const sockaddr_storage& addr) {
  PeerAddress peer;
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    peer.port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    }
    peer.port = ntohs(a->sin6_port);
  }
  peer.ip = buf;
  return peer;
}

}  // namespace

// What the event loop is told by other threads.
enum class Note { kWantWrite, kResponseDone };

// One accepted connection. The event loop owns the socket's reading, its
// deadlines and its closing; any thread may queue bytes and send them (under
// `mu`), so a stream's event leaves without a hop through the loop.
class Connection final {
 public:
  Connection(HttpServer::Impl* server, uint64_t id, int fd, PeerAddress peer,
             std::string counted_address, const HttpLimits& limits)
      : server(server),
        id(id),
        fd(fd),
        peer(std::move(peer)),
        counted_address(std::move(counted_address)),
        parser(limits) {}

  HttpServer::Impl* const server;
  const uint64_t id;
  const int fd;  // Valid while `open`; closed by the loop only.
  const PeerAddress peer;
  const std::string counted_address;  // "" when not counted per address.

  mutable absl::Mutex mu;
  absl::CondVar writable;
  bool open ABSL_GUARDED_BY(mu) = true;
  bool gone ABSL_GUARDED_BY(mu) = false;
  std::string out ABSL_GUARDED_BY(mu);
  size_t out_off ABSL_GUARDED_BY(mu) = 0;
  // The loop was told to watch for writability (or does).
  bool write_posted ABSL_GUARDED_BY(mu) = false;
  // The current response: how its body is framed, whether it was all
  // queued, and whether the connection ends with it.
  BodyFraming framing ABSL_GUARDED_BY(mu) = BodyFraming::kContentLength;
  bool drop_body ABSL_GUARDED_BY(mu) = false;
  bool response_complete ABSL_GUARDED_BY(mu) = false;
  bool close_after_response ABSL_GUARDED_BY(mu) = false;
  // Exchange::NotifyWritable's waiter (one-shot; called by the loop once at
  // most `writable_at` bytes are unsent, or the connection closes) and
  // Exchange::OnClose's (called once by Close()). Both run outside `mu`.
  std::function<void()> on_writable ABSL_GUARDED_BY(mu);
  size_t writable_at ABSL_GUARDED_BY(mu) = 0;
  std::function<void()> on_close ABSL_GUARDED_BY(mu);

  size_t UnsentLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return out.size() - out_off;
  }
  // Sends what the socket takes. False when the peer is gone.
  bool FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (open && !gone && UnsentLocked() > 0) {
      const ssize_t n = ::send(fd, out.data() + out_off, UnsentLocked(),
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      gone = true;
    }
    if (UnsentLocked() == 0) {
      out.clear();
      out_off = 0;
      if (out.capacity() > kKeepBufferCapacity) out.shrink_to_fit();
    } else if (out_off > kKeepBufferCapacity && out_off * 2 > out.size()) {
      out.erase(0, out_off);
      out_off = 0;
    }
    writable.SignalAll();
    return open && !gone;
  }

  // Loop-only state.
  enum class Phase { kIdle, kReading, kHandling, kClosing, kLingering };
  Phase phase = Phase::kIdle;
  bool fresh = true;  // No request started on it yet.
  RequestParser parser;
  bool body_deadline_set = false;
  std::string pending;  // Pipelined bytes read while handling.
  bool reading = true;
  bool epollout = false;
  absl::Time phase_deadline = absl::InfiniteFuture();
  absl::Time write_deadline = absl::InfiniteFuture();
  absl::Time timer_key = absl::InfiniteFuture();
};

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(std::move(options)),
        handlers_(options_.max_handler_threads, options_.handler_stack_bytes,
                  options_.max_waiting_requests) {
    if (!options_.error_response)
      options_.error_response = DefaultErrorResponse;
  }
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

  void Loop();
  void Accept();
  void Refuse(int fd, int status, std::string_view message);
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

// --- Exchange -------------------------------------------------------------

Exchange::Exchange(std::shared_ptr<Connection> connection, HttpRequest request,
                   Router::Match match, size_t max_queued_bytes)
    : connection_(std::move(connection)),
      request_(std::move(request)),
      match_(std::move(match)),
      max_queued_bytes_(std::max<size_t>(max_queued_bytes, 1)) {}

Exchange::~Exchange() {
  if (stage_.load() == 0) {
    Respond(connection_->server->ErrorResponse(
        500, "the handler ended without an answer", &request_));
  } else {
    End();
  }
  connection_->server->ExchangeEnded();
}

bool Exchange::Respond(HttpResponse response) {
  int expected = 0;
  if (!stage_.compare_exchange_strong(expected, 2)) return false;
  HttpServer::Impl* server = connection_->server;
  bool delivered;
  {
    Connection& c = *connection_;
    absl::MutexLock lock(&c.mu);
    const bool keep_alive = request_.keep_alive && !server->stopping();
    const bool has_body = StatusHasBody(response.status);
    ResponseHead head{
        .status = response.status,
        .headers = &response.headers,
        .framing = has_body ? BodyFraming::kContentLength : BodyFraming::kNone,
        .content_length = response.body.size(),
        .keep_alive = keep_alive};
    AppendResponseHead(head, &c.out);
    // A HEAD answer never has a body, whatever its status.
    if (has_body && request_.method != "HEAD") c.out.append(response.body);
    c.close_after_response = !keep_alive;
    c.response_complete = true;
    delivered = c.FlushLocked();
  }
  server->CountResponse(request_, response.status);
  server->Post(connection_->id, Note::kResponseDone);
  return delivered;
}

bool Exchange::StartStream(int status, const HttpHeaders& headers) {
  int expected = 0;
  if (!stage_.compare_exchange_strong(expected, 1)) return false;
  HttpServer::Impl* server = connection_->server;
  bool delivered;
  bool posted = false;
  {
    Connection& c = *connection_;
    absl::MutexLock lock(&c.mu);
    const bool http11 = request_.version_minor == 1;
    c.framing = match_.head ? BodyFraming::kNone
                : http11    ? BodyFraming::kChunked
                            : BodyFraming::kUntilClose;
    c.drop_body = match_.head;
    const bool keep_alive =
        http11 && request_.keep_alive && !server->stopping();
    ResponseHead head{.status = status,
                      .headers = &headers,
                      .framing = c.framing,
                      .keep_alive = keep_alive};
    AppendResponseHead(head, &c.out);
    c.close_after_response =
        !keep_alive || c.framing == BodyFraming::kUntilClose;
    delivered = c.FlushLocked();
    if (c.UnsentLocked() > 0 && !c.write_posted) {
      c.write_posted = true;
      posted = true;
    }
  }
  server->CountResponse(request_, status);
  if (posted) server->Post(connection_->id, Note::kWantWrite);
  return delivered;
}

Exchange::WriteResult Exchange::Write(std::string_view bytes) {
  if (stage_.load() != 1) return WriteResult::kClosed;
  bool posted = false;
  WriteResult result = WriteResult::kOk;
  {
    Connection& c = *connection_;
    absl::MutexLock lock(&c.mu);
    if (!c.open || c.gone) return WriteResult::kClosed;
    if (c.drop_body || bytes.empty()) return WriteResult::kOk;
    const size_t unsent = c.UnsentLocked();
    if (unsent >= max_queued_bytes_) return WriteResult::kFull;
    if (c.framing == BodyFraming::kChunked) {
      AppendChunk(bytes, &c.out);
    } else {
      c.out.append(bytes);
    }
    // Behind bytes already waiting, the loop sends when the socket drains.
    if (unsent == 0 && !c.FlushLocked()) result = WriteResult::kClosed;
    if (c.UnsentLocked() > 0 && !c.write_posted) {
      c.write_posted = true;
      posted = true;
    }
  }
  if (posted) connection_->server->Post(connection_->id, Note::kWantWrite);
  return result;
}

bool Exchange::WaitWritable(absl::Duration timeout) {
  Connection& c = *connection_;
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&c.mu);
  while (c.open && !c.gone && c.UnsentLocked() > max_queued_bytes_ / 2) {
    if (c.writable.WaitWithDeadline(&c.mu, deadline)) break;
  }
  return c.open && !c.gone && c.UnsentLocked() <= max_queued_bytes_ / 2;
}

void Exchange::NotifyWritable(std::function<void()> callback) {
  {
    Connection& c = *connection_;
    absl::MutexLock lock(&c.mu);
    if (c.open && !c.gone && c.UnsentLocked() > max_queued_bytes_ / 2) {
      c.on_writable = std::move(callback);
      c.writable_at = max_queued_bytes_ / 2;
      return;
    }
  }
  callback();
}

void Exchange::OnClose(std::function<void()> callback) {
  {
    Connection& c = *connection_;
    absl::MutexLock lock(&c.mu);
    if (c.open && !c.gone) {
      c.on_close = std::move(callback);
      return;
    }
  }
  callback();
}

void Exchange::End() {
  int expected = 1;
  if (!stage_.compare_exchange_strong(expected, 2)) return;
  std::function<void()> on_writable;
  std::function<void()> on_close;
  {
    Connection& c = *connection_;
    absl::MutexLock lock(&c.mu);
    // The next exchange on this connection starts with no waiters; they are
    // destroyed outside the lock.
    on_writable.swap(c.on_writable);
    on_close.swap(c.on_close);
    if (c.framing == BodyFraming::kChunked) c.out.append(kLastChunk);
    c.response_complete = true;
    if (c.UnsentLocked() > 0 && !c.write_posted) c.FlushLocked();
  }
  connection_->server->Post(connection_->id, Note::kResponseDone);
}

bool Exchange::closed() const {
  absl::MutexLock lock(&connection_->mu);
  return !connection_->open || connection_->gone;
}

size_t Exchange::queued_bytes() const {
  absl::MutexLock lock(&connection_->mu);
  return connection_->UnsentLocked();
}

// --- The event loop ---------------------------------------------------------

absl::Status HttpServer::Impl::Start() {
  if (!route_error_.ok()) return route_error_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const std::string port_text = std::to_string(options_.port);
  const int gai =
      getaddrinfo(options_.host.empty() ? nullptr : options_.host.c_str(),
                  port_text.c_str(), &hints, &result);
  if (gai != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", options_.host,
                                               ": ", gai_strerror(gai)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        ::listen(fd, options_.listen_backlog) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(result);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot bind ", options_.host, ":", options_.port, ": ", last_error));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port_ = PeerOf(addr).port;
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("epoll/eventfd: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  read_buf_ = std::make_unique<char[]>(kReadBufferBytes);
  started_ = true;
  loop_thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void HttpServer::Impl::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (!started_.load()) {
    handlers_.Shutdown();
    return;
  }
  close_listener_ = true;
  Post(0, Note::kWantWrite);  // Wakes the loop to close the listener.
  const absl::Time deadline = absl::Now() + options_.drain_timeout;
  while (active_exchanges_.load() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  quit_ = true;
  Post(0, Note::kWantWrite);
  if (loop_thread_.joinable()) loop_thread_.join();
  // Handlers still running see their connections closed and end.
  handlers_.Shutdown();
  for (int* fd : {&epoll_fd_, &wake_fd_, &spare_fd_, &listen_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void HttpServer::Impl::Loop() {
  std::vector<epoll_event> events(kMaxEvents);
  while (!quit_.load()) {
    int timeout_ms = 1000;
    if (!timers_.empty()) {
      const absl::Duration until = timers_.begin()->first - absl::Now();
      timeout_ms = static_cast<int>(
          std::clamp<int64_t>(absl::ToInt64Milliseconds(until) + 1, 0, 1000));
    }
    const int n = epoll_wait(epoll_fd_, events.data(), kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) {
      AS_LOG(ERROR) << "epoll_wait: " << std::strerror(errno);
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      const uint32_t ev = events[i].events;
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      if (tag == kWakeTag) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof(count));
        continue;
      }
      auto it = connections_.find(tag);
      if (it == connections_.end()) continue;
      std::shared_ptr<Connection> c = it->second;
      if (ev & (EPOLLERR | EPOLLHUP)) {
        Close(c);
        continue;
      }
      if (ev & EPOLLOUT) OnWritable(c);
      if ((ev & EPOLLIN) && c->reading) {
        OnReadable(c);
      } else if (ev & EPOLLRDHUP) {
        // The client closed while nothing is read from it (a response is
        // being written, or pipelined bytes fill their bound).
        Close(c);
      }
    }
    std::vector<std::pair<uint64_t, Note>> notes;
    {
      absl::MutexLock lock(&notes_mu_);
      notes.swap(notes_);
    }
    for (const auto& [id, note] : notes) OnNote(id, note);
    if (close_listener_.exchange(false) && listen_fd_ >= 0) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      ::close(listen_fd_);
      listen_fd_ = -1;
    }
    const absl::Time now = absl::Now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      const uint64_t id = timers_.begin()->second;
      timers_.erase(timers_.begin());
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      it->second->timer_key = absl::InfiniteFuture();
      OnDeadline(it->second, now);
    }
  }
  // Quit: every connection is closed; handlers see closed().
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [id, c] : connections_) all.push_back(c);
  for (auto& c : all) Close(c);
}

void HttpServer::Impl::Refuse(int fd, int status, std::string_view message) {
  connections_refused_.fetch_add(1);
  HttpResponse r = ErrorResponse(status, message, nullptr);
  std::string bytes;
  AppendResponseHead({.status = r.status,
                      .headers = &r.headers,
                      .framing = BodyFraming::kContentLength,
                      .content_length = r.body.size(),
                      .keep_alive = false},
                     &bytes);
  bytes.append(r.body);
  [[maybe_unused]] ssize_t n =
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

void HttpServer::Impl::Accept() {
  for (int i = 0; i < kMaxAcceptsPerWake && listen_fd_ >= 0; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr),
                             &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
        // Out of files: take the connection with the spare descriptor and
        // close it, so that it does not wait in the backlog forever.
        ::close(spare_fd_);
        const int doomed =
            ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (doomed >= 0) ::close(doomed);
        spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        connections_refused_.fetch_add(1);
        AS_LOG(WARNING) << "out of file descriptors: a connection was closed";
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        AS_LOG(WARNING) << "accept: " << std::strerror(errno);
      }
      return;
    }
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    PeerAddress peer = PeerOf(addr);
    if (connections_.size() >= options_.max_connections) {
      Refuse(fd, 503, "too many open connections; retry later");
      continue;
    }
    std::string counted;
    if (options_.max_connections_per_address > 0 &&
        !options_.exempt_proxies.Contains(peer.ip)) {
      size_t& count = per_address_[peer.ip];
      if (count >= options_.max_connections_per_address) {
        Refuse(fd, 429,
               absl::StrCat("more than ", options_.max_connections_per_address,
                            " open connections from one address"));
        continue;
      }
      ++count;
      counted = peer.ip;
    }
    auto c = std::make_shared<Connection>(this, next_id_++, fd, std::move(peer),
                                          std::move(counted), options_.limits);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      AS_LOG(WARNING) << "epoll_ctl: " << std::strerror(errno);
      if (!c->counted_address.empty()) --per_address_[c->counted_address];
      ::close(fd);
      continue;
    }
    connections_.emplace(c->id, c);
    connections_open_.fetch_add(1);
    connections_total_.fetch_add(1);
    c->phase_deadline = absl::Now() + options_.header_timeout;
    UpdateTimer(c);
    // The request has usually arrived by the time its connection is
    // accepted (a client writes right after connecting): read it now
    // rather than a poll later. A burst of short requests (503s past
    // --max-streams) is answered in one pass of the loop.
    OnReadable(c);
  }
}

void HttpServer::Impl::OnReadable(const std::shared_ptr<Connection>& c) {
  for (int i = 0; i < 16 && c->reading; ++i) {
    const ssize_t n = ::recv(c->fd, read_buf_.get(), kReadBufferBytes, 0);
    if (n > 0) {
      const std::string_view data(read_buf_.get(), static_cast<size_t>(n));
      if (c->phase == Connection::Phase::kLingering) {
        // Dropped.
        if (static_cast<size_t>(n) < kReadBufferBytes) return;
        continue;
      }
      if (c->phase == Connection::Phase::kHandling) {
        c->pending.append(data);
        if (c->pending.size() >= kMaxPipelinedBytes) {
          c->reading = false;
          UpdateEvents(c);
        }
      } else if (c->phase != Connection::Phase::kClosing) {
        ProcessInput(c, data);
      }
      if (static_cast<size_t>(n) < kReadBufferBytes) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // End of input or an error.
    if (n == 0 && c->phase == Connection::Phase::kReading) {
      // A request cut short by a half-close: refused at once.
      ServerError(c, 400, "the connection ended inside a request", nullptr);
      return;
    }
    if (n == 0 && c->phase == Connection::Phase::kClosing) {
      c->reading = false;  // Our answer is still being written.
      UpdateEvents(c);
      return;
    }
    Close(c);
    return;
  }
}

void HttpServer::Impl::ProcessInput(const std::shared_ptr<Connection>& c,
                                    std::string_view data) {
  while (!data.empty()) {
    if (c->phase == Connection::Phase::kIdle) {
      c->phase = Connection::Phase::kReading;
      c->fresh = false;
      c->body_deadline_set = false;
      c->phase_deadline = absl::Now() + options_.header_timeout;
      UpdateTimer(c);
    }
    const size_t consumed = c->parser.Feed(data);
    data.remove_prefix(consumed);
    const RequestParser::State state = c->parser.state();
    if (state == RequestParser::State::kError) {
      parse_errors_.fetch_add(1);
      const HttpRequest* partial =
          c->parser.request().method.empty() ? nullptr : &c->parser.request();
      ServerError(c, c->parser.error().status, c->parser.error().message,
                  partial);
      return;
    }
    if ((state == RequestParser::State::kBody ||
         state == RequestParser::State::kDone) &&
        !c->body_deadline_set) {
      c->body_deadline_set = true;
      if (state == RequestParser::State::kBody) {
        c->phase_deadline = absl::Now() + options_.body_timeout;
        UpdateTimer(c);
        if (c->parser.request().expect_continue) {
          absl::MutexLock lock(&c->mu);
          c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
          c->FlushLocked();
        }
      }
    }
    if (state == RequestParser::State::kDone) {
      c->pending.assign(data);
      if (c->pending.size() >= kMaxPipelinedBytes && c->reading) {
        c->reading = false;
        UpdateEvents(c);
      }
      Dispatch(c);
      return;
    }
  }
}

void HttpServer::Impl::Dispatch(const std::shared_ptr<Connection>& c) {
  HttpRequest request = std::move(c->parser.request());
  request.peer = c->peer;
  c->phase = Connection::Phase::kHandling;
  c->phase_deadline = absl::InfiniteFuture();
  UpdateTimer(c);
  requests_total_.fetch_add(1);
  active_exchanges_.fetch_add(1);

  Router::Match match;
  if (request.path == "*") {
    match.kind = Router::Match::Kind::kOptions;
    match.allow = "DELETE, GET, HEAD, OPTIONS, POST";
  } else {
    match = router_.Find(request.method, request.path);
  }
  const Router::Match::Kind kind = match.kind;
  const size_t route = match.route;
  const std::string allow = match.allow;
  auto exchange =
      std::make_shared<Exchange>(c, std::move(request), std::move(match),
                                 options_.max_queued_response_bytes);
  switch (kind) {
    case Router::Match::Kind::kNotFound:
      exchange->Respond(ErrorResponse(
          404,
          absl::StrCat("no such resource: ", exchange->request().method, " ",
                       exchange->request().path),
          &exchange->request()));
      return;
    case Router::Match::Kind::kMethodNotAllowed: {
      HttpResponse r = ErrorResponse(
          405,
          absl::StrCat(exchange->request().method, " is not allowed on ",
                       exchange->request().path, " (allowed: ", allow, ")"),
          &exchange->request());
      r.headers.Set("Allow", allow);
      exchange->Respond(std::move(r));
      return;
    }
    case Router::Match::Kind::kOptions: {
      HttpResponse r;
      r.status = 204;
      r.headers.Set("Allow", allow);
      exchange->Respond(std::move(r));
      return;
    }
    case Router::Match::Kind::kFound:
      break;
  }
  const RouteEntry& entry = routes_[route];
  if (entry.options.inline_handler) {
    entry.handler(std::move(exchange));
    return;
  }
  Handler handler = entry.handler;
  if (!handlers_.Submit(
          [handler, exchange]() mutable { handler(std::move(exchange)); })) {
    exchange->Respond(ErrorResponse(503, "the server is busy; retry later",
                                    &exchange->request()));
  }
}

void HttpServer::Impl::ServerError(const std::shared_ptr<Connection>& c,
                                   int status, std::string_view message,
                                   const HttpRequest* request) {
  if (status == 408) {
    (c->parser.state() == RequestParser::State::kBody ? body_timeouts_
                                                      : header_timeouts_)
        .fetch_add(1);
  }
  HttpResponse r = ErrorResponse(status, message, request);
  c->phase = Connection::Phase::kClosing;
  c->phase_deadline = absl::InfiniteFuture();
  c->pending.clear();
  bool drained;
  {
    absl::MutexLock lock(&c->mu);
    AppendResponseHead({.status = r.status,
                        .headers = &r.headers,
                        .framing = BodyFraming::kContentLength,
                        .content_length = r.body.size(),
                        .keep_alive = false},
                       &c->out);
    if (request == nullptr || request->method != "HEAD") c->out.append(r.body);
    c->response_complete = true;
    c->close_after_response = true;
    c->FlushLocked();
    drained = c->UnsentLocked() == 0 || c->gone;
  }
  if (options_.on_response) {
    HttpRequest placeholder;
    options_.on_response(request != nullptr ? *request : placeholder, status);
  }
  if (drained) {
    Linger(c);
    return;
  }
  ArmWrite(c);
}

void HttpServer::Impl::Linger(const std::shared_ptr<Connection>& c) {
  {
    absl::MutexLock lock(&c->mu);
    if (c->gone) {
      Close(c);
      return;
    }
  }
  ::shutdown(c->fd, SHUT_WR);
  c->phase = Connection::Phase::kLingering;
  c->pending.clear();
  c->reading = true;
  c->epollout = false;
  UpdateEvents(c);
  c->write_deadline = absl::InfiniteFuture();
  c->phase_deadline = absl::Now() + kLingerTime;
  UpdateTimer(c);
}

void HttpServer::Impl::ArmWrite(const std::shared_ptr<Connection>& c) {
  {
    absl::MutexLock lock(&c->mu);
    if (!c->open) return;
    if (c->UnsentLocked() == 0) {
      c->write_posted = false;
      return;
    }
    c->write_posted = true;
  }
  if (!c->epollout) {
    c->epollout = true;
    c->write_deadline = absl::Now() + options_.write_timeout;
    UpdateEvents(c);
    UpdateTimer(c);
  }
}

void HttpServer::Impl::OnWritable(const std::shared_ptr<Connection>& c) {
  bool finished = false;
  bool gone = false;
  bool drained = false;
  std::function<void()> on_writable;
  {
    absl::MutexLock lock(&c->mu);
    const size_t before = c->UnsentLocked();
    gone = !c->FlushLocked();
    drained = c->UnsentLocked() == 0;
    if (!gone && !drained && c->UnsentLocked() < before) {
      c->write_deadline = absl::Now() + options_.write_timeout;
    }
    if (!gone && drained) {
      c->write_posted = false;
      finished = c->response_complete;
    }
    if (c->on_writable && !gone && c->UnsentLocked() <= c->writable_at) {
      on_writable.swap(c->on_writable);
    }
  }
  if (on_writable) on_writable();
  if (gone) {
    Close(c);
    return;
  }
  if (drained && c->epollout) {
    c->epollout = false;
    c->write_deadline = absl::InfiniteFuture();
    UpdateEvents(c);
  }
  UpdateTimer(c);
  if (finished) FinishExchange(c);
}

void HttpServer::Impl::OnNote(uint64_t id, Note note) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  std::shared_ptr<Connection> c = it->second;
  if (note == Note::kWantWrite) {
    ArmWrite(c);
    return;
  }
  // kResponseDone: finish now if everything was sent, else when it is.
  bool drained;
  bool gone;
  {
    absl::MutexLock lock(&c->mu);
    gone = c->gone;
    drained = c->UnsentLocked() == 0;
    if (!drained) c->write_posted = true;
  }
  if (gone) {
    Close(c);
    return;
  }
  if (drained) {
    FinishExchange(c);
  } else {
    ArmWrite(c);
  }
}

void HttpServer::Impl::FinishExchange(const std::shared_ptr<Connection>& c) {
  if (c->phase == Connection::Phase::kClosing) {
    Linger(c);
    return;
  }
  if (c->phase != Connection::Phase::kHandling) return;
  bool close;
  {
    absl::MutexLock lock(&c->mu);
    if (!c->response_complete) return;
    close = c->close_after_response || stopping();
    c->response_complete = false;
    c->close_after_response = false;
    c->framing = BodyFraming::kContentLength;
    c->drop_body = false;
  }
  if (close) {
    Linger(c);
    return;
  }
  c->parser.Reset();
  c->phase = Connection::Phase::kIdle;
  c->phase_deadline = absl::Now() + options_.idle_timeout;
  UpdateTimer(c);
  if (!c->reading) {
    c->reading = true;
    UpdateEvents(c);
  }
  if (!c->pending.empty()) {
    std::string input;
    input.swap(c->pending);
    ProcessInput(c, input);
  }
}

void HttpServer::Impl::UpdateEvents(const std::shared_ptr<Connection>& c) {
  epoll_event ev{};
  ev.events =
      EPOLLRDHUP | (c->reading ? EPOLLIN : 0u) | (c->epollout ? EPOLLOUT : 0u);
  ev.data.u64 = c->id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
}

void HttpServer::Impl::UpdateTimer(const std::shared_ptr<Connection>& c) {
  const absl::Time next = std::min(c->phase_deadline, c->write_deadline);
  if (next == c->timer_key) return;
  if (c->timer_key != absl::InfiniteFuture()) {
    timers_.erase({c->timer_key, c->id});
  }
  c->timer_key = next;
  if (next != absl::InfiniteFuture()) timers_.insert({next, c->id});
}

void HttpServer::Impl::OnDeadline(const std::shared_ptr<Connection>& c,
                                  absl::Time now) {
  if (c->write_deadline <= now) {
    write_timeouts_.fetch_add(1);
    Close(c);
    return;
  }
  if (c->phase_deadline > now) {
    UpdateTimer(c);
    return;
  }
  switch (c->phase) {
    case Connection::Phase::kIdle:
      Close(c);  // Nothing was sent on it: no answer is owed.
      return;
    case Connection::Phase::kReading: {
      const bool body = c->parser.state() == RequestParser::State::kBody;
      ServerError(
          c, 408,
          body ? absl::StrCat("the request body did not arrive within ",
                              absl::FormatDuration(options_.body_timeout))
               : absl::StrCat("the request head did not arrive within ",
                              absl::FormatDuration(options_.header_timeout)),
          body ? &c->parser.request() : nullptr);
      return;
    }
    case Connection::Phase::kLingering:
      Close(c);
      return;
    case Connection::Phase::kHandling:
    case Connection::Phase::kClosing:
      return;
  }
}

void HttpServer::Impl::Close(const std::shared_ptr<Connection>& c) {
  auto it = connections_.find(c->id);
  if (it == connections_.end()) return;
  std::function<void()> on_writable;
  std::function<void()> on_close;
  {
    absl::MutexLock lock(&c->mu);
    c->open = false;
    c->gone = true;
    c->out.clear();
    c->out.shrink_to_fit();
    c->out_off = 0;
    c->writable.SignalAll();
    on_writable.swap(c->on_writable);
    on_close.swap(c->on_close);
  }
  // The exchange's owner learns at once that its client is gone (it may
  // write again and see kClosed; nothing it does re-enters the loop).
  if (on_writable) on_writable();
  if (on_close) on_close();
  if (c->timer_key != absl::InfiniteFuture()) {
    timers_.erase({c->timer_key, c->id});
    c->timer_key = absl::InfiniteFuture();
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  // The caller may still hold `c` in this round of events: nothing more is
  // read from (or armed on) the closed descriptor.
  c->reading = false;
  c->epollout = false;
  c->phase = Connection::Phase::kClosing;
  if (!c->counted_address.empty()) {
    auto pa = per_address_.find(c->counted_address);
    if (pa != per_address_.end() && --pa->second == 0) per_address_.erase(pa);
  }
  c->pending.clear();
  c->pending.shrink_to_fit();
  connections_.erase(it);
  connections_open_.fetch_sub(1);
}

HttpServerStats HttpServer::Impl::stats() const {
  HttpServerStats s;
  s.connections_open = connections_open_.load();
  s.connections_total = connections_total_.load();
  s.connections_refused = connections_refused_.load();
  s.requests_total = requests_total_.load();
  s.header_timeouts = header_timeouts_.load();
  s.body_timeouts = body_timeouts_.load();
  s.write_timeouts = write_timeouts_.load();
  s.parse_errors = parse_errors_.load();
  s.handler_threads = static_cast<int64_t>(handlers_.thread_count());
  s.handler_threads_busy = static_cast<int64_t>(handlers_.busy_count());
  return s;
}

// --- HttpServer
// ---------------------------------------------------------------

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpServer::~HttpServer() { Stop(); }
void HttpServer::Route(std::string_view method, std::string_view pattern,
                       Handler handler, RouteOptions options) {
  impl_->Route(method, pattern, std::move(handler), options);
}
absl::Status HttpServer::Start() { return impl_->Start(); }
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop() { impl_->Stop(); }
HttpServerStats HttpServer::stats() const { return impl_->stats(); }

}  // namespace agentstream::http
