// Internal to the SDK: one Analyze or AnalyzeBatched call of a
// SpecialistService (specialist_service.h), defined here so that the service
// and its calls live in files of their own. Not for specialist authors.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_CALL_H_
#define AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_CALL_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "specialists/sdk/specialist_service.h"

namespace agentstream::specialists {

// One Analyze or AnalyzeBatched call: the analysis, its queue and the stream.
//
// Lifetime: reference counted. gRPC holds one reference until OnDone; a
// blocking analysis queued or running on the pool holds one; a scheduled
// timer holds one; any method that may end the call holds one while it runs.
// The RPC is finished once the analysis has ended and the queue is drained
// (or the stream is gone).
class SpecialistService::Call : public UpdateSink::Target {
 public:
  Call(SpecialistService* service, grpc::CallbackServerContext* context,
       const AnalyzeRequest* request)
      : queue_(service->limits_.stream),
        service_(service),
        context_(context),
        request_(request) {}
  ~Call() override {
    absl::MutexLock lock(&mu_);
    // What was never written leaves the queued gauge with the call.
    service_->metrics_->QueuedChanged(-published_depth_);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Validates, registers and starts the analysis (from the RPC handler).
  void Begin();
  // Trips the token; an asynchronous analysis that waits ends at once.
  void Cancel(const std::string& reason);

 protected:
  // Reactions, forwarded by the typed reactor.
  void WriteDone(bool ok);
  void Done();

  // The framing: take the next message from queue_ (under mu_), write it
  // (without mu_), finish the RPC (without mu_).
  virtual bool TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // Frees the last message written and the queue's storage (the stream
  // went idle).
  virtual void ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  virtual void WriteTaken() = 0;
  virtual void FinishRpc(const grpc::Status& status) = 0;
  // The hop emitted_at -> handed to gRPC (docs/METRICS.md), for a message
  // about to be written: one clock read per message.
  template <typename Message>
  void HandingToGrpc(const Message& message);

  absl::Mutex mu_;
  StreamQueue queue_ ABSL_GUARDED_BY(mu_);

 private:
  // Where an asynchronous analysis is between steps.
  enum class Phase {
    kStarting,        // Before its first step.
    kStepping,        // A thread runs (or is about to run) its step.
    kTimer,           // Waits for timer_id_.
    kBlocked,         // Waits for room in the queue.
    kUntilCancelled,  // Waits for cancellation only.
    kEnded,
  };

  // UpdateSink::Target methods
  bool Write(agentstream::v1::Update&& update) override {
    return service_->async_ != nullptr ? PushAsync(std::move(update))
                                       : PushBlocking(std::move(update));
  }
  // A blocking analysis is held back inside Write instead.
  bool HasRoom() override {
    if (service_->async_ == nullptr) return true;
    absl::MutexLock lock(&mu_);
    return queue_.HasRoom();
  }

  bool PushBlocking(agentstream::v1::Update&& update);
  bool PushAsync(agentstream::v1::Update&& update);
  // The client's deadline, on the SDK's timer thread (gRPC's deadline filter
  // is left off the server's stack: it held per-call state whether or not a
  // call had a deadline). At the deadline the analysis is cancelled and the
  // RPC too, as the filter did, a reader that is behind included.
  void StartDeadline();
  void DeadlineFired();
  // Frees the request's contents once an asynchronous analysis has started
  // (it keeps what it needs: AsyncSpecialist::Start's contract), so that a
  // live run does not hold its options and texts for as long as it lasts.
  void ReleaseRequest();
  void RunBlocking();
  // What a step emitted goes out together once it returns: one message
  // (AnalyzeBatched) or one coalesced transport write (Analyze) per step,
  // rather than its first update alone and the rest after it.
  void FlushStep();
  void RunSteps();
  void TimerFired();
  void EndAnalysis(const absl::Status& status);
  // The metrics' queued_updates follows queue_ (after every change of it).
  void PublishDepthLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t depth = queue_.queued_updates();
    if (depth == published_depth_) return;
    service_->metrics_->QueuedChanged(depth - published_depth_);
    published_depth_ = depth;
  }
  // Whether to finish the RPC now; marks it finished if so.
  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!analysis_done_ || finished_ || queue_.writing()) return false;
    if (!queue_.idle() && !broken_) return false;
    finished_ = true;
    return true;
  }

  SpecialistService* const service_;
  grpc::CallbackServerContext* const context_;
  const AnalyzeRequest* const request_;  // gRPC's, valid until OnDone.
  std::atomic<int> refs_{1};             // gRPC's.
  int64_t id_ = -1;                      // In service_->in_flight_.
  CancelToken token_;
  std::optional<UpdateSink> sink_;  // Its stamp holds the request id.
  std::unique_ptr<AsyncAnalysis> analysis_;
  absl::Time start_;

  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kStarting;
  TimerThread::Id timer_id_ ABSL_GUARDED_BY(mu_);
  // Only for a call with a deadline.
  std::unique_ptr<TimerThread::Id> deadline_timer_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone ran: context_ goes.
  bool deadline_firing_ ABSL_GUARDED_BY(mu_) = false;  // Uses context_.
  bool broken_ ABSL_GUARDED_BY(mu_) = false;           // A write failed.
  bool analysis_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Converted only when the RPC is finished: an absl::Status is a word
  // while OK, a grpc::Status always three (it is kept for the whole call).
  absl::Status final_ ABSL_GUARDED_BY(mu_);
  int64_t published_depth_ ABSL_GUARDED_BY(mu_) = 0;
};

template <typename Message>
void SpecialistService::Call::HandingToGrpc(const Message& message) {
  metrics::HopBatch hop(service_->metrics_->hop_to_write(),
                        metrics::WallNanos());
  if constexpr (std::is_same_v<Message, agentstream::v1::UpdateBatch>) {
    for (const agentstream::v1::Update& u : message.updates())
      hop.Add(u.emitted_at());
  } else {
    hop.Add(message.emitted_at());
  }
}

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_CALL_H_
