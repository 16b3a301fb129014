#include "specialists/sdk/worker_pool.h"

#include <utility>

namespace agentstream::specialists {

WorkerPool::WorkerPool(int64_t max_threads, int64_t max_waiting,
                       absl::Duration idle_timeout)
    : max_threads_(max_threads < 1 ? 1 : max_threads),
      max_waiting_(max_waiting < 0 ? 0 : max_waiting),
      idle_timeout_(idle_timeout) {}

WorkerPool::~WorkerPool() {
  std::vector<std::thread> all;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    auto gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return threads_.empty();
    };
    mu_.Await(absl::Condition(&gone));
    all = std::move(exited_);
  }
  for (std::thread& t : all) t.join();
}

bool WorkerPool::TrySubmit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  ReapLocked();
  if (stop_) return false;
  const int64_t queued = static_cast<int64_t>(queue_.size());
  // Idle threads take queued tasks first; a new thread when none is idle.
  if (queued >= idle_) {
    if (static_cast<int64_t>(threads_.size()) < max_threads_) {
      const uint64_t id = next_id_++;
      threads_.emplace(id, std::thread([this, id] { Work(id); }));
      ++idle_;  // Counted idle until it takes its first task.
    } else if (queued - idle_ >= max_waiting_) {
      return false;
    }
  }
  queue_.push_back(std::move(task));
  return true;
}

void WorkerPool::ReapLocked() {
  for (std::thread& t : exited_) t.join();
  exited_.clear();
}

void WorkerPool::Work(uint64_t id) {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || stop_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&has_work), idle_timeout_) ||
        queue_.empty()) {
      break;  // Idle too long, or stopping with nothing left to run.
    }
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    --idle_;
    ++busy_;
    mu_.Unlock();
    task();
    task = nullptr;
    mu_.Lock();
    --busy_;
    ++idle_;
  }
  --idle_;
  // Joined by the next TrySubmit or the destructor; this thread touches
  // nothing of the pool once the lock is released.
  auto node = threads_.extract(id);
  exited_.push_back(std::move(node.mapped()));
}

int64_t WorkerPool::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(threads_.size());
}
int64_t WorkerPool::busy() const {
  absl::MutexLock lock(&mu_);
  return busy_;
}
int64_t WorkerPool::waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

}  // namespace agentstream::specialists
