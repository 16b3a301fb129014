#include "orchestrator/specialist_session.h"

#include <grpcpp/client_context.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "common/grpc_status.h"
#include "common/reactor_writer.h"
#include "orchestrator/session_wire.h"

namespace agentstream::orchestrator {

using agentstream::v1::AnalyzeRequest;
using agentstream::v1::AnalyzeSessionRequest;

struct SpecialistSessions::Shared {
  Shared(const std::shared_ptr<grpc::Channel>& c, Fallback f, Clock* k)
      : channel(c.get()),
        method("/agentstream.v1.Specialist/AnalyzeSession",
               grpc::internal::RpcMethod::BIDI_STREAMING, c),
        fallback(std::move(f)),
        clock(k) {}

  // Not owned: the channel must never be let go on gRPC's own threads (a
  // channel destroyed there frees what that thread still uses), so its
  // owner keeps it, and ~SpecialistSessions waits for every call to go.
  grpc::Channel* const channel;
  const grpc::internal::RpcMethod method;
  const Fallback fallback;
  Clock* const clock;
  std::atomic<bool> supported{true};
  std::atomic<uint64_t> calls_started{0};
  // Streams open on this endpoint's calls (the rotation's count).
  std::atomic<int64_t> open_streams{0};

  absl::Mutex mu;
  // The calls before their OnDone (for ~SpecialistSessions to cancel).
  absl::flat_hash_map<SpecialistSessionCall*,
                      std::weak_ptr<SpecialistSessionCall>>
      calls ABSL_GUARDED_BY(mu);
  int live ABSL_GUARDED_BY(mu) = 0;  // Calls not yet destroyed.
};

namespace {

using Shared = SpecialistSessions::Shared;

constexpr char kMalformed[] = "the specialist sent a malformed update";

grpc::ByteBuffer Serialize(const AnalyzeSessionRequest& request) {
  grpc::Slice slice(request.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// One analysis on a session. Its observer hears from one thread at a time:
// an end that comes while updates are being delivered (a Cancel() from
// another thread, or from the observer itself) is told once they are.
class SessionAnalysis final {
 public:
  SessionAnalysis(std::shared_ptr<Shared> shared, const AnalyzeRequest& request,
                  std::shared_ptr<AnalyzeObserver> observer)
      : shared_(std::move(shared)),
        request_(request),
        observer_(std::move(observer)) {}

  void Attach(std::shared_ptr<SpecialistSessionCall> call, uint64_t id) {
    absl::MutexLock lock(&mu_);
    call_ = std::move(call);
    id_ = id;
  }

  // From the session's reader: the updates of one frame (`bytes` counted
  // against the window). Returns the credit to send back (0: none yet).
  uint64_t Deliver(absl::Span<const std::string_view> updates, uint64_t bytes);
  // The stream ended with `status` (a frame's end, the session's end, a
  // cancellation); only the first end counts.
  void Finish(absl::Status status);
  // The session had no AnalyzeSession: the analysis starts again as its
  // own call, unless it was cancelled.
  void FallBack();
  void Cancel();

 private:
  // Delivers a pending end, if any; called with delivering_ cleared.
  void FlushEnd(std::optional<absl::Status> end);

  const std::shared_ptr<Shared> shared_;
  const AnalyzeRequest request_;  // For a fallback.
  absl::Mutex mu_;
  std::shared_ptr<AnalyzeObserver> observer_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<SpecialistSessionCall> call_ ABSL_GUARDED_BY(mu_);
  uint64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // Ended (or handed over).
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> pending_end_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool falling_back_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<AnalyzeCall> fallback_ ABSL_GUARDED_BY(mu_);
  uint64_t uncredited_ ABSL_GUARDED_BY(mu_) = 0;
};

// One AnalyzeSession call, read raw (session_wire.h). Owns itself from its
// start until OnDone; writes come from any thread (opens, credits, closes),
// one in flight, the rest queued.
class SpecialistSessionCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  static std::shared_ptr<SpecialistSessionCall> Start(
      std::shared_ptr<Shared> shared) {
    const absl::Time now = shared->clock->Now();
    const uint64_t open = static_cast<uint64_t>(std::max<int64_t>(
        shared->open_streams.load(std::memory_order_relaxed), 0));
    const uint64_t max_streams =
        std::max(SpecialistSessions::kMinRotationStreams,
                 open / SpecialistSessions::kRotationShare);
    auto call = std::shared_ptr<SpecialistSessionCall>(
        new SpecialistSessionCall(std::move(shared), now, max_streams));
    call->self_ = call;
    call->shared_->calls_started.fetch_add(1, std::memory_order_relaxed);
    {
      absl::MutexLock lock(&call->shared_->mu);
      call->shared_->calls.emplace(call.get(), call);
      ++call->shared_->live;
    }
    grpc::internal::ClientCallbackReaderWriterFactory<
        grpc::ByteBuffer, grpc::ByteBuffer>::Create(call->shared_->channel,
                                                    call->shared_->method,
                                                    &call->context_,
                                                    call.get());
    call->AddHold();  // Writes start from outside reactions.
    call->StartRead(&call->incoming_);
    call->StartCall();
    return call;
  }

  // Whether new streams may go here at `now`.
  bool Accepting(absl::Time now) const {
    absl::MutexLock lock(&mu_);
    return accepting_ && !done_ && last_id_ < max_streams_ &&
           now - started_ < SpecialistSessions::kRotationAge;
  }

  // Opens `stream`; false when the call is over (or being let go). A call
  // picked just before it was rotated out still takes it: that costs a
  // stream on a draining call, where failing it would cost the analysis.
  bool Open(const std::shared_ptr<SessionAnalysis>& stream,
            const AnalyzeRequest& request) {
    AnalyzeSessionRequest open;
    *open.mutable_open()->mutable_request() = request;
    open.mutable_open()->set_window_bytes(SpecialistSessions::kWindowBytes);
    bool start;
    {
      absl::MutexLock lock(&mu_);
      if (released_ || done_) return false;
      const uint64_t id = ++last_id_;
      streams_.emplace(id, stream);
      shared_->open_streams.fetch_add(1, std::memory_order_relaxed);
      // Attached before a frame of it can come back, and queued under the
      // lock that numbered it: the specialist takes opens only in the
      // order of their ids (a stream id is never used twice).
      stream->Attach(self_, id);
      open.mutable_open()->set_stream(id);
      start = writer_.Enqueue(Serialize(open));
    }
    if (start) writer_.Start();
    return true;
  }
  void Credit(uint64_t id, uint64_t bytes) {
    AnalyzeSessionRequest credit;
    credit.mutable_credit()->set_stream(id);
    credit.mutable_credit()->set_bytes(bytes);
    writer_.Send(Serialize(credit));
  }
  // The stream's owner lets go of it.
  void Close(uint64_t id) {
    {
      absl::MutexLock lock(&mu_);
      if (streams_.erase(id) == 0) return;  // Ended: nothing to close.
    }
    shared_->open_streams.fetch_sub(1, std::memory_order_relaxed);
    AnalyzeSessionRequest close;
    close.mutable_close()->set_stream(id);
    writer_.Send(Serialize(close));
    MaybeRelease();
  }
  // Ends the call (its streams end CANCELLED, unless they had ended).
  void Cancel() { context_.TryCancel(); }
  // No new streams from now on; the call goes once its streams have.
  void StopAccepting() {
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
    }
    MaybeRelease();
  }

  // grpc::ClientBidiReactor methods
  void OnReadDone(bool ok) override {
    if (!ok || !Dispatch()) {
      // The call is ending (or must: a malformed message); OnDone tells the
      // streams how.
      if (ok) context_.TryCancel();
      writer_.Stop();
      return;
    }
    incoming_.Clear();
    StartRead(&incoming_);
  }
  void OnWriteDone(bool ok) override { writer_.WriteDone(ok); }
  void OnDone(const grpc::Status& status) override {
    absl::flat_hash_map<uint64_t, std::shared_ptr<SessionAnalysis>> streams;
    std::shared_ptr<SpecialistSessionCall> self;
    bool fall_back;
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->calls.erase(this);
    }
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      fall_back =
          !got_frame_ && status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
      streams.swap(streams_);
      self = std::move(self_);
    }
    shared_->open_streams.fetch_sub(static_cast<int64_t>(streams.size()),
                                    std::memory_order_relaxed);
    if (fall_back) {
      // Before the streams start again, so that none comes back here.
      shared_->supported.store(false);
      for (auto& [id, stream] : streams) stream->FallBack();
      return;
    }
    absl::Status end = FromGrpcStatus(status);
    if (malformed_) {
      end = absl::InternalError(kMalformed);
    } else if (end.ok()) {
      end = absl::UnavailableError("the specialist ended the session");
    }
    for (auto& [id, stream] : streams) stream->Finish(end);
    // `self` may be the last reference: destroyed here, after gRPC's last
    // use of this.
  }

 private:
  SpecialistSessionCall(std::shared_ptr<Shared> shared, absl::Time now,
                        uint64_t max_streams)
      : token_{shared},
        shared_(std::move(shared)),
        started_(now),
        max_streams_(max_streams) {}

  // Counts the call out once everything else of it (its context: gRPC's
  // call, which holds the channel) is gone: the first member.
  struct LiveToken {
    ~LiveToken() {
      absl::MutexLock lock(&shared->mu);
      --shared->live;
    }
    std::shared_ptr<Shared> shared;
  };

  // Hands the message in incoming_ to its streams; false when it is
  // malformed (malformed_ is then set).
  bool Dispatch() {
    grpc::Slice slice;
    if (!incoming_.TrySingleSlice(&slice).ok() &&
        !incoming_.DumpToSingleSlice(&slice).ok()) {
      malformed_ = true;
      return false;
    }
    const std::string_view bytes(reinterpret_cast<const char*>(slice.begin()),
                                 slice.size());
    if (!WalkSessionMessage(bytes, &frames_)) {
      malformed_ = true;
      return false;
    }
    for (const SessionFrameView& frame : frames_) {
      updates_.clear();
      for (std::string_view piece : frame.batch) {
        if (!ForEachBatchedUpdate(piece, [this](std::string_view update) {
              updates_.push_back(update);
              return true;
            })) {
          malformed_ = true;
          return false;
        }
      }
      std::shared_ptr<SessionAnalysis> stream;
      {
        absl::MutexLock lock(&mu_);
        got_frame_ = true;
        auto it = streams_.find(frame.stream);
        if (it == streams_.end()) continue;  // Closed by its owner.
        stream = it->second;
        if (frame.has_end) {
          streams_.erase(it);
          shared_->open_streams.fetch_sub(1, std::memory_order_relaxed);
        }
      }
      const uint64_t credit = stream->Deliver(updates_, frame.batch_bytes());
      if (frame.has_end) {
        stream->Finish(
            absl::Status(static_cast<absl::StatusCode>(frame.end_code),
                         absl::string_view(frame.end_message.data(),
                                           frame.end_message.size())));
        MaybeRelease();
      } else if (credit > 0) {
        Credit(frame.stream, credit);
      }
    }
    return true;
  }

  // A draining call without streams is of no more use: cancelled (nothing
  // on it to lose).
  void MaybeRelease() {
    {
      absl::MutexLock lock(&mu_);
      if (accepting_ || done_ || !streams_.empty() || released_) return;
      released_ = true;
    }
    context_.TryCancel();
  }

  const LiveToken token_;
  const std::shared_ptr<Shared> shared_;
  const absl::Time started_;
  const uint64_t max_streams_;  // Taken before it drains.
  grpc::ClientContext context_;
  grpc::ByteBuffer incoming_;  // Between StartRead and OnReadDone.
  ReactorWriter<SpecialistSessionCall, grpc::ByteBuffer> writer_{this};
  // Touched only by the reads' reactions, one at a time (and OnDone after).
  std::vector<SessionFrameView> frames_;
  absl::InlinedVector<std::string_view, 8> updates_;
  bool malformed_ = false;

  mutable absl::Mutex mu_;
  std::shared_ptr<SpecialistSessionCall> self_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<SessionAnalysis>> streams_
      ABSL_GUARDED_BY(mu_);
  uint64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  bool got_frame_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

uint64_t SessionAnalysis::Deliver(absl::Span<const std::string_view> updates,
                                  uint64_t bytes) {
  std::shared_ptr<AnalyzeObserver> observer;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return 0;
    if (updates.empty()) {
      uncredited_ += bytes;
    } else {
      delivering_ = true;
      observer = observer_;
    }
  }
  bool good = true;
  if (observer != nullptr) good = observer->OnSerializedUpdates(updates);
  std::optional<absl::Status> end;
  std::shared_ptr<SpecialistSessionCall> call;
  uint64_t id = 0, credit = 0;
  {
    absl::MutexLock lock(&mu_);
    if (observer != nullptr) {
      delivering_ = false;
      uncredited_ += bytes;
    }
    if (!good && !done_) {
      // Not an Update: this analysis fails (as its own call would), the
      // session goes on.
      done_ = true;
      pending_end_ = absl::InternalError(kMalformed);
      call = std::move(call_);
      id = id_;
    }
    end = std::move(pending_end_);
    pending_end_.reset();
    if (!done_ && uncredited_ >= SpecialistSessions::kWindowBytes /
                                     SpecialistSessions::kCreditFraction) {
      credit = uncredited_;
      uncredited_ = 0;
    }
  }
  if (call != nullptr) call->Close(id);
  FlushEnd(std::move(end));
  return credit;
}

void SessionAnalysis::FlushEnd(std::optional<absl::Status> end) {
  if (!end.has_value()) return;
  std::shared_ptr<AnalyzeObserver> observer;
  {
    absl::MutexLock lock(&mu_);
    observer = std::move(observer_);
    call_.reset();
  }
  if (observer != nullptr) observer->OnDone(*end);
}

void SessionAnalysis::Finish(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    done_ = true;
    if (delivering_) {
      pending_end_ = std::move(status);  // Told once the delivery returns.
      return;
    }
  }
  FlushEnd(std::move(status));
}

void SessionAnalysis::FallBack() {
  std::shared_ptr<AnalyzeObserver> observer;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    done_ = true;
    falling_back_ = true;
    observer = std::move(observer_);
    call_.reset();
  }
  std::unique_ptr<AnalyzeCall> call =
      shared_->fallback(request_, std::move(observer));
  bool cancel;
  {
    absl::MutexLock lock(&mu_);
    cancel = cancelled_;
    fallback_ = std::move(call);
  }
  // A Cancel() that came meanwhile left it to this.
  if (cancel) fallback_->Cancel();
}

void SessionAnalysis::Cancel() {
  std::shared_ptr<SpecialistSessionCall> call;
  uint64_t id = 0;
  AnalyzeCall* fallback = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return;
    cancelled_ = true;
    if (falling_back_) {
      // Set once, kept until this goes: safe to use outside the lock. Null
      // while it starts (FallBack cancels it then).
      fallback = fallback_.get();
    } else {
      call = call_;
      id = id_;
    }
  }
  if (fallback != nullptr) {
    fallback->Cancel();
    return;
  }
  if (call != nullptr) call->Close(id);
  Finish(absl::CancelledError("the analysis was cancelled"));
}

namespace {

class SessionAnalyzeCall final : public AnalyzeCall {
 public:
  explicit SessionAnalyzeCall(std::shared_ptr<SessionAnalysis> stream)
      : stream_(std::move(stream)) {}
  void Cancel() override { stream_->Cancel(); }

 private:
  const std::shared_ptr<SessionAnalysis> stream_;
};

}  // namespace

SpecialistSessions::SpecialistSessions(std::shared_ptr<grpc::Channel> channel,
                                       Fallback fallback, Clock* clock)
    : shared_(std::make_shared<Shared>(std::move(channel), std::move(fallback),
                                       clock)) {}

// How long ~SpecialistSessions waits for its cancelled calls to end.
constexpr absl::Duration kAwaitCallsEnd = absl::Seconds(5);

SpecialistSessions::~SpecialistSessions() {
  std::vector<std::shared_ptr<SpecialistSessionCall>> calls;
  {
    absl::MutexLock lock(&mu_);
    for (auto& slot : slots_) slot.reset();
  }
  {
    absl::MutexLock lock(&shared_->mu);
    for (auto& [ptr, weak] : shared_->calls) {
      if (auto call = weak.lock()) calls.push_back(std::move(call));
    }
  }
  for (auto& call : calls) call->Cancel();
  calls.clear();
  absl::MutexLock lock(&shared_->mu);
  // gRPC ends a cancelled call promptly (the observers must not block); the
  // bound keeps a shutdown from hanging should this run on the thread one
  // of those endings needs (a call let go after it then holds the channel
  // as a per-call AnalyzeReactor's does).
  shared_->mu.AwaitWithTimeout(
      absl::Condition(
          +[](int* live) { return *live == 0; }, &shared_->live),
      kAwaitCallsEnd);
}

bool SpecialistSessions::supported() const { return shared_->supported.load(); }

uint64_t SpecialistSessions::calls_started() const {
  return shared_->calls_started.load();
}

std::shared_ptr<SpecialistSessionCall> SpecialistSessions::Pick() {
  std::shared_ptr<SpecialistSessionCall> old, call;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<SpecialistSessionCall>& slot = slots_[next_++ % kSessions];
    if (slot == nullptr || !slot->Accepting(shared_->clock->Now())) {
      old = std::move(slot);
      slot = SpecialistSessionCall::Start(shared_);
    }
    call = slot;
  }
  // Outside the lock: letting go of an idle call cancels it.
  if (old != nullptr) old->StopAccepting();
  return call;
}

std::unique_ptr<AnalyzeCall> SpecialistSessions::Analyze(
    const AnalyzeRequest& request, std::shared_ptr<AnalyzeObserver> observer) {
  if (!supported()) return shared_->fallback(request, std::move(observer));
  auto stream =
      std::make_shared<SessionAnalysis>(shared_, request, std::move(observer));
  // A call that ended between Pick() and Open() (it was let go) is
  // replaced once; an endpoint found without sessions meanwhile gets the
  // fallback.
  bool opened = false;
  for (int attempt = 0; attempt < 2 && !opened; ++attempt) {
    if (!supported()) {
      stream->FallBack();
      opened = true;
      break;
    }
    opened = Pick()->Open(stream, request);
  }
  if (!opened) {
    stream->Finish(absl::UnavailableError("no session to the specialist"));
  }
  return std::make_unique<SessionAnalyzeCall>(std::move(stream));
}

}  // namespace agentstream::orchestrator
