#include "orchestrator/run_log.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace agentstream::orchestrator {

RunLog::RunLog(size_t max_events)
    : max_events_(max_events == 0 ? 1 : max_events) {}

uint64_t RunLog::Append(agentstream::v1::Update update) {
  auto entry = std::make_shared<LogEntry>();
  absl::MutexLock lock(&mu_);
  if (ended_) return 0;
  update.set_seq(++last_seq_);
  entry->update = std::move(update);
  entry->update.SerializeToString(&entry->bytes);
  entries_.push_back(std::move(entry));
  while (entries_.size() > max_events_) entries_.pop_front();
  return last_seq_;
}

void RunLog::End() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
}

void RunLog::Notify() {
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
  const uint64_t first =
      entries_.empty() ? last_seq_ + 1 : entries_.front()->seq();
  const uint64_t wanted = after_seq + 1;
  if (wanted < first) {
    next.gap = true;
  } else if (wanted <= last_seq_) {
    next.entry = entries_[wanted - first];
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

uint64_t RunLog::last_seq() const {
  absl::MutexLock lock(&mu_);
  return last_seq_;
}

uint64_t RunLog::first_seq() const {
  absl::MutexLock lock(&mu_);
  return entries_.empty() ? last_seq_ + 1 : entries_.front()->seq();
}

bool RunLog::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

size_t RunLog::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

LogFollower::LogFollower(std::shared_ptr<RunLog> log, uint64_t after_seq,
                         Sink* sink)
    : log_(std::move(log)), sink_(sink), cursor_(after_seq) {}

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

void LogFollower::Pump() {
  std::shared_ptr<const LogEntry> entry;
  absl::Status finish;
  {
    absl::MutexLock lock(&mu_);
    if (write_in_flight_ || finished_) return;
    if (cancelled_ || write_failed_) {
      finish = absl::CancelledError(write_failed_ ? "the stream broke"
                                                  : "the client went away");
    } else {
      RunLog::Next next = log_->ReadAfter(cursor_);
      if (next.entry != nullptr) {
        entry = std::move(next.entry);
        cursor_ = entry->seq();
        write_in_flight_ = true;
      } else if (next.gap) {
        finish = absl::OutOfRangeError(
            absl::StrCat("gap: the run's log no longer holds seq ", cursor_ + 1,
                         " (it starts at ", log_->first_seq(), ")"));
      } else if (next.ended) {
        finish = absl::OkStatus();
      } else {
        return;  // Nothing yet; OnLogChanged will call again.
      }
    }
    if (entry == nullptr) finished_ = true;
  }
  if (entry != nullptr) {
    sink_->Send(std::move(entry));
  } else {
    sink_->End(finish);
  }
}

}  // namespace agentstream::orchestrator
