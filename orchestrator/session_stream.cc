#include "orchestrator/session_stream.h"

#include <grpcpp/support/slice.h>

#include <algorithm>
#include <functional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "google/protobuf/io/coded_stream.h"

namespace agentstream::orchestrator {
namespace {

// Wire helpers for SessionMessage, written by hand so that a batch is the
// log's bytes copied once (docs/CONTRACT.md, "Sessions"): SessionMessage
// field 1 (frames), SessionFrame fields 1 to 5, SessionEnd fields 1 and 2.
constexpr uint8_t kVarint = 0, kBytes = 2;
constexpr uint8_t Tag(int field, uint8_t type) {
  return static_cast<uint8_t>((field << 3) | type);
}

void PutVarint(uint64_t v, std::string* out) {
  uint8_t bytes[10];
  const uint8_t* end =
      google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(v, bytes);
  out->append(reinterpret_cast<const char*>(bytes), end - bytes);
}

void PutBytesField(int field, std::string_view bytes, std::string* out) {
  out->push_back(static_cast<char>(Tag(field, kBytes)));
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

std::string EncodeEnd(const absl::Status& status) {
  std::string end;
  if (!status.ok()) {
    end.push_back(static_cast<char>(Tag(1, kVarint)));
    PutVarint(static_cast<uint64_t>(status.code()), &end);
  }
  if (!status.message().empty()) {
    PutBytesField(
        2, std::string_view(status.message().data(), status.message().size()),
        &end);
  }
  return end;
}

void ReleaseString(void* user_data) {
  delete static_cast<std::string*>(user_data);
}

grpc::ByteBuffer BufferOwning(std::string* bytes) {
  grpc::Slice slice(bytes->data(), bytes->size(), &ReleaseString, bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool ParseRequest(const grpc::ByteBuffer& buffer,
                  agentstream::v1::SessionRequest* request) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  if (slices.size() == 1) {
    return request->ParseFromArray(slices[0].begin(),
                                   static_cast<int>(slices[0].size()));
  }
  std::string bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return request->ParseFromString(bytes);
}

}  // namespace

struct SessionStream::Actions {
  std::vector<std::function<void()>> calls;
  bool start_write = false;
  bool finish = false;
  grpc::Status finish_status;
};

// One stream of the session: its follower's Sink. Fields below the
// constants are the session's (guarded by its mu_).
class SessionStream::Stream final : public LogFollower::Sink {
 public:
  // Where the follower's current Send is.
  enum class SendState {
    kNone,            // No Send outstanding.
    kQueued,          // Its entries wait for a message.
    kWriting,         // They are in the message being written.
    kAwaitingCredit,  // Written; the window is full.
  };

  Stream(SessionStream* session, uint64_t id, uint64_t window)
      : session_(session), id(id), window(window) {}

  // LogFollower::Sink methods
  void Send(absl::Span<const std::shared_ptr<const LogEntry>> entries,
            bool /*more_follows*/) override {
    session_->OnSend(this, entries);
  }
  void End(const absl::Status& status) override {
    session_->OnEnd(this, status);
  }

 private:
  SessionStream* const session_;

 public:
  const uint64_t id;
  const uint64_t window;
  std::shared_ptr<FollowedRun> run;       // Null for a refused open.
  std::shared_ptr<LogFollower> follower;  // Null for a refused open.

  bool queued = false;          // In ready_.
  bool accept_pending = false;  // `accepted` not sent yet.
  std::string request_id;
  SendState send = SendState::kNone;
  std::vector<std::shared_ptr<const LogEntry>> pending;  // kQueued's.
  uint64_t outstanding = 0;    // Bytes sent and not credited.
  bool ended = false;          // The follower ended (or never was).
  bool end_pending = false;    // An `end` frame to send.
  bool end_in_flight = false;  // ... in the message being written.
  absl::Status end_status;
  bool cut_off = false;  // Ended as slow_consumer.
  // An Attach with replay_only: no follower of its run (orchestrator.proto).
  bool replay_only = false;
  bool closed = false;  // No more frames: the client let go.
  bool retired = false;
};

SessionStream::SessionStream(RunManager* manager, OrchestratorMetrics* metrics,
                             FollowerOptions options, CallerResolver resolve)
    : manager_(manager),
      metrics_(metrics),
      options_(options),
      resolve_(std::move(resolve)) {}

SessionStream::~SessionStream() = default;

void SessionStream::Begin() { StartRead(&in_); }

void SessionStream::Run(Actions& actions) {
  for (auto& call : actions.calls) call();
  if (actions.start_write) StartWrite(&out_);
  if (actions.finish) Finish(actions.finish_status);
}

void SessionStream::OnReadDone(bool ok) {
  Actions actions;
  if (ok) {
    HandleRequest(in_, actions);
    in_.Clear();
  }
  bool read_more;
  {
    absl::MutexLock lock(&mu_);
    if (!ok && !reading_ended_) {
      // The client half-closed, or the call broke: every stream goes.
      reading_ended_ = true;
      CloseAllLocked(actions);
    }
    read_more = !reading_ended_ && !broken_ && !finishing_;
    if (NextWriteLocked()) actions.start_write = true;
    if (FinishDueLocked()) {
      actions.finish = true;
      actions.finish_status = final_;
    }
  }
  Run(actions);
  if (read_more) StartRead(&in_);
}

void SessionStream::HandleRequest(const grpc::ByteBuffer& buffer,
                                  Actions& actions) {
  agentstream::v1::SessionRequest request;
  auto fail = [&](std::string why) {
    absl::MutexLock lock(&mu_);
    if (reading_ended_) return;
    AS_LOG(INFO) << "Session ended: " << why;
    final_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
    reading_ended_ = true;
    CloseAllLocked(actions);
  };
  if (!ParseRequest(buffer, &request)) {
    fail("malformed SessionRequest");
    return;
  }
  switch (request.kind_case()) {
    case agentstream::v1::SessionRequest::kOpen: {
      const uint64_t id = request.open().stream();
      bool fresh;
      {
        absl::MutexLock lock(&mu_);
        fresh = id > highest_seen_;
        if (fresh) highest_seen_ = id;
      }
      if (!fresh) {
        fail(absl::StrCat("stream ", id,
                          " is 0 or not above every stream before it"));
        return;
      }
      Open(request.open(), actions);
      return;
    }
    case agentstream::v1::SessionRequest::kCredit: {
      absl::MutexLock lock(&mu_);
      auto it = streams_.find(request.credit().stream());
      if (it == streams_.end()) return;  // Ended meanwhile: nothing owed.
      Stream* s = it->second.get();
      s->outstanding -= std::min(s->outstanding, request.credit().bytes());
      if (s->send == Stream::SendState::kAwaitingCredit &&
          s->outstanding < s->window) {
        s->send = Stream::SendState::kNone;
        actions.calls.push_back([f = s->follower] { f->OnWriteDone(true); });
      }
      return;
    }
    case agentstream::v1::SessionRequest::kClose: {
      absl::MutexLock lock(&mu_);
      auto it = streams_.find(request.close().stream());
      if (it == streams_.end()) return;
      std::shared_ptr<Stream> s = it->second;  // CloseLocked may retire it.
      CloseLocked(s.get(), actions);
      return;
    }
    case agentstream::v1::SessionRequest::KIND_NOT_SET:
      fail("empty SessionRequest");
      return;
  }
}

void SessionStream::Open(const agentstream::v1::SessionOpen& open,
                         Actions& actions) {
  const uint64_t window =
      open.window_bytes() == 0
          ? SessionLimits::kDefaultWindowBytes
          : std::min(open.window_bytes(), SessionLimits::kMaxWindowBytes);
  auto s = std::make_shared<Stream>(this, open.stream(), window);
  {
    absl::MutexLock lock(&mu_);
    if (reading_ended_ || broken_) return;
    if (streams_.size() >= SessionLimits::kMaxStreams) {
      s->ended = true;
      s->end_pending = true;
      s->end_status = absl::ResourceExhaustedError(
          absl::StrCat("at_capacity: ", SessionLimits::kMaxStreams,
                       " streams open on this session; retry later"));
      streams_.emplace(s->id, s);
      QueueLocked(s.get());
      return;
    }
  }
  // Outside the session's lock: starting a run takes the manager's locks,
  // and followers call the session from under theirs.
  absl::StatusOr<std::shared_ptr<FollowedRun>> run;
  std::shared_ptr<orchestrator::Run> created;  // A run to start.
  uint64_t after_seq = 0;
  const auto& md = open.metadata();
  auto lookup = [&md](std::string_view key) {
    auto it = md.find(std::string(key));
    return it == md.end() ? std::string() : it->second;
  };
  const Caller caller = resolve_ != nullptr ? resolve_(lookup) : LocalCaller();
  switch (open.what_case()) {
    case agentstream::v1::SessionOpen::kRun: {
      absl::StatusOr<std::shared_ptr<orchestrator::Run>> made =
          manager_->CreateRun(open.run(), lookup("x-request-id"), caller);
      if (made.ok()) {
        created = *made;
        run = std::shared_ptr<FollowedRun>(created);
      } else {
        AS_LOG(INFO) << "Run refused: " << made.status();
        run = made.status();
      }
      break;
    }
    case agentstream::v1::SessionOpen::kAttach:
      run = manager_->Attach(open.attach().request_id(),
                             open.attach().after_seq(), caller);
      after_seq = open.attach().after_seq();
      s->replay_only = open.attach().replay_only();
      break;
    case agentstream::v1::SessionOpen::WHAT_NOT_SET:
      run =
          absl::InvalidArgumentError("SessionOpen has neither run nor attach");
      break;
  }
  if (run.ok() && *run != nullptr) {
    s->run = *run;
    s->request_id = s->run->request_id();
    s->accept_pending = true;
    if (!s->replay_only) s->run->AddFollower();
    if (metrics_ != nullptr) metrics_->FollowerAdded();
    FollowerOptions follow = options_;
    follow.replay_only = s->replay_only;
    s->follower = std::make_shared<LogFollower>(s->run->log(), after_seq,
                                                s.get(), follow);
  } else {
    // Refused, or (an Attach at the run's end) nothing to send: the single
    // call would end with this status and no initial metadata.
    s->ended = true;
    s->end_pending = true;
    s->end_status = run.ok() ? absl::OkStatus() : run.status();
  }
  absl::MutexLock lock(&mu_);
  streams_.emplace(s->id, s);
  QueueLocked(s.get());
  if (s->follower != nullptr) {
    actions.calls.push_back([s, created] {
      s->follower->Start();
      if (created != nullptr) created->Start();
    });
  }
}

void SessionStream::OnSend(
    Stream* stream, absl::Span<const std::shared_ptr<const LogEntry>> entries) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (stream->closed || broken_) {
      actions.calls.push_back(
          [f = stream->follower] { f->OnWriteDone(false); });
    } else {
      stream->pending.assign(entries.begin(), entries.end());
      stream->send = Stream::SendState::kQueued;
      QueueLocked(stream);
      if (NextWriteLocked()) actions.start_write = true;
    }
  }
  Run(actions);
}

void SessionStream::OnEnd(Stream* stream, const absl::Status& status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    stream->ended = true;
    stream->cut_off = status.code() == absl::StatusCode::kResourceExhausted;
    if (stream->closed || broken_) {
      RetireLocked(stream, actions);
    } else {
      stream->end_pending = true;
      stream->end_status = status;
      QueueLocked(stream);
      if (NextWriteLocked()) actions.start_write = true;
    }
    if (FinishDueLocked()) {
      actions.finish = true;
      actions.finish_status = final_;
    }
  }
  Run(actions);
}

void SessionStream::OnWriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) broken_ = true;
    std::vector<std::shared_ptr<Stream>> written;
    written.swap(in_flight_);
    for (const std::shared_ptr<Stream>& s : written) {
      if (s->send == Stream::SendState::kWriting) {
        if (ok && !s->closed && s->outstanding >= s->window) {
          s->send = Stream::SendState::kAwaitingCredit;
        } else {
          s->send = Stream::SendState::kNone;
          actions.calls.push_back(
              [f = s->follower, ok] { f->OnWriteDone(ok); });
        }
      }
      if (s->end_in_flight) {
        s->end_in_flight = false;
        RetireLocked(s.get(), actions);
      }
    }
    if (broken_) CloseAllLocked(actions);
    if (NextWriteLocked()) actions.start_write = true;
    if (FinishDueLocked()) {
      actions.finish = true;
      actions.finish_status = final_;
    }
  }
  Run(actions);
}

void SessionStream::OnCancel() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    broken_ = true;
    CloseAllLocked(actions);
    if (FinishDueLocked()) {
      actions.finish = true;
      actions.finish_status = final_;
    }
  }
  Run(actions);
}

void SessionStream::OnDone() { delete this; }

void SessionStream::QueueLocked(Stream* stream) {
  if (stream->queued || stream->retired) return;
  auto it = streams_.find(stream->id);
  if (it == streams_.end()) return;
  stream->queued = true;
  ready_.push_back(it->second);
}

bool SessionStream::NextWriteLocked() {
  if (writing_ || broken_ || finishing_) return false;
  std::string* message = nullptr;
  while (!ready_.empty() &&
         (message == nullptr ||
          message->size() < SessionLimits::kMaxMessageBytes)) {
    std::shared_ptr<Stream> s = std::move(ready_.front());
    ready_.pop_front();
    s->queued = false;
    if (s->closed || s->retired) continue;
    // The frame: fields in number order.
    std::string frame;
    frame.push_back(static_cast<char>(Tag(1, kVarint)));
    PutVarint(s->id, &frame);
    if (s->accept_pending) {
      s->accept_pending = false;
      frame.push_back(static_cast<char>(Tag(2, kVarint)));
      frame.push_back(1);
      PutBytesField(3, s->request_id, &frame);
    }
    if (s->send == Stream::SendState::kQueued) {
      size_t size = 0;
      for (const auto& e : s->pending) size += e->batch_bytes().size();
      frame.push_back(static_cast<char>(Tag(4, kBytes)));
      PutVarint(size, &frame);
      frame.reserve(frame.size() + size + 64);
      for (const auto& e : s->pending) frame.append(e->batch_bytes());
      if (metrics_ != nullptr) {
        // The hop to the gateway's stream, for the stream's batch at once
        // (metrics are lock-free: fine under mu_).
        metrics::HopBatch hop(metrics_->hop_to_write(), metrics::WallNanos());
        for (const auto& e : s->pending) hop.Add(e->emitted_at);
        metrics_->UpdatesSent(static_cast<int64_t>(s->pending.size()),
                              static_cast<int64_t>(size));
      }
      s->pending.clear();
      s->outstanding += size;
      s->send = Stream::SendState::kWriting;
    }
    // An end goes after the stream's last batch, never beside a batch of
    // its own still queued.
    if (s->end_pending && s->send != Stream::SendState::kQueued) {
      s->end_pending = false;
      s->end_in_flight = true;
      PutBytesField(5, EncodeEnd(s->end_status), &frame);
    }
    if (message == nullptr) {
      message = new std::string();
      message->reserve(
          std::min(SessionLimits::kMaxMessageBytes, frame.size() + 16));
    }
    message->push_back(static_cast<char>(Tag(1, kBytes)));
    PutVarint(frame.size(), message);
    message->append(frame);
    in_flight_.push_back(std::move(s));
  }
  if (message == nullptr) return false;
  out_ = BufferOwning(message);
  writing_ = true;
  return true;
}

void SessionStream::CloseLocked(Stream* s, Actions& actions) {
  if (s->closed) return;
  s->closed = true;
  s->accept_pending = false;
  s->end_pending = false;
  s->pending.clear();
  if (s->follower != nullptr && !s->ended) {
    // The follower ends (kCancelled) once no write of it is outstanding:
    // one queued or held for credit is given up now, one being written
    // completes in OnWriteDone.
    const bool complete = s->send == Stream::SendState::kQueued ||
                          s->send == Stream::SendState::kAwaitingCredit;
    if (complete) s->send = Stream::SendState::kNone;
    actions.calls.push_back([f = s->follower, complete] {
      f->Cancel();
      if (complete) f->OnWriteDone(false);
    });
  } else if (!s->end_in_flight) {
    RetireLocked(s, actions);
  }
}

void SessionStream::CloseAllLocked(Actions& actions) {
  std::vector<std::shared_ptr<Stream>> all;
  all.reserve(streams_.size());
  for (const auto& [id, s] : streams_) all.push_back(s);
  for (const std::shared_ptr<Stream>& s : all) CloseLocked(s.get(), actions);
}

void SessionStream::RetireLocked(Stream* stream, Actions& actions) {
  if (stream->retired) return;
  stream->retired = true;
  auto it = streams_.find(stream->id);
  if (it == streams_.end()) return;
  std::shared_ptr<Stream> s = std::move(it->second);
  streams_.erase(it);
  if (s->follower == nullptr) return;
  // Not `this`: once the last stream is retired the call may finish, and
  // the session be deleted, before this runs.
  actions.calls.push_back([s, manager = manager_, metrics = metrics_] {
    s->follower->Stop();
    if (metrics != nullptr) metrics->FollowerRemoved();
    if (!s->replay_only) manager->ReleaseFollower(s->run, s->cut_off);
  });
}

bool SessionStream::FinishDueLocked() {
  if (finishing_ || (!reading_ended_ && !broken_)) return false;
  if (!streams_.empty() || writing_) return false;
  finishing_ = true;
  return true;
}

}  // namespace agentstream::orchestrator
