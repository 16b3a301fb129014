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
// A call older than `max_age` is retired when its slot's turn comes: the
// slot gets a new call (round robin may place it on another orchestrator
// replica, so that one added since gets streams too), and the old one takes
// no new stream and half-closes once its last stream has ended; none of its
// streams is cut.
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
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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
  // `max_age` zero: calls are never retired.
  SessionPool(agentstream::v1::Orchestrator::Stub* stub, CallCounter& calls,
              uint64_t window_bytes, absl::Duration max_age,
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

  // Cancels every call, retired ones too (their streams end kCancelled).
  void Shutdown();

 private:
  std::shared_ptr<SessionCall> Current();

  agentstream::v1::Orchestrator::Stub* const stub_;
  CallCounter& calls_;
  const uint64_t window_bytes_;
  const absl::Duration max_age_;
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
  // Calls retired while streams remained on them (Shutdown cancels them).
  std::vector<std::weak_ptr<SessionCall>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_SESSION_CLIENT_H_
