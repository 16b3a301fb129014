#include "specialists/sdk/analyze_session.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/hash_table_shrink.h"
#include "common/log.h"
#include "specialists/sdk/specialist_call.h"

namespace agentstream::specialists {
namespace {

using agentstream::v1::AnalyzeSessionOpen;
using agentstream::v1::AnalyzeSessionRequest;
using agentstream::v1::SessionFrame;
using agentstream::v1::SessionMessage;
using agentstream::v1::UpdateBatch;

// What a frame adds to a message besides its batch (tags, lengths, ids).
constexpr size_t kFrameOverheadBytes = 32;

class Session;

// One analysis of a session. The session holds the reference a call's
// reactor would (Call's first), given back by Release().
class SessionStream final : public SpecialistService::Call {
 public:
  SessionStream(SpecialistService* service,
                grpc::CallbackServerContext* context,
                std::shared_ptr<Session> session, uint64_t id,
                AnalyzeRequest request, uint64_t window)
      : Call(service, context, &request_),
        request_(std::move(request)),
        request_id_(request_.request_id()),
        session_(std::move(session)),
        id_(id),
        credit_(static_cast<int64_t>(window)) {}

  uint64_t id() const { return id_; }
  const std::string& request_id() const { return request_id_; }

  // The client granted `bytes` more.
  void AddCredit(uint64_t bytes) {
    constexpr auto kMax = static_cast<int64_t>(kMaxSessionWindowBytes);
    mu_.Lock();
    // Never more than the largest window: a client that grants more than
    // it consumed gains nothing but a bounded burst.
    credit_ = std::min<int64_t>(
        credit_ + static_cast<int64_t>(std::min<uint64_t>(bytes, kMax)), kMax);
    const bool write = TakeNextLocked();
    mu_.Unlock();
    if (write) WriteTaken();
  }
  // The session's write that carried this stream's batch completed.
  void Written(bool ok) { WriteDone(ok); }
  // The stream is over for the session (its end written, or the session
  // gone): the reference a call's reactor gives back in OnDone.
  void Release() { Done(); }

  // Touched only by the session between WriteTaken and Written (the
  // holder of the stream's write in flight).
  UpdateBatch batch;
  int64_t batch_bytes = 0;  // Its encoded size.
  bool accepted_sent = false;

 private:
  bool TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) override {
    if (queue_.writing() || !queue_.more_pending() || credit_ <= 0) {
      return false;
    }
    queue_.TakeNext(&batch, credit_);
    batch_bytes = queue_.in_flight_framed_bytes();
    credit_ -= batch_bytes;
    return true;
  }
  void ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) override {
    UpdateBatch().Swap(&batch);
    queue_.Shrink();
  }
  void WriteTaken() override;
  void FinishRpc(const grpc::Status& status) override;

  // Its own: a call's request is gRPC's, a stream's comes in the open.
  AnalyzeRequest request_;
  const std::string request_id_;
  const std::shared_ptr<Session> session_;
  const uint64_t id_;
  int64_t credit_ ABSL_GUARDED_BY(mu_);
};

class Session final
    : public grpc::ServerBidiReactor<AnalyzeSessionRequest, SessionMessage>,
      public std::enable_shared_from_this<Session> {
 public:
  Session(SpecialistService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  void Begin() {
    self_ = shared_from_this();
    StartRead(&in_);
  }

  // A stream's batch waits to be written.
  void Ready(SessionStream* stream) {
    bool write = false, lost = false;
    {
      absl::MutexLock lock(&mu_);
      if (broken_) {
        lost = true;
      } else {
        ready_.push_back(stream);
        write = PackLocked();
      }
    }
    if (lost) stream->Written(false);
    if (write) StartWrite(&out_);
  }

  // A stream ended with `status`: its end frame.
  void End(SessionStream* stream, const grpc::Status& status) {
    bool write = false, release = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (broken_) {
        release = true;
        streams_.erase(stream->id());
        finish = FinishDueLocked();
      } else {
        ending_.emplace_back(stream, status);
        write = PackLocked();
      }
    }
    if (release) stream->Release();
    if (write) StartWrite(&out_);
    if (finish) Finish(final_);
  }

  // grpc::ServerBidiReactor methods
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed (or the call broke): every stream goes.
      {
        absl::MutexLock lock(&mu_);
        reading_ended_ = true;
      }
      CancelAll("the client ended the session");
      MaybeFinish();
      return;
    }
    bool read_more = true;
    switch (in_.kind_case()) {
      case AnalyzeSessionRequest::kOpen:
        read_more = Open(in_.open());
        break;
      case AnalyzeSessionRequest::kCredit:
        WithStream(in_.credit().stream(), [&](SessionStream* s) {
          s->AddCredit(in_.credit().bytes());
        });
        break;
      case AnalyzeSessionRequest::kClose:
        WithStream(in_.close().stream(), [](SessionStream* s) {
          s->Cancel("the client closed the stream");
        });
        break;
      case AnalyzeSessionRequest::KIND_NOT_SET:
        break;  // A kind this version does not know: ignored.
    }
    in_.Clear();
    if (read_more) {
      StartRead(&in_);
    } else {
      MaybeFinish();
    }
  }

  void OnWriteDone(bool ok) override {
    std::vector<SessionStream*> carried, ended, lost;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      carried.swap(carried_);
      ended.swap(carried_ends_);
      for (SessionStream* s : ended) streams_.erase(s->id());
      if (!ok) BreakLocked(&lost, &ended);
      ShrinkIfSparse(streams_);
    }
    for (SessionStream* s : carried) s->Written(ok);
    for (SessionStream* s : lost) s->Written(false);
    for (SessionStream* s : ended) s->Release();
    if (!ok) CancelAll("the session's stream closed");
    bool write;
    {
      absl::MutexLock lock(&mu_);
      write = PackLocked();
    }
    if (write) StartWrite(&out_);
    MaybeFinish();
  }

  void OnCancel() override {
    std::vector<SessionStream*> lost, ended;
    {
      absl::MutexLock lock(&mu_);
      BreakLocked(&lost, &ended);
    }
    for (SessionStream* s : lost) s->Written(false);
    for (SessionStream* s : ended) s->Release();
    CancelAll("the client cancelled the session");
    MaybeFinish();
  }

  void OnDone() override {
    // No callback follows: what is still carried never completes, and the
    // streams left (an analysis still ending) are let go here.
    std::vector<SessionStream*> carried, rest;
    std::shared_ptr<Session> self;
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      carried.swap(carried_);
      // Batches taken but never written fail as a carried write would.
      carried.insert(carried.end(), ready_.begin(), ready_.end());
      for (auto& [id, s] : streams_) rest.push_back(s);
      streams_.clear();
      ready_.clear();
      ending_.clear();
      carried_ends_.clear();
      self = std::move(self_);
    }
    for (SessionStream* s : carried) s->Written(false);
    for (SessionStream* s : rest) {
      s->Cancel("the session ended");
      s->Release();
    }
    // `self` may be the last reference (streams that still run hold one).
  }

 private:
  // Opens a stream; false when the request breaks the protocol (the
  // session then ends INVALID_ARGUMENT).
  bool Open(const AnalyzeSessionOpen& open) {
    uint64_t window = open.window_bytes() == 0 ? kDefaultSessionWindowBytes
                                               : open.window_bytes();
    window = std::min(window, kMaxSessionWindowBytes);
    bool fresh;
    {
      absl::MutexLock lock(&mu_);
      fresh = open.stream() > last_id_;
      if (fresh) {
        last_id_ = open.stream();
      } else {
        final_ = grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            "AnalyzeSessionOpen.stream must be above every stream before it");
        reading_ended_ = true;
      }
    }
    if (!fresh) {
      AS_LOG(INFO) << "AnalyzeSession ended: " << final_.error_message();
      CancelAll("the session broke its protocol");
      return false;
    }
    auto* stream = new SessionStream(service_, context_, shared_from_this(),
                                     open.stream(), open.request(), window);
    {
      absl::MutexLock lock(&mu_);
      streams_[stream->id()] = stream;
    }
    stream->Begin();
    return true;
  }

  template <typename Fn>
  void WithStream(uint64_t id, Fn fn) {
    SessionStream* stream = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto it = streams_.find(id);
      if (it == streams_.end()) return;  // Ended meanwhile, or never was.
      stream = it->second;
      stream->Ref();
    }
    fn(stream);
    stream->Unref();
  }

  void CancelAll(const std::string& reason) {
    std::vector<SessionStream*> streams;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, s] : streams_) {
        s->Ref();
        streams.push_back(s);
      }
    }
    for (SessionStream* s : streams) {
      s->Cancel(reason);
      s->Unref();
    }
  }

  void MaybeFinish() {
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      finish = FinishDueLocked();
    }
    if (finish) Finish(final_);
  }

  bool FinishDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_ || (!reading_ended_ && !broken_)) return false;
    if (!streams_.empty() || writing_) return false;
    finishing_ = true;
    return true;
  }

  // Nothing more is written: the batches waiting for a write are lost
  // (`lost`: each stream's write fails, so that its call can finish) and
  // the ends waiting for one are over (`ended`: let go). Without this a
  // stream waiting here would never end, nor would the session, whose
  // Finish waits for every stream (and gRPC's OnDone for that Finish).
  void BreakLocked(std::vector<SessionStream*>* lost,
                   std::vector<SessionStream*>* ended)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    broken_ = true;
    lost->insert(lost->end(), ready_.begin(), ready_.end());
    ready_.clear();
    for (auto& [s, status] : ending_) {
      streams_.erase(s->id());
      ended->push_back(s);
    }
    ending_.clear();
  }

  // Packs out_ from what waits, when no write is in flight; true to write.
  bool PackLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || broken_ || (ready_.empty() && ending_.empty())) {
      return false;
    }
    out_.Clear();
    size_t bytes = 0;
    size_t taken = 0;
    for (; taken < ready_.size(); ++taken) {
      SessionStream* s = ready_[taken];
      if (taken > 0 &&
          bytes + static_cast<size_t>(s->batch_bytes) > kMaxMessageBytes) {
        break;
      }
      SessionFrame* frame = out_.add_frames();
      frame->set_stream(s->id());
      if (!s->accepted_sent) {
        frame->set_accepted(true);
        frame->set_request_id(s->request_id());
        s->accepted_sent = true;
      }
      frame->mutable_batch()->Swap(&s->batch);
      bytes += static_cast<size_t>(s->batch_bytes) + kFrameOverheadBytes;
      carried_.push_back(s);
    }
    ready_.erase(ready_.begin(),
                 ready_.begin() + static_cast<std::ptrdiff_t>(taken));
    // A stream's end follows its last batch (a call finishes only once its
    // queue is drained), so ends can go with any batches.
    for (auto& [s, status] : ending_) {
      SessionFrame* frame = out_.add_frames();
      frame->set_stream(s->id());
      frame->mutable_end()->set_code(static_cast<int>(status.error_code()));
      frame->mutable_end()->set_message(status.error_message());
      carried_ends_.push_back(s);
    }
    ending_.clear();
    writing_ = true;
    return true;
  }

  SpecialistService* const service_;
  grpc::CallbackServerContext* const context_;
  AnalyzeSessionRequest in_;       // Touched by the read in flight only.
  SessionMessage out_;             // By the write in flight only.
  std::shared_ptr<Session> self_;  // gRPC's, until OnDone.

  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, SessionStream*> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<SessionStream*> ready_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<SessionStream*, grpc::Status>> ending_
      ABSL_GUARDED_BY(mu_);
  std::vector<SessionStream*> carried_ ABSL_GUARDED_BY(mu_);
  std::vector<SessionStream*> carried_ends_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_;  // Set before finishing_, read after.
};

void SessionStream::WriteTaken() {
  HandingToGrpc(batch);
  session_->Ready(this);
}

void SessionStream::FinishRpc(const grpc::Status& status) {
  session_->End(this, status);
}

}  // namespace

grpc::ServerBidiReactor<AnalyzeSessionRequest, SessionMessage>*
StartAnalyzeSession(SpecialistService* service,
                    grpc::CallbackServerContext* context) {
  auto session = std::make_shared<Session>(service, context);
  session->Begin();
  return session.get();
}

}  // namespace agentstream::specialists
