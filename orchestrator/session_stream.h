// One Orchestrator.Session call (docs/CONTRACT.md, "Sessions"): many Run and
// Attach streams over one gRPC call, so that an open stream costs the
// orchestrator a LogFollower and a few hundred bytes instead of a gRPC call
// (some 12 KiB each: docs/BENCHMARKS.md, "Issue 11").
//
// Each stream is a LogFollower whose Sink is this session: a Send is queued,
// and goes out in the next message with whatever other streams have queued
// (frames of many streams per message, up to kMaxMessageBytes, at least
// one); its write completes when that message has been written AND the
// stream's unacknowledged bytes are below its window. So a client that
// grants no credit for a stream (its reader is slow) holds that stream's
// follower exactly as HTTP/2 flow control holds a RunBatched call's: the
// follower lags, coalesces progress, and is cut off as slow_consumer past
// --follower-max-lag, while every other stream on the session flows.
//
// Requests are handled as they are read, in order: an open starts the run
// (or attaches) at once and answers `accepted`, or an `end` frame with the
// status the single-call form would have ended with; a close cancels the
// stream as its call's cancellation would (the run's disconnect policy
// applies). A malformed request, a stream number of 0 or one used before
// ends the whole session with INVALID_ARGUMENT. When the client half-closes
// or goes away, every stream is closed, and the call finishes once they
// have all ended.
//
// Thread-safe: gRPC's reactions and the followers' calls (from any thread)
// meet under one mutex, never held while calling gRPC or a follower.
#ifndef AGENTSTREAM_ORCHESTRATOR_SESSION_STREAM_H_
#define AGENTSTREAM_ORCHESTRATOR_SESSION_STREAM_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "orchestrator/caller.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run_log.h"
#include "orchestrator/run_manager.h"

namespace agentstream::orchestrator {

struct SessionLimits {
  // A stream's window when its open asks for none, and the most it may ask.
  static constexpr uint64_t kDefaultWindowBytes = uint64_t{1} << 20;
  static constexpr uint64_t kMaxWindowBytes = uint64_t{16} << 20;
  // A message carries frames up to this size (at least one frame).
  static constexpr size_t kMaxMessageBytes = size_t{256} << 10;
  // Streams open at once on one session; an open beyond is refused with
  // RESOURCE_EXHAUSTED (its end frame), the session goes on.
  static constexpr size_t kMaxStreams = 100'000;
};

class SessionStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `options`: the followers' (batched: max_batch_bytes set). `metrics` may
  // be null. The manager must outlive the call. `resolve` gives each
  // stream's caller from its open's metadata (null: a trusted anonymous
  // caller, as in tests).
  SessionStream(RunManager* manager, OrchestratorMetrics* metrics,
                FollowerOptions options, CallerResolver resolve = nullptr);
  ~SessionStream() override;

  // Starts reading requests.
  void Begin();

  // grpc::ServerBidiReactor methods
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class Stream;
  // What to do outside the lock once it is released.
  struct Actions;

  void HandleRequest(const grpc::ByteBuffer& buffer, Actions& actions);
  void Open(const agentstream::v1::SessionOpen& open, Actions& actions);
  // Called by a Stream (its follower's Sink calls).
  void OnSend(Stream* stream,
              absl::Span<const std::shared_ptr<const LogEntry>> entries);
  void OnEnd(Stream* stream, const absl::Status& status);

  void QueueLocked(Stream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the next message into `out_` when none is in flight and there is
  // something to send; true when a write is to be started.
  bool NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes a stream (the client let go of it): no more frames, its follower
  // cancelled; retired at once when it has ended.
  void CloseLocked(Stream* stream, Actions& actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes every stream (the client is gone or half-closed).
  void CloseAllLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets a stream whose follower has ended and whose end was sent (or
  // needs none).
  void RetireLocked(Stream* stream, Actions& actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FinishDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(Actions& actions);

  RunManager* const manager_;
  OrchestratorMetrics* const metrics_;
  const FollowerOptions options_;
  const CallerResolver resolve_;

  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Stream>> streams_
      ABSL_GUARDED_BY(mu_);
  // Numbers used in this session, so that none is reused.
  uint64_t highest_seen_ ABSL_GUARDED_BY(mu_) = 0;
  // Streams with something to send, in the order they had it.
  std::deque<std::shared_ptr<Stream>> ready_ ABSL_GUARDED_BY(mu_);
  // The streams whose frames are in the write in flight.
  std::vector<std::shared_ptr<Stream>> in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // A write failed: no more.
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_ ABSL_GUARDED_BY(mu_);

  grpc::ByteBuffer in_;   // Between StartRead and OnReadDone.
  grpc::ByteBuffer out_;  // Between StartWrite and OnWriteDone.
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_SESSION_STREAM_H_
