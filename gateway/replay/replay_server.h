// The replay server's HTTP adapter (docs/CLIENT.md, "Mock server"): the
// gateway's stream endpoints on common/http's server, answered from
// recordings (recording.h) with the plans and pacing of replay_plan.h.
//
//   GET /api/chat/stream?message=...[&run=ID]   a recorded run from the start
//       (+ Last-Event-ID / last_event_id=: a resume)
//   POST /api/chat/stream                       the same, a JSON body
//   GET /api/runs/{id}/stream[?after=N]          the run, or a resume
//   DELETE /api/runs/{id}                        409 (a recording has ended)
//   GET /api/recordings                          what is served
//   GET /healthz                                 {"status":"ok"}
//
// Each stream runs on one handler thread of the HTTP server and waits
// between events on its own deadline (at most ReplayOptions::max_gap or a
// heartbeat interval), ending at once when the client goes or the server
// stops. Streams beyond `max_streams`: 503 + Retry-After.
//
// Thread-safe. Start() once; Stop() ends every stream (a retryable
// `unavailable` error, like the gateway stopping) and joins.
#ifndef AGENTSTREAM_GATEWAY_REPLAY_REPLAY_SERVER_H_
#define AGENTSTREAM_GATEWAY_REPLAY_REPLAY_SERVER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/server.h"
#include "gateway/replay/recording.h"
#include "gateway/replay/replay_plan.h"

namespace agentstream::gateway::replay {

struct ReplayServerOptions {
  std::string host = "127.0.0.1";
  int port = 8090;  // 0: an ephemeral port.
  ReplayOptions replay;
  size_t max_streams = 256;
  // A client that takes no bytes for this long is dropped.
  absl::Duration write_timeout = absl::Seconds(30);
  size_t max_stream_buffer_bytes = 1024 * 1024;
};

class ReplayServer final {
 public:
  ReplayServer(ReplayServerOptions options,
               std::unique_ptr<RecordingLibrary> library,
               const Clock* clock = Clock::Real());
  ~ReplayServer();
  ReplayServer(const ReplayServer&) = delete;
  ReplayServer& operator=(const ReplayServer&) = delete;

  absl::Status Start();
  int port() const;
  void Stop();

 private:
  struct Waker;
  using ExchangePtr = std::shared_ptr<http::Exchange>;

  void HandleChat(const ExchangePtr& ex, bool is_post);
  void HandleRun(const ExchangePtr& ex);
  void HandleCancel(const ExchangePtr& ex);
  void HandleList(const ExchangePtr& ex);
  // Plans and plays one stream (on the handler thread).
  void Serve(const ExchangePtr& ex, const Recording* recording,
             const ReplayRequest& request);
  void Play(const ExchangePtr& ex, ReplayPlan plan,
            const ReplayRequest& request);
  // Writes `bytes`, waiting for a slow client up to the write timeout.
  bool WriteAll(const ExchangePtr& ex, const std::string& bytes);
  void SendError(const ExchangePtr& ex, const absl::Status& status,
                 std::string_view request_id) const;

  const ReplayServerOptions options_;
  const std::unique_ptr<RecordingLibrary> library_;
  const Clock* const clock_;
  std::unique_ptr<http::HttpServer> server_;
  std::atomic<size_t> open_streams_{0};
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::shared_ptr<Waker>> wakers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway::replay

#endif  // AGENTSTREAM_GATEWAY_REPLAY_REPLAY_SERVER_H_
