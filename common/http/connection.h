// Internal to common/http, not part of its API (server.h is): one accepted
// connection of the HTTP server, shared by the event loop
// (HttpServer::Impl, server_impl.h; its I/O in connection_io.cc) and the
// Exchanges answering on it (exchange.cc). The loop owns the socket's reading,
// deadlines and closing; an Exchange queues and sends response bytes under `mu`
// and tells the loop what it needs with HttpServer::Impl::Post(id, Note).
#ifndef AGENTSTREAM_COMMON_HTTP_CONNECTION_H_
#define AGENTSTREAM_COMMON_HTTP_CONNECTION_H_

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_message.h"
#include "common/http/request_parser.h"
#include "common/http/response_writer.h"
#include "common/http/server.h"

namespace agentstream::http {

// A send buffer larger than this is given back once it empties.
inline constexpr size_t kKeepBufferCapacity = 64 * 1024;

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

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_CONNECTION_H_
