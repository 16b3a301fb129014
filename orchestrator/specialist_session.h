// The orchestrator's side of Specialist.AnalyzeSession (docs/CONTRACT.md,
// "Specialist sessions"): many analyses as streams of a few long gRPC
// calls, so that an analysis that waits costs neither side a call, and the
// updates of many runs share messages.
//
// Per endpoint, kSessions calls take new streams in turn; each takes them
// for kRotationAge only, and only so many (kMinRotationStreams, or
// 1/kRotationShare of the streams open when it started, whichever is more),
// and then drains (it is let go once its last stream ended), so that
// round_robin places the next call on another replica and a replica added
// later gets calls soon. The count keeps a burst spread over the replicas
// as calls of their own would be: one replica is ahead by at most
// kSessions calls' worth of streams, a few streams at low load and some
// 6% of them at high load, where fewer, fuller calls save the most.
//
// A stream behaves as its own AnalyzeBatched call would for its observer
// (AnalyzeObserver): each message's updates of it at once, serialized, then
// OnDone exactly once, with the frame's `end`, CANCELLED after Cancel(), or the
// session's status when the session ends first (UNAVAILABLE if it ended OK;
// INTERNAL when the specialist sent a malformed message, which ends the
// session). Credit goes back as the observer consumes (kCreditFraction of the
// window), so a stream never holds more than its window in flight.
//
// A specialist without AnalyzeSession (UNIMPLEMENTED before any frame):
// every stream opened on that session is started again through `fallback`
// (the per-call AnalyzeBatched / Analyze) with the same observer, which
// had received nothing, and every later analysis goes there directly.
//
// Thread-safe.
#ifndef AGENTSTREAM_ORCHESTRATOR_SPECIALIST_SESSION_H_
#define AGENTSTREAM_ORCHESTRATOR_SPECIALIST_SESSION_H_

#include <grpcpp/channel.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "orchestrator/specialist_client.h"

namespace agentstream::orchestrator {

class SpecialistSessionCall;

class SpecialistSessions {
 public:
  using Fallback = std::function<std::unique_ptr<AnalyzeCall>(
      const agentstream::v1::AnalyzeRequest&,
      std::shared_ptr<AnalyzeObserver>)>;

  // Calls that take new streams at a time: one call is read by one thread
  // at a time on each side, so a burst would queue behind a single one.
  static constexpr size_t kSessions = 4;
  // How long a call takes new streams (then it drains).
  static constexpr absl::Duration kRotationAge = absl::Seconds(1);
  // How many streams a call takes (then it drains): at least
  // kMinRotationStreams, and 1/kRotationShare of those open at its start.
  static constexpr uint64_t kMinRotationStreams = 2;
  static constexpr uint64_t kRotationShare = 64;
  // Each stream's window (AnalyzeSessionOpen.window_bytes).
  static constexpr uint64_t kWindowBytes = uint64_t{1} << 20;
  // Credit goes back once this share of the window was consumed.
  static constexpr uint64_t kCreditFraction = 4;

  // `clock` (never null) decides the rotation. `channel` must outlive this.
  SpecialistSessions(std::shared_ptr<grpc::Channel> channel, Fallback fallback,
                     Clock* clock);
  // Cancels every call (the streams still on them end CANCELLED) and waits
  // (at most 5 s) until gRPC is done with them, so that the channel is not
  // let go on one of gRPC's threads (which frees what that thread uses).
  ~SpecialistSessions();

  // As SpecialistClient::Analyze. Never returns null.
  std::unique_ptr<AnalyzeCall> Analyze(
      const agentstream::v1::AnalyzeRequest& request,
      std::shared_ptr<AnalyzeObserver> observer);

  // False once the endpoint answered UNIMPLEMENTED (tests).
  bool supported() const;
  // AnalyzeSession calls started so far (tests).
  uint64_t calls_started() const;

  // What the calls share with this (it may go first).
  struct Shared;

 private:
  std::shared_ptr<SpecialistSessionCall> Pick();

  const std::shared_ptr<Shared> shared_;
  absl::Mutex mu_;
  std::array<std::shared_ptr<SpecialistSessionCall>, kSessions> slots_
      ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_SPECIALIST_SESSION_H_
