// HttpServer::Impl's per-connection I/O, run on the event loop (Loop() and
// Accept() in server.cc hand it the ready connections): reading and parsing
// requests, dispatching them to routes, the server's own error answers,
// writing what exchanges queued, keep-alive and lingering, the connection's
// epoll events and deadlines, and closing.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/connection.h"
#include "common/http/handler_threads.h"
#include "common/http/http_message.h"
#include "common/http/request_parser.h"
#include "common/http/response_writer.h"
#include "common/http/router.h"
#include "common/http/server.h"
#include "common/http/server_impl.h"

namespace agentstream::http {
namespace {

// Bytes of pipelined requests read while an earlier one is being answered;
// reading pauses past it (TCP then holds the client back).
constexpr size_t kMaxPipelinedBytes = 64 * 1024;
// After the last response of a connection the server closes, what the
// client still sends is read and dropped for up to this long, so that
// closing does not reset the connection before the client read the answer
// (a close with unread input sends RST, which can discard it).
constexpr absl::Duration kLingerTime = absl::Seconds(2);

}  // namespace

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

}  // namespace agentstream::http
