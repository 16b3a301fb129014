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
#include "common/http/server_impl.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace agentstream::http {
namespace {

constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = 1;
constexpr int kMaxEvents = 256;
constexpr int kMaxAcceptsPerWake = 256;

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
