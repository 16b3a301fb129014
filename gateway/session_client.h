// The gateway's side of Orchestrator.Session (docs/CONTRACT.md, "Sessions"):
// every Run and Attach stream as a stream of one long gRPC call, so that an
// open SSE stream costs the gateway no gRPC call of its own.
//
// A SessionPool keeps a few Session calls (kSessions) and opens each stream
// on the next in turn; when a call ends (the orchestrator went away,
// restarted), its streams end with the call's status, as their own calls
// would have, and the next stream on that slot opens a new call. Each
// stream is a RunStream like the per-call ones (orchestrator_client.h):
// updates queue in it, and its owner takes them; the orchestrator sends a
// stream no more than its window (GrpcOrchestratorClientOptions::
// queue_max_bytes) ahead of what the owner took, so the queue is bounded
// without the call ever pausing its reads.
//
// An orchestrator that does not serve Session (UNIMPLEMENTED) gets the
// per-call forms instead: the streams waiting on that session are started
// again through `fallback`, and the pool remembers.
//
// Thread-safe.
#ifndef AGENTSTREAM_GATEWAY_SESSION_CLIENT_H_
#define AGENTSTREAM_GATEWAY_SESSION_CLIENT_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "gateway/call_counter.h"
#include "gateway/metrics.h"
#include "gateway/orchestrator_client.h"

namespace agentstream::gateway {

class SessionCall;

class SessionPool {
 public:
  // `stub` and `calls` must outlive the pool and every stream it opened.
  // `counters` (may be null) count the updates received and queued.
  SessionPool(agentstream::v1::Orchestrator::Stub* stub, CallCounter& calls,
              uint64_t window_bytes,
              std::shared_ptr<UpstreamCounters> counters);
  ~SessionPool();

  // Opens `open` (its stream number is set here) on the current session.
  // `fallback` starts the same stream as its own call; it is used when the
  // orchestrator has no Session method. Never null.
  std::unique_ptr<RunStream> Open(
      agentstream::v1::SessionOpen open,
      std::function<std::unique_ptr<RunStream>()> fallback);

  // False once an orchestrator answered UNIMPLEMENTED to Session.
  bool supported() const { return supported_.load(); }

  // Cancels the current call (the streams on it end kCancelled).
  void Shutdown();

 private:
  std::shared_ptr<SessionCall> Current();

  agentstream::v1::Orchestrator::Stub* const stub_;
  CallCounter& calls_;
  const uint64_t window_bytes_;
  const std::shared_ptr<UpstreamCounters> counters_;
  std::atomic<bool> supported_{true};
  absl::Mutex mu_;
  // The sessions streams are opened on, in turn: one call is read by one
  // thread at a time on each side, so a burst of opens (each starts a run)
  // or a saturated load would queue behind a single one.
  static constexpr size_t kSessions = 4;
  std::array<std::shared_ptr<SessionCall>, kSessions> calls_in_use_
      ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_SESSION_CLIENT_H_
