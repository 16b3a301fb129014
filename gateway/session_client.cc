#include "gateway/session_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/grpc_status.h"
#include "common/hash_table_shrink.h"
#include "common/reactor_writer.h"
#include "gateway/stream_inbox.h"
#include "google/protobuf/io/coded_stream.h"

namespace agentstream::gateway {

using agentstream::v1::SessionFrame;
using agentstream::v1::SessionMessage;
using agentstream::v1::SessionRequest;
using agentstream::v1::Update;

namespace {

// What an update of `update_bytes` counts against its stream's window: its
// size inside an UpdateBatch (field 1's tag and length, then the update), as
// the orchestrator counts it.
uint64_t FramedSize(uint64_t update_bytes) {
  return 1 +
         google::protobuf::io::CodedOutputStream::VarintSize64(update_bytes) +
         update_bytes;
}

}  // namespace

// One stream of a session: the queue its owner takes updates from.
class MuxStream final : public StreamInbox {
 public:
  MuxStream(uint64_t window, std::shared_ptr<UpstreamCounters> counters)
      : StreamInbox(std::move(counters)),
        credit_threshold_(std::max<uint64_t>(1, window / 4)) {}

  void Attach(std::shared_ptr<SessionCall> call, uint64_t id) {
    absl::MutexLock lock(&mu_);
    call_ = std::move(call);
    id_ = id;
  }

  // From the session's reader.
  void OnFrame(SessionFrame& frame) {
    std::function<void()> listener;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      if (frame.accepted() || frame.batch().updates_size() > 0) {
        accepted_ = true;
      }
      const size_t bytes_before = queue_bytes_;
      const size_t updates_before = queue_.size();
      for (Update& u : *frame.mutable_batch()->mutable_updates()) {
        const size_t bytes = u.ByteSizeLong();
        queue_framed_bytes_ += FramedSize(bytes);
        QueueLocked(std::move(u), bytes);
      }
      CountedLocked(static_cast<int64_t>(queue_.size() - updates_before),
                    static_cast<int64_t>(queue_bytes_ - bytes_before));
      if (frame.has_end()) {
        const auto code = static_cast<absl::StatusCode>(frame.end().code());
        EndLocked(absl::Status(code, frame.end().message()));
      }
      listener = done_ ? std::move(listener_) : listener_;
    }
    if (listener) listener();
  }
  // The session's call ended: so does the stream, unless it had.
  void OnCallEnd(const absl::Status& status) {
    std::function<void()> listener;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      EndLocked(status.ok() ? absl::UnavailableError(
                                  "the orchestrator ended the session")
                            : status);
      listener = std::move(listener_);
    }
    if (listener) listener();
  }

  RunStream::Next Wait(absl::Duration timeout, std::vector<Update>* out);

  // Never accepted, and the orchestrator has no Session method.
  bool Unsupported() const {
    absl::MutexLock lock(&mu_);
    return done_ && !accepted_ &&
           status_.code() == absl::StatusCode::kUnimplemented;
  }
  // Lets go of the stream: the orchestrator is told (a close), and the
  // stream ends kCancelled here unless it had ended.
  void Cancel();
  // The owner is gone: no more listener calls.
  void Release() {
    {
      absl::MutexLock lock(&mu_);
      listener_ = nullptr;
    }
    Cancel();
  }

 private:
  void EndLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    done_ = true;
    status_ = std::move(status);
  }

  const uint64_t credit_threshold_;
  std::shared_ptr<SessionCall> call_ ABSL_GUARDED_BY(mu_);
  uint64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  // What the queue counts against the window (as the orchestrator counts).
  uint64_t queue_framed_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t uncredited_ ABSL_GUARDED_BY(mu_) = 0;  // Taken, not yet granted.
  bool closed_ ABSL_GUARDED_BY(mu_) = false;      // Close sent (or not needed).
};

// One Session call. Owns itself from its start until OnDone; writes come
// from any thread (opens, credits, closes), one in flight, the rest queued.
class SessionCall final
    : public grpc::ClientBidiReactor<SessionRequest, SessionMessage> {
 public:
  static std::shared_ptr<SessionCall> Start(
      agentstream::v1::Orchestrator::Stub* stub, CallCounter& calls,
      std::atomic<bool>* supported, absl::Time now) {
    auto call =
        std::shared_ptr<SessionCall>(new SessionCall(calls, supported, now));
    call->self_ = call;
    stub->async()->Session(&call->context_, call.get());
    call->AddHold();  // Writes start from outside reactions.
    call->StartRead(&call->incoming_);
    call->StartCall();
    return call;
  }

  enum class Opened { kYes, kRetired, kOver };
  // Opens `stream` with `open` (its number set here); kRetired or kOver
  // when the call takes no more streams (the stream is not opened).
  Opened Open(const std::shared_ptr<MuxStream>& stream,
              agentstream::v1::SessionOpen open) {
    SessionRequest request;
    *request.mutable_open() = std::move(open);
    bool start;
    {
      absl::MutexLock lock(&mu_);
      if (over_) return Opened::kOver;
      if (retired_) return Opened::kRetired;
      const uint64_t id = ++last_id_;
      streams_.emplace(id, stream);
      // Attached before a frame of it can come back, and queued under the
      // lock that numbered it: the orchestrator takes opens only in the
      // order of their numbers (docs/CONTRACT.md, "Sessions").
      stream->Attach(self_, id);
      request.mutable_open()->set_stream(id);
      start = writer_.Enqueue(std::move(request));
    }
    if (start) writer_.Start();
    return Opened::kYes;
  }
  // Takes no more streams, and half-closes (the orchestrator then ends the
  // call) once the last of its streams has ended or been closed.
  void Retire() {
    bool close;
    {
      absl::MutexLock lock(&mu_);
      retired_ = true;
      close = streams_.empty();
    }
    if (close) writer_.CloseWrites();
  }
  absl::Time started() const { return started_; }
  void Credit(uint64_t id, uint64_t bytes) {
    SessionRequest request;
    request.mutable_credit()->set_stream(id);
    request.mutable_credit()->set_bytes(bytes);
    writer_.Send(std::move(request));
  }
  void Close(uint64_t id) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      if (streams_.erase(id) == 0) return;  // Ended: nothing to close.
      ShrinkIfSparse(streams_);
      last = retired_ && streams_.empty();
    }
    SessionRequest request;
    request.mutable_close()->set_stream(id);
    writer_.Send(std::move(request));
    if (last) writer_.CloseWrites();  // After the close, which it follows.
  }
  void Cancel() { context_.TryCancel(); }
  bool over() const {
    absl::MutexLock lock(&mu_);
    return over_;
  }
  // For a call that is over: its status once OnDone has come (soon after
  // over() turns true), waiting at most `timeout` for it.
  absl::Status AwaitEnd(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
    return done_ ? final_
                 : absl::UnavailableError(
                       "the session to the orchestrator ended");
  }

  // grpc::ClientBidiReactor methods
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The call is ending; OnDone tells the streams how.
      StopWriting();
      return;
    }
    bool last = false;
    for (SessionFrame& frame : *incoming_.mutable_frames()) {
      std::shared_ptr<MuxStream> stream;
      {
        absl::MutexLock lock(&mu_);
        auto it = streams_.find(frame.stream());
        if (it == streams_.end()) continue;  // Closed by its owner.
        stream = it->second;
        if (frame.has_end()) {
          streams_.erase(it);
          ShrinkIfSparse(streams_);
          last = retired_ && streams_.empty();
        }
      }
      stream->OnFrame(frame);
    }
    incoming_.Clear();
    if (last) writer_.CloseWrites();
    StartRead(&incoming_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      over_ = true;  // The call is broken: no stream opens on it.
    }
    writer_.WriteDone(ok);
  }
  void OnWritesDoneDone(bool /*ok*/) override { writer_.WritesDoneDone(); }
  void OnDone(const grpc::Status& status) override {
    absl::flat_hash_map<uint64_t, std::shared_ptr<MuxStream>> streams;
    std::shared_ptr<SessionCall> self;
    const absl::Status end = FromGrpcStatus(status);
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      supported_->store(false);
    }
    {
      absl::MutexLock lock(&mu_);
      over_ = true;
      done_ = true;
      final_ = end;
      streams.swap(streams_);
      self = std::move(self_);
    }
    for (auto& [id, stream] : streams) stream->OnCallEnd(end);
    // `self` may be the last reference.
  }

 private:
  SessionCall(CallCounter& calls, std::atomic<bool>* supported, absl::Time now)
      : call_(calls), supported_(supported), started_(now) {}
  // The read side ended: the call is over, and no write starts.
  void StopWriting() {
    {
      absl::MutexLock lock(&mu_);
      over_ = true;
    }
    writer_.Stop();
  }

  // First, so that it is destroyed last: the call counts as ended only once
  // the context (and gRPC's call with it) is gone.
  const CallCounter::Token call_;
  std::atomic<bool>* const supported_;
  const absl::Time started_;
  grpc::ClientContext context_;
  SessionMessage incoming_;  // Between StartRead and OnReadDone.
  ReactorWriter<SessionCall, SessionRequest> writer_{this};

  mutable absl::Mutex mu_;
  std::shared_ptr<SessionCall> self_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<MuxStream>> streams_
      ABSL_GUARDED_BY(mu_);
  uint64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool over_ ABSL_GUARDED_BY(mu_) = false;  // Takes no more streams.
  // Takes no new stream; half-closes after the last (Retire).
  bool retired_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone came, with final_.
  absl::Status final_ ABSL_GUARDED_BY(mu_);
};

RunStream::Next MuxStream::Wait(absl::Duration timeout,
                                std::vector<Update>* out) {
  std::shared_ptr<SessionCall> call;
  uint64_t id = 0, credit = 0;
  RunStream::Next result;
  {
    absl::MutexLock lock(&mu_);
    result = TakeLocked(timeout, out);
    if (result == RunStream::Next::kUpdates) {
      uncredited_ += queue_framed_bytes_;
      queue_framed_bytes_ = 0;
      if (!done_ && uncredited_ >= credit_threshold_) {
        credit = uncredited_;
        uncredited_ = 0;
        call = call_;
        id = id_;
      }
    }
  }
  if (call != nullptr) call->Credit(id, credit);
  return result;
}

void MuxStream::Cancel() {
  std::shared_ptr<SessionCall> call;
  uint64_t id = 0;
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      closed_ = true;
      call = std::move(call_);
      id = id_;
    }
    if (!done_) {
      EndLocked(absl::CancelledError("the stream was cancelled"));
      listener = std::move(listener_);
    }
  }
  if (call != nullptr) call->Close(id);
  if (listener) listener();
}

namespace {

// The RunStream of a session's stream; started again as its own call, at
// once, when the orchestrator turns out to have no Session method. The
// switch happens on whichever thread learns it (the session's OnDone, or
// the owner's), so what it touches is shared with the session's listener.
class SessionRunStream final : public RunStream {
 public:
  SessionRunStream(std::shared_ptr<MuxStream> mux,
                   std::function<std::unique_ptr<RunStream>()> fallback)
      : state_(std::make_shared<State>(std::move(mux), std::move(fallback))) {
    state_->mux->SetListener([state = state_] { state->OnNews(); });
  }
  ~SessionRunStream() override {
    state_->mux->Release();
    std::unique_ptr<RunStream> fallback;
    {
      absl::MutexLock lock(&state_->mu);
      state_->released = true;
      state_->listener = nullptr;
      fallback = std::move(state_->fallback);
    }
    // `fallback` lets go of its call here.
  }

  Opening WaitOpening(absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    if (RunStream* f = state_->Fallback()) return f->WaitOpening(timeout);
    const Opening opening = state_->mux->WaitOpening(timeout);
    if (opening != Opening::kFinished) return opening;
    if (RunStream* f = state_->Fallback()) {
      return f->WaitOpening(
          std::max(absl::ZeroDuration(), deadline - absl::Now()));
    }
    return opening;
  }
  Next Wait(absl::Duration timeout, std::vector<Update>* out) override {
    if (RunStream* f = state_->Fallback()) return f->Wait(timeout, out);
    const Next next = state_->mux->Wait(timeout, out);
    if (next != Next::kFinished) return next;
    if (RunStream* f = state_->Fallback()) {
      return f->Wait(absl::ZeroDuration(), out);
    }
    return next;
  }
  absl::Status status() const override {
    if (RunStream* f = state_->Fallback()) return f->status();
    return state_->mux->status();
  }
  void Cancel() override {
    RunStream* fallback;
    {
      absl::MutexLock lock(&state_->mu);
      state_->cancelled = true;
      fallback = state_->fallback.get();
    }
    // Outside the lock: cancelling calls the owner's listener.
    if (fallback != nullptr) {
      fallback->Cancel();
    } else {
      state_->mux->Cancel();
    }
  }
  bool WaitFinished(absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    if (RunStream* f = state_->Fallback()) return f->WaitFinished(timeout);
    if (!state_->mux->WaitFinished(timeout)) return false;
    if (RunStream* f = state_->Fallback()) {
      return f->WaitFinished(
          std::max(absl::ZeroDuration(), deadline - absl::Now()));
    }
    return true;
  }
  void SetListener(std::function<void()> listener) override {
    RunStream* fallback;
    bool news;
    {
      absl::MutexLock lock(&state_->mu);
      state_->listener = listener;
      fallback = state_->fallback.get();
      news = fallback == nullptr && listener != nullptr;
    }
    if (fallback != nullptr) {
      fallback->SetListener(std::move(listener));
    } else if (news) {
      // What the session already said is told at once, as a RunStream does.
      state_->mux->SetListener([state = state_] { state->OnNews(); });
    }
  }

 private:
  struct State {
    State(std::shared_ptr<MuxStream> m,
          std::function<std::unique_ptr<RunStream>()> f)
        : mux(std::move(m)), start_fallback(std::move(f)) {}

    // The session's news: passed on, after a switch to the fallback when
    // that is what it says.
    void OnNews() {
      if (Fallback() != nullptr) return;  // The fallback tells from now on.
      std::function<void()> l;
      {
        absl::MutexLock lock(&mu);
        l = listener;
      }
      if (l) l();
    }
    // The fallback stream once there is (or must be) one, else null.
    RunStream* Fallback() {
      std::function<void()> l;
      RunStream* started;
      {
        absl::MutexLock lock(&mu);
        if (fallback != nullptr) return fallback.get();
        if (released || cancelled || !mux->Unsupported()) return nullptr;
        fallback = start_fallback();
        l = listener;
        started = fallback.get();
      }
      if (l) started->SetListener(std::move(l));
      return started;
    }

    const std::shared_ptr<MuxStream> mux;
    const std::function<std::unique_ptr<RunStream>()> start_fallback;
    absl::Mutex mu;
    std::unique_ptr<RunStream> fallback ABSL_GUARDED_BY(mu);
    std::function<void()> listener ABSL_GUARDED_BY(mu);
    bool cancelled ABSL_GUARDED_BY(mu) = false;
    bool released ABSL_GUARDED_BY(mu) = false;
  };

  const std::shared_ptr<State> state_;
};

}  // namespace

SessionPool::SessionPool(agentstream::v1::Orchestrator::Stub* stub,
                         CallCounter& calls, uint64_t window_bytes,
                         absl::Duration max_age,
                         std::shared_ptr<UpstreamCounters> counters)
    : stub_(stub),
      calls_(calls),
      window_bytes_(window_bytes),
      max_age_(max_age),
      counters_(std::move(counters)) {}

SessionPool::~SessionPool() { Shutdown(); }

// How long Open waits for an ended call's status (its OnDone follows the end
// of its reads within milliseconds).
constexpr absl::Duration kAwaitEnd = absl::Milliseconds(200);

std::shared_ptr<SessionCall> SessionPool::Current() {
  std::shared_ptr<SessionCall> retired, current;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    std::shared_ptr<SessionCall>& slot = calls_in_use_[next_++ % kSessions];
    if (slot != nullptr && max_age_ > absl::ZeroDuration() &&
        now - slot->started() >= max_age_) {
      retired = std::move(slot);
      // Kept (weakly) for Shutdown; each retired call goes by itself.
      std::erase_if(retired_, [](const std::weak_ptr<SessionCall>& c) {
        return c.expired();
      });
      retired_.push_back(retired);
    }
    if (slot == nullptr || slot->over()) {
      slot = SessionCall::Start(stub_, calls_, &supported_, now);
    }
    current = slot;
  }
  // Outside the pool's lock: it may half-close the call.
  if (retired != nullptr) retired->Retire();
  return current;
}

std::unique_ptr<RunStream> SessionPool::Open(
    agentstream::v1::SessionOpen open,
    std::function<std::unique_ptr<RunStream>()> fallback) {
  open.set_window_bytes(window_bytes_);
  auto mux = std::make_shared<MuxStream>(window_bytes_, counters_);
  // A call that ended between Current() and Open() (it may end at once: an
  // orchestrator without Session answers UNIMPLEMENTED straight away) is
  // replaced once; UNIMPLEMENTED, or a second failure, is the orchestrator's
  // answer, which the stream reports (UNIMPLEMENTED: through its fallback).
  // A call retired between Current() and Open() is no failure: the next
  // Current() has its successor (bounded: each retirement follows a new
  // call's max age).
  size_t retired = 0;
  for (int attempt = 0; attempt < 2;) {
    std::shared_ptr<SessionCall> call = Current();
    const SessionCall::Opened opened = call->Open(mux, open);
    if (opened == SessionCall::Opened::kYes) break;
    if (opened == SessionCall::Opened::kRetired && ++retired <= kSessions) {
      continue;
    }
    const absl::Status ended = call->AwaitEnd(kAwaitEnd);
    if (ended.code() == absl::StatusCode::kUnimplemented || attempt == 1) {
      mux->OnCallEnd(ended.ok() ? absl::UnavailableError(
                                      "the session to the orchestrator ended")
                                : ended);
    }
    if (ended.code() == absl::StatusCode::kUnimplemented) break;
    ++attempt;
  }
  return std::make_unique<SessionRunStream>(std::move(mux),
                                            std::move(fallback));
}

void SessionPool::Shutdown() {
  std::vector<std::shared_ptr<SessionCall>> calls;
  {
    absl::MutexLock lock(&mu_);
    for (auto& slot : calls_in_use_) {
      if (slot != nullptr) calls.push_back(std::move(slot));
    }
    for (auto& weak : retired_) {
      if (auto call = weak.lock()) calls.push_back(std::move(call));
    }
    retired_.clear();
  }
  for (auto& call : calls) call->Cancel();
}

}  // namespace agentstream::gateway
