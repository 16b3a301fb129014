#include "specialists/sdk/specialist_call.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/log.h"

namespace agentstream::specialists {
namespace {

using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;

std::string RequestIdOf(const grpc::CallbackServerContext& context,
                        const AnalyzeRequest& request) {
  if (!request.request_id().empty()) return request.request_id();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("x-request-id");
  if (it != metadata.end())
    return std::string(it->second.data(), it->second.size());
  return "";
}

// The CancelToken's reason when the client's deadline passed.
constexpr char kDeadlineReason[] = "deadline exceeded";

const char* OutcomeWord(AnalysisOutcome outcome) {
  switch (outcome) {
    case AnalysisOutcome::kOk:
      return "ok";
    case AnalysisOutcome::kCancelled:
      return "cancelled";
    case AnalysisOutcome::kFailed:
      return "failed";
  }
  return "?";
}

}  // namespace

namespace {

template <typename Message>
class Reactor final : public SpecialistService::Call,
                      public grpc::ServerWriteReactor<Message> {
 public:
  using SpecialistService::Call::Call;

  // grpc::ServerWriteReactor methods
  void OnWriteDone(bool ok) override { WriteDone(ok); }
  void OnCancel() override { Cancel("client cancelled"); }
  void OnDone() override { Done(); }

 private:
  bool TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) override {
    if (queue_.writing() || !queue_.more_pending()) return false;
    if (out_ == nullptr) out_ = std::make_unique<Message>();
    queue_.TakeNext(out_.get());
    more_ = queue_.more_pending();
    return true;
  }
  void ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) override {
    out_.reset();
    queue_.Shrink();
  }
  // out_ and more_ are touched only by the holder of the write in flight.
  void WriteTaken() override {
    grpc::WriteOptions options;
    // More follow at once (one update per message): let gRPC coalesce them
    // into one transport write instead of flushing each. The last one
    // queued goes without the hint, which flushes. So does the first: it
    // carries the initial metadata, whose completion waits for a flush.
    if (more_ && !first_) options.set_buffer_hint();
    first_ = false;
    HandingToGrpc(*out_);
    this->StartWrite(out_.get(), options);
  }
  void FinishRpc(const grpc::Status& status) override { this->Finish(status); }

  // Made for a write, freed once the stream is idle (ReleaseLocked).
  std::unique_ptr<Message> out_;
  bool more_ = false;
  bool first_ = true;
};

}  // namespace

void SpecialistService::Call::Begin() {
  std::string request_id = RequestIdOf(*context_, *request_);
  if (absl::Status valid = ValidateAnalyzeRequest(*request_); !valid.ok()) {
    FinishRpc(ToGrpcStatus(valid));
    return;
  }
  std::shared_ptr<const UpdateSink::Origin> origin;
  {
    absl::MutexLock lock(&service_->mu_);
    if (service_->draining_) {
      FinishRpc(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             "specialist is shutting down"));
      return;
    }
    origin = service_->origin_;
    id_ = service_->next_id_++;
    service_->in_flight_[id_] = this;
  }
  const bool async = service_->async_ != nullptr;
  sink_.emplace(std::move(request_id), std::move(origin), service_->clock_,
                this);
  StartDeadline();
  service_->metrics_->AnalysisStarted();
  start_ = absl::Now();
  AS_LOG(INFO) << "analysis started request_id=" << sink_->request_id()
               << " specialist=" << service_->card_.name()
               << " task_bytes=" << request_->task().size()
               << " question_bytes=" << request_->question().size();
  if (async) {
    absl::StatusOr<std::unique_ptr<AsyncAnalysis>> analysis =
        service_->async_->Start(*request_);
    if (!analysis.ok()) {
      EndAnalysis(analysis.status());
      return;
    }
    analysis_ = *std::move(analysis);
    ReleaseRequest();
    {
      absl::MutexLock lock(&mu_);
      phase_ = Phase::kStepping;
    }
    Ref();  // Held across: the first steps may end the call.
    RunSteps();
    Unref();
    return;
  }
  Ref();  // The pool's.
  if (!service_->pool_.TrySubmit([this] {
        RunBlocking();
        Unref();
      })) {
    Unref();
    EndAnalysis(absl::ResourceExhaustedError(absl::StrCat(
        "all ", service_->limits_.worker_threads, " analysis threads busy and ",
        service_->limits_.max_waiting_analyses, " analyses waiting")));
  }
}

void SpecialistService::Call::StartDeadline() {
  const std::chrono::system_clock::time_point deadline = context_->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return;
  Ref();  // The deadline timer's.
  absl::MutexLock lock(&mu_);
  deadline_timer_ =
      std::make_unique<TimerThread::Id>(service_->timers_.Schedule(
          absl::FromChrono(deadline), [this] { DeadlineFired(); }));
}

void SpecialistService::Call::DeadlineFired() {
  bool fire = false;
  {
    absl::MutexLock lock(&mu_);
    if (!done_) fire = deadline_firing_ = true;
  }
  if (fire) {
    Cancel(kDeadlineReason);  // The token's first reason wins.
    // As gRPC's deadline filter did: the RPC ends with DEADLINE_EXCEEDED even
    // when a write is stuck behind a reader that does not read.
    grpc_call_cancel_with_status(context_->c_call(),
                                 GRPC_STATUS_DEADLINE_EXCEEDED,
                                 "Deadline Exceeded", nullptr);
    absl::MutexLock lock(&mu_);
    deadline_firing_ = false;
  }
  Unref();
}

void SpecialistService::Call::ReleaseRequest() {
  // gRPC made the request (a non-const object in the call's arena) and only
  // destroys it after OnDone; it hands it out as const because a handler
  // usually has no reason to change it.
  AnalyzeRequest().Swap(const_cast<AnalyzeRequest*>(request_));
}

void SpecialistService::Call::RunBlocking() {
  if (token_.cancelled()) {
    EndAnalysis(absl::CancelledError("cancelled"));
    return;
  }
  EndAnalysis(service_->specialist_->Analyze(*request_, *sink_, token_));
}

bool SpecialistService::Call::PushBlocking(Update&& update) {
  mu_.Lock();
  // Held back while the queue is full; cancellation (tripped under mu_)
  // releases the wait.
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.HasRoom() || broken_ || token_.cancelled();
  };
  mu_.Await(absl::Condition(&ready));
  if (broken_ || token_.cancelled()) {
    mu_.Unlock();
    return false;
  }
  queue_.Push(std::move(update));
  PublishDepthLocked();
  const bool write = TakeNextLocked();
  mu_.Unlock();
  if (write) WriteTaken();
  return true;
}

bool SpecialistService::Call::PushAsync(Update&& update) {
  mu_.Lock();
  if (broken_ || token_.cancelled()) {
    mu_.Unlock();
    return false;
  }
  if (queue_.Overflowing()) {
    mu_.Unlock();
    Cancel("update queue overflow: the analysis ignored HasRoom()");
    return false;
  }
  // Written when the step returns (FlushStep), with whatever else it emits.
  queue_.Push(std::move(update));
  PublishDepthLocked();
  mu_.Unlock();
  return true;
}

void SpecialistService::Call::FlushStep() {
  mu_.Lock();
  const bool write = !broken_ && TakeNextLocked();
  mu_.Unlock();
  if (write) WriteTaken();
}

void SpecialistService::Call::RunSteps() {
  while (true) {
    if (token_.cancelled()) {
      EndAnalysis(absl::CancelledError("cancelled"));
      return;
    }
    const NextStep next = analysis_->Step(*sink_, token_);
    FlushStep();
    if (next.kind() == NextStep::Kind::kDone) {
      EndAnalysis(next.status());
      return;
    }
    mu_.Lock();
    // Cancel() trips the token under mu_: either it is seen here, or Cancel
    // sees the phase set below and ends the analysis itself.
    if (token_.cancelled()) {
      mu_.Unlock();
      EndAnalysis(absl::CancelledError("cancelled"));
      return;
    }
    switch (next.kind()) {
      case NextStep::Kind::kContinue:
        if (queue_.HasRoom()) {
          mu_.Unlock();
          continue;
        }
        phase_ = Phase::kBlocked;  // WriteDone() steps it again.
        break;
      case NextStep::Kind::kAt:
        if (next.when() <= absl::Now()) {
          mu_.Unlock();
          continue;
        }
        phase_ = Phase::kTimer;
        Ref();  // The timer's.
        timer_id_ =
            service_->timers_.Schedule(next.when(), [this] { TimerFired(); });
        break;
      case NextStep::Kind::kUntilCancelled:
        phase_ = Phase::kUntilCancelled;
        break;
      case NextStep::Kind::kDone:
        break;
    }
    mu_.Unlock();
    return;
  }
}

void SpecialistService::Call::TimerFired() {
  bool run = false;
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kTimer) {
      phase_ = Phase::kStepping;
      run = true;
    }
  }
  if (run) RunSteps();
  Unref();
}

void SpecialistService::Call::Cancel(const std::string& reason) {
  Ref();
  bool end = false;
  std::optional<TimerThread::Id> timer;
  {
    absl::MutexLock lock(&mu_);
    token_.Cancel(reason);  // The first reason wins.
    switch (phase_) {
      case Phase::kTimer:
        timer = timer_id_;
        [[fallthrough]];
      case Phase::kBlocked:
      case Phase::kUntilCancelled:
        phase_ = Phase::kStepping;  // Owned by this thread, to end it.
        end = true;
        break;
      case Phase::kStarting:
      case Phase::kStepping:
      case Phase::kEnded:
        break;  // Blocking, or a step running: it sees the token.
    }
  }
  if (timer.has_value() && service_->timers_.Cancel(*timer)) Unref();
  if (end) EndAnalysis(absl::CancelledError("cancelled"));
  Unref();
}

void SpecialistService::Call::WriteDone(bool ok) {
  Ref();
  mu_.Lock();
  const int64_t written = queue_.in_flight_updates();
  const int64_t written_bytes = queue_.in_flight_bytes();
  queue_.WriteDone();
  if (!ok) {
    broken_ = true;
    queue_.Clear();
    // Tripped with broken_ under mu_, so a producer that sees the stream
    // gone also sees its analysis cancelled (outcome "cancelled").
    token_.Cancel("stream closed");
  }
  PublishDepthLocked();
  const bool write = !broken_ && TakeNextLocked();
  // Idle (a slow or held analysis): what was written need not stay.
  if (!write) ReleaseLocked();
  const bool resume =
      phase_ == Phase::kBlocked && !token_.cancelled() && queue_.HasRoom();
  if (resume) phase_ = Phase::kStepping;
  const bool finish = ShouldFinishLocked();
  const absl::Status status = finish ? final_ : absl::OkStatus();
  mu_.Unlock();
  if (ok) service_->metrics_->UpdatesSent(written, written_bytes);
  if (write) WriteTaken();
  if (!ok) Cancel("stream closed");
  if (finish) FinishRpc(ToGrpcStatus(status));
  // The reader took some: a held-back analysis goes on, on this thread.
  if (resume) RunSteps();
  Unref();
}

void SpecialistService::Call::EndAnalysis(const absl::Status& status) {
  const absl::Time end = absl::Now();
  AnalysisOutcome outcome =
      status.ok() ? AnalysisOutcome::kOk : AnalysisOutcome::kFailed;
  absl::Status result = status;
  if (token_.cancelled()) {
    outcome = AnalysisOutcome::kCancelled;
    const int64_t stop_ms =
        absl::ToInt64Milliseconds(end - token_.requested_at());
    service_->metrics_->CancelStopped(stop_ms);
    AS_LOG(INFO) << "analysis cancelled request_id=" << sink_->request_id()
                 << " reason=\"" << token_.reason() << "\" stop_ms=" << stop_ms;
    const std::string reason = token_.reason();
    if (reason == "shutdown") {
      result = absl::UnavailableError(
          "specialist shut down before the analysis finished");
    } else if (reason == kDeadlineReason) {
      result = absl::DeadlineExceededError(
          "deadline exceeded before the analysis finished");
    } else {
      result =
          absl::CancelledError(absl::StrCat("analysis cancelled: ", reason));
    }
  }
  service_->metrics_->AnalysisEnded(outcome);
  AS_LOG(INFO) << "analysis ended request_id=" << sink_->request_id()
               << " outcome=" << OutcomeWord(outcome)
               << " duration_ms=" << absl::ToInt64Milliseconds(end - start_)
               << " updates=" << (sink_ ? sink_->updates_sent() : 0)
               << (status.ok()
                       ? ""
                       : absl::StrCat(" error=\"", status.ToString(), "\""));
  analysis_.reset();  // No step runs: this thread ends it.
  bool finish;
  {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kEnded;
    analysis_done_ = true;
    final_ = result;
    finish = ShouldFinishLocked();
  }
  if (finish) FinishRpc(ToGrpcStatus(result));
}

void SpecialistService::Call::Done() {
  std::unique_ptr<TimerThread::Id> deadline;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    deadline = std::move(deadline_timer_);
    // gRPC frees the context once OnDone returns: a deadline firing now
    // (it never runs OnDone on its own thread) is let finish first.
    auto not_firing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !deadline_firing_;
    };
    mu_.Await(absl::Condition(&not_firing));
  }
  if (deadline != nullptr && service_->timers_.Cancel(*deadline)) Unref();
  if (id_ >= 0) service_->Unregister(id_);
  Unref();
}

template <typename Message>
grpc::ServerWriteReactor<Message>* SpecialistService::StartCall(
    grpc::CallbackServerContext* context, const AnalyzeRequest* request) {
  auto* reactor = new Reactor<Message>(this, context, request);
  reactor->Begin();
  return reactor;
}

template grpc::ServerWriteReactor<agentstream::v1::Update>*
SpecialistService::StartCall(grpc::CallbackServerContext* context,
                             const AnalyzeRequest* request);
template grpc::ServerWriteReactor<agentstream::v1::UpdateBatch>*
SpecialistService::StartCall(grpc::CallbackServerContext* context,
                             const AnalyzeRequest* request);

}  // namespace agentstream::specialists
