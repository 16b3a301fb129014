// Exchange (declared in server.h): how a handler answers, from any thread,
// by queueing bytes on its Connection (connection.h) and telling the event
// loop (server_impl.h) what it needs.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/connection.h"
#include "common/http/http_message.h"
#include "common/http/response_writer.h"
#include "common/http/router.h"
#include "common/http/server.h"
#include "common/http/server_impl.h"

namespace agentstream::http {

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

}  // namespace agentstream::http
