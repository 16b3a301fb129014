#include "orchestrator/run_log.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace agentstream::orchestrator {

LogEntry::~LogEntry() {
  if (memory != nullptr) memory->Release(charged);
}

agentstream::v1::Update LogEntry::Parse() const {
  agentstream::v1::Update update;
  update.ParseFromString(bytes);
  return update;
}

RunLog::RunLog(size_t max_events, size_t max_bytes,
               std::shared_ptr<RunMemory> memory)
    : max_events_(max_events == 0 ? 1 : max_events),
      max_bytes_(max_bytes == 0 ? 1 : max_bytes),
      memory_(std::move(memory)) {}

uint64_t RunLog::Append(agentstream::v1::Update update) {
  auto entry = std::make_shared<LogEntry>();
  entry->kind = update.kind_case();
  entry->specialist = update.specialist();
  absl::MutexLock lock(&mu_);
  if (ended_) return 0;
  entry->seq = ++last_seq_;
  update.set_seq(entry->seq);
  // Serialized under the lock so that seq order is log order; the update is
  // dropped right after (followers only need the bytes).
  update.SerializeToString(&entry->bytes);
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
  entries_.push_back(std::move(entry));
  while (entries_.size() > 1 &&
         (entries_.size() > max_events_ || bytes_ > max_bytes_)) {
    PopFrontLocked();
  }
  return last_seq_;
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

void RunLog::End() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
}

void RunLog::Notify() {
  if (memory_ != nullptr) memory_->RelieveIfOver();
  std::vector<std::shared_ptr<LogListener>> live;
  {
    absl::MutexLock lock(&mu_);
    live.reserve(listeners_.size());
    for (const auto& weak : listeners_) {
      if (auto l = weak.lock()) live.push_back(std::move(l));
    }
  }
  for (const auto& l : live) l->OnLogChanged();
}

RunLog::Next RunLog::ReadAfter(uint64_t after_seq) const {
  Next next;
  absl::MutexLock lock(&mu_);
  next.last_seq = last_seq_;
  next.non_progress_total = non_progress_total_;
  const uint64_t first =
      entries_.empty() ? last_seq_ + 1 : entries_.front()->seq;
  const uint64_t wanted = after_seq + 1;
  if (wanted < first) {
    next.gap = true;
  } else if (wanted <= last_seq_) {
    next.entry = entries_[wanted - first];
    if (next.entry->is_progress()) {
      auto it = latest_progress_.find(next.entry->specialist);
      next.superseded =
          it != latest_progress_.end() && it->second > next.entry->seq;
    }
  } else {
    next.ended = ended_;
  }
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

uint64_t RunLog::first_seq() const {
  absl::MutexLock lock(&mu_);
  return entries_.empty() ? last_seq_ + 1 : entries_.front()->seq;
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
  std::shared_ptr<const LogEntry> entry;
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
      const uint64_t max_lag = options_.max_lag;
      while (true) {
        RunLog::Next next = log_->ReadAfter(cursor_);
        if (next.entry != nullptr) {
          const uint64_t backlog = next.last_seq - cursor_;
          if (max_lag > 0 && backlog > max_lag && next.superseded) {
            cursor_ = next.entry->seq;  // Coalesced into a newer progress.
            ++skipped;
            continue;
          }
          if (max_lag > 0) {
            // Non-progress updates from this entry on, not counting those
            // that were in the log before the follower started.
            const uint64_t before_entry = next.entry->non_progress_through -
                                          (next.entry->is_progress() ? 0 : 1);
            const uint64_t non_progress_backlog =
                next.non_progress_total -
                std::max(before_entry, start_non_progress_);
            if (non_progress_backlog > max_lag) {
              finish = absl::ResourceExhaustedError(
                  absl::StrCat("slow_consumer: the follower fell ",
                               non_progress_backlog, " updates behind (limit ",
                               max_lag, "); attach again after seq ", cursor_));
              break;
            }
          }
          entry = std::move(next.entry);
          cursor_ = entry->seq;
          more_follows = entry->seq < next.last_seq;
          write_in_flight_ = true;
        } else if (next.gap) {
          finish = absl::OutOfRangeError(absl::StrCat(
              "gap: the run's log no longer holds seq ", cursor_ + 1,
              " (it starts at ", log_->first_seq(), ")"));
        } else if (next.ended) {
          finish = absl::OkStatus();
        } else {
          idle = true;
        }
        break;
      }
    }
    coalesced_ += skipped;
    if (entry == nullptr && !idle) finished_ = true;
  }
  if (options_.metrics != nullptr) {
    if (skipped > 0) options_.metrics->UpdatesCoalesced(skipped);
    if (entry == nullptr && !idle) {
      if (finish.code() == absl::StatusCode::kResourceExhausted) {
        options_.metrics->SlowConsumerCutOff();
      } else if (finish.code() == absl::StatusCode::kOutOfRange) {
        options_.metrics->Gap();
      }
    }
  }
  if (idle) return;
  if (entry != nullptr) {
    sink_->Send(std::move(entry), more_follows);
  } else {
    sink_->End(finish);
  }
}

}  // namespace agentstream::orchestrator
