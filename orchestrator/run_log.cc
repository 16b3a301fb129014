#include "orchestrator/run_log.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"

namespace agentstream::orchestrator {

LogEntry::~LogEntry() {
  if (memory != nullptr) memory->Release(charged);
}

agentstream::v1::Update LogEntry::Parse() const {
  agentstream::v1::Update update;
  const std::string_view b = bytes();
  update.ParseFromArray(b.data(), static_cast<int>(b.size()));
  return update;
}

namespace {

// Serializes `update` into `out` as UpdateBatch field 1 (tag, length,
// update); returns the size of the tag and length.
uint8_t SerializeFramed(const agentstream::v1::Update& update,
                        std::string* out) {
  const size_t size = update.ByteSizeLong();
  const uint32_t size32 = static_cast<uint32_t>(size);
  const size_t header =
      1 + google::protobuf::io::CodedOutputStream::VarintSize32(size32);
  out->resize(header + size);
  auto* p = reinterpret_cast<uint8_t*>(out->data());
  *p++ = kBatchUpdatesTag;
  p = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(size32, p);
  update.SerializeWithCachedSizesToArray(p);
  return static_cast<uint8_t>(header);
}

}  // namespace

RunLog::RunLog(size_t max_events, size_t max_bytes,
               std::shared_ptr<RunMemory> memory)
    : max_events_(max_events == 0 ? 1 : max_events),
      max_bytes_(max_bytes == 0 ? 1 : max_bytes),
      memory_(std::move(memory)) {}

uint64_t RunLog::Append(agentstream::v1::Update update) {
  auto entry = std::make_shared<LogEntry>();
  entry->kind = update.kind_case();
  entry->specialist = update.specialist();
  entry->emitted_at = update.emitted_at();
  absl::MutexLock lock(&mu_);
  if (ended_) return 0;
  entry->seq = ++last_seq_;
  update.set_seq(entry->seq);
  // Serialized under the lock so that seq order is log order; the update is
  // dropped right after (followers only need the bytes).
  entry->header_size = SerializeFramed(update, &entry->framed);
  return StoreLocked(std::move(entry));
}

uint64_t RunLog::AppendEncoded(agentstream::v1::Update::KindCase kind,
                               const EncodedUpdate& encoded,
                               std::string_view request_id, int64_t emitted_at,
                               const std::string& specialist) {
  auto entry = std::make_shared<LogEntry>();
  entry->kind = kind;
  entry->specialist = specialist;
  entry->emitted_at = emitted_at;
  absl::MutexLock lock(&mu_);
  if (ended_) return 0;
  entry->seq = ++last_seq_;
  entry->header_size = encoded.WriteFramed(
      Envelope{request_id, entry->seq, emitted_at, specialist}, &entry->framed);
  return StoreLocked(std::move(entry));
}

uint64_t RunLog::StoreLocked(std::shared_ptr<LogEntry> entry) {
  if (entry->is_progress()) {
    latest_progress_[entry->specialist] = entry->seq;
  } else {
    ++non_progress_total_;
  }
  entry->non_progress_through = non_progress_total_;
  const size_t charge = entry->Charge();
  if (memory_ != nullptr) {
    memory_->Charge(charge);
    entry->memory = memory_;
    entry->charged = charge;
  }
  bytes_ += charge;
  if (store_sink_ != nullptr) store_sink_->OnAppended(entry);
  entries_.push_back(std::move(entry));
  while (entries_.size() > 1 &&
         (entries_.size() > max_events_ || bytes_ > max_bytes_)) {
    PopFrontLocked();
  }
  return last_seq_;
}

absl::StatusOr<uint64_t> RunLog::AppendStored(std::string_view bytes) {
  agentstream::v1::Update update;
  if (!update.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("a stored update does not parse");
  }
  if (update.seq() == 0) {
    return absl::InvalidArgumentError("a stored update has no seq");
  }
  auto entry = std::make_shared<LogEntry>();
  entry->seq = update.seq();
  entry->kind = update.kind_case();
  entry->specialist = update.specialist();
  entry->emitted_at = update.emitted_at();
  // Framed as Append frames it: the same bytes, behind field 1's header.
  const uint32_t size32 = static_cast<uint32_t>(bytes.size());
  const size_t header =
      1 + google::protobuf::io::CodedOutputStream::VarintSize32(size32);
  entry->framed.resize(header + bytes.size());
  auto* p = reinterpret_cast<uint8_t*>(entry->framed.data());
  *p++ = kBatchUpdatesTag;
  google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(size32, p);
  std::copy(bytes.begin(), bytes.end(), entry->framed.begin() + header);
  entry->header_size = static_cast<uint8_t>(header);
  std::deque<std::shared_ptr<const LogEntry>> dropped;  // Freed unlocked.
  absl::MutexLock lock(&mu_);
  if (ended_ || entry->seq <= last_seq_) return 0;
  if (entry->seq > last_seq_ + 1) {
    dropped.swap(entries_);
    bytes_ = 0;
    latest_progress_.clear();
    last_seq_ = entry->seq - 1;
  }
  ++last_seq_;
  return StoreLocked(std::move(entry));
}

void RunLog::PopFrontLocked() {
  bytes_ -= entries_.front()->Charge();
  entries_.pop_front();
}

size_t RunLog::Drop() {
  // Destroyed outside the lock (releasing their charges).
  std::deque<std::shared_ptr<const LogEntry>> dropped;
  absl::MutexLock lock(&mu_);
  dropped.swap(entries_);
  bytes_ = 0;
  latest_progress_.clear();
  return dropped.size();
}

size_t RunLog::TrimTo(size_t max_bytes) {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  while (entries_.size() > 1 && bytes_ > max_bytes) {
    PopFrontLocked();
    ++n;
  }
  return n;
}

void RunLog::End(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  ended_ = true;
  end_status_ = std::move(status);
  if (store_sink_ != nullptr) store_sink_->OnEnded(last_seq_);
}

void RunLog::EnableCommitGate() {
  absl::MutexLock lock(&mu_);
  gated_ = true;
  committed_ = last_seq_;
}

void RunLog::Commit(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  committed_ = std::max(committed_, std::min(seq, last_seq_));
}

void RunLog::SetStoreSink(std::shared_ptr<LogStoreSink> sink) {
  absl::MutexLock lock(&mu_);
  store_sink_ = std::move(sink);
}

void RunLog::Notify() {
  if (memory_ != nullptr) memory_->RelieveIfOver();
  // Usually one or two followers: no allocation per update.
  absl::InlinedVector<std::shared_ptr<LogListener>, 2> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& weak : listeners_) {
      if (auto l = weak.lock()) live.push_back(std::move(l));
    }
  }
  for (const auto& l : live) l->OnLogChanged();
}

// The View only exists inside Read(), under the log's lock, which the
// analysis cannot see through the reference.
uint64_t RunLog::View::last_seq() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return log_.VisibleSeqLocked();
}

uint64_t RunLog::View::first_seq() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return log_.FirstSeqLocked();
}

bool RunLog::View::ended() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return log_.EndedVisibleLocked();
}

const absl::Status& RunLog::View::end_status() const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return log_.end_status_;
}

uint64_t RunLog::View::non_progress_total() const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return log_.non_progress_total_;
}

const std::shared_ptr<const LogEntry>& RunLog::View::At(uint64_t seq) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return log_.entries_[seq - log_.FirstSeqLocked()];
}

bool RunLog::View::Superseded(const LogEntry& entry) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!entry.is_progress()) return false;
  auto it = log_.latest_progress_.find(entry.specialist);
  return it != log_.latest_progress_.end() && it->second > entry.seq;
}

void RunLog::Read(absl::FunctionRef<void(const View&)> reader) const {
  absl::MutexLock lock(&mu_);
  // The lock is held: the View reads the guarded state.
  reader(View(*this));
}

RunLog::Next RunLog::ReadAfter(uint64_t after_seq) const {
  Next next;
  Read([&](const View& view) {
    next.last_seq = view.last_seq();
    next.non_progress_total = view.non_progress_total();
    const uint64_t wanted = after_seq + 1;
    if (wanted < view.first_seq()) {
      next.gap = true;
    } else if (wanted <= view.last_seq()) {
      next.entry = view.At(wanted);
      next.superseded = view.Superseded(*next.entry);
    } else {
      next.ended = view.ended();
    }
  });
  return next;
}

void RunLog::AddListener(std::weak_ptr<LogListener> listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

void RunLog::RemoveListener(const LogListener* listener) {
  absl::MutexLock lock(&mu_);
  std::vector<std::weak_ptr<LogListener>> kept;
  for (auto& weak : listeners_) {
    auto l = weak.lock();
    if (l != nullptr && l.get() != listener) kept.push_back(std::move(weak));
  }
  listeners_ = std::move(kept);
}

bool RunLog::has_listeners() const {
  absl::MutexLock lock(&mu_);
  for (const auto& weak : listeners_) {
    if (!weak.expired()) return true;
  }
  return false;
}

uint64_t RunLog::last_seq() const {
  absl::MutexLock lock(&mu_);
  return last_seq_;
}

uint64_t RunLog::visible_seq() const {
  absl::MutexLock lock(&mu_);
  return VisibleSeqLocked();
}

bool RunLog::commit_gated() const {
  absl::MutexLock lock(&mu_);
  return gated_;
}

uint64_t RunLog::first_seq() const {
  absl::MutexLock lock(&mu_);
  return FirstSeqLocked();
}

bool RunLog::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

size_t RunLog::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t RunLog::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

uint64_t RunLog::non_progress_total() const {
  absl::MutexLock lock(&mu_);
  return non_progress_total_;
}

LogFollower::LogFollower(std::shared_ptr<RunLog> log, uint64_t after_seq,
                         Sink* sink, FollowerOptions options)
    : log_(std::move(log)),
      sink_(sink),
      options_(options),
      start_non_progress_(log_->non_progress_total()),
      cursor_(after_seq) {}

LogFollower::~LogFollower() = default;

void LogFollower::Start() {
  log_->AddListener(weak_from_this());
  Pump();
}

void LogFollower::Stop() { log_->RemoveListener(this); }

void LogFollower::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) write_failed_ = true;
  }
  Pump();
}

void LogFollower::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  Pump();
}

uint64_t LogFollower::cursor() const {
  absl::MutexLock lock(&mu_);
  return cursor_;
}

uint64_t LogFollower::coalesced() const {
  absl::MutexLock lock(&mu_);
  return coalesced_;
}

void LogFollower::Pump() {
  // The batch to write: one entry, or (batched) up to max_batch_bytes.
  absl::InlinedVector<std::shared_ptr<const LogEntry>, 4> batch;
  bool more_follows = false;
  int64_t skipped = 0;
  bool idle = false;  // Nothing to send yet; OnLogChanged will call again.
  absl::Status finish;
  {
    absl::MutexLock lock(&mu_);
    if (write_in_flight_ || finished_) return;
    if (cancelled_ || write_failed_) {
      finish = absl::CancelledError(write_failed_ ? "the stream broke"
                                                  : "the client went away");
    } else {
      // Called by Read() right here, with mu_ still held.
      auto take = [&](const RunLog::View& view) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                      mu_) {
        const uint64_t max_lag = options_.max_lag;
        if (options_.replay_only && !stop_at_) stop_at_ = view.last_seq();
        const uint64_t last_seq =
            stop_at_ ? std::min(*stop_at_, view.last_seq()) : view.last_seq();
        if (cursor_ + 1 < view.first_seq()) {
          finish = absl::OutOfRangeError(absl::StrCat(
              "gap: the run's log no longer holds seq ", cursor_ + 1,
              " (it starts at ", view.first_seq(), ")"));
          return;
        }
        size_t batch_bytes = 0;
        while (cursor_ < last_seq) {
          const std::shared_ptr<const LogEntry>& entry = view.At(cursor_ + 1);
          // The backlog counts this entry and every one after it.
          const uint64_t backlog = last_seq - cursor_;
          if (max_lag > 0 && backlog > max_lag && view.Superseded(*entry)) {
            cursor_ = entry->seq;  // Coalesced into a newer progress.
            ++skipped;
            continue;
          }
          if (batch.empty()) {
            if (max_lag > 0) {
              // Non-progress updates from this entry on, not counting those
              // that were in the log before the follower started. Checked at
              // a write's first entry only: it can only shrink further on.
              const uint64_t before_entry =
                  entry->non_progress_through - (entry->is_progress() ? 0 : 1);
              const uint64_t non_progress_backlog =
                  view.non_progress_total() -
                  std::max(before_entry, start_non_progress_);
              if (non_progress_backlog > max_lag) {
                finish = absl::ResourceExhaustedError(absl::StrCat(
                    "slow_consumer: the follower fell ", non_progress_backlog,
                    " updates behind (limit ", max_lag,
                    "); attach again after seq ", cursor_));
                return;
              }
            }
          } else if (options_.max_batch_bytes == 0 ||
                     batch_bytes + entry->batch_bytes().size() >
                         options_.max_batch_bytes) {
            break;  // The write is full; the rest goes in the next one.
          }
          batch_bytes += entry->batch_bytes().size();
          batch.push_back(entry);
          cursor_ = entry->seq;
        }
        if (!batch.empty()) {
          more_follows = cursor_ < last_seq;
        } else if (view.ended()) {
          finish = view.end_status();
        } else if (stop_at_ && cursor_ >= *stop_at_) {
          finish = absl::OkStatus();
        } else {
          idle = true;  // Everything read (or coalesced); nothing to write.
        }
      };
      log_->Read(take);
      write_in_flight_ = !batch.empty();
    }
    coalesced_ += skipped;
    if (batch.empty() && !idle) finished_ = true;
  }
  if (options_.metrics != nullptr) {
    if (skipped > 0) options_.metrics->UpdatesCoalesced(skipped);
    if (batch.empty() && !idle) {
      if (finish.code() == absl::StatusCode::kResourceExhausted) {
        options_.metrics->SlowConsumerCutOff();
      } else if (finish.code() == absl::StatusCode::kOutOfRange) {
        options_.metrics->Gap();
      }
    }
  }
  if (idle) return;
  if (!batch.empty()) {
    sink_->Send(batch, more_follows);
  } else {
    sink_->End(finish);
  }
}

}  // namespace agentstream::orchestrator
