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
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/connection.h"
#include "common/http/handler_threads.h"
#include "common/http/http_message.h"
#include "common/http/response_writer.h"
#include "common/http/router.h"
#include "common/http/server_impl.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace agentstream::http {
namespace {

constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = 1;
// Bytes of pipelined requests read while an earlier one is being answered;
// reading pauses past it (TCP then holds the client back).
constexpr size_t kMaxPipelinedBytes = 64 * 1024;
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

HttpServer::Impl::Impl(HttpServerOptions options)
    : options_(std::move(options)),
      handlers_(options_.max_handler_threads, options_.handler_stack_bytes,
                options_.max_waiting_requests) {
  if (!options_.error_response) options_.error_response = DefaultErrorResponse;
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
