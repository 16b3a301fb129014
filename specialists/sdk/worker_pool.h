// A bounded pool of threads for blocking analyses (Specialist::Analyze):
// at most `max_threads` run at once, at most `max_waiting` more wait in a
// queue, and TrySubmit() refuses beyond that (the SDK answers
// RESOURCE_EXHAUSTED). Threads start on demand and end after `idle_timeout`
// without work, so an idle server holds none. Thread-safe.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_WORKER_POOL_H_
#define AGENTSTREAM_SPECIALISTS_SDK_WORKER_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace agentstream::specialists {

class WorkerPool final {
 public:
  WorkerPool(int64_t max_threads, int64_t max_waiting,
             absl::Duration idle_timeout = absl::Seconds(30));
  // Runs what was submitted, then joins every thread.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on a pool thread, now or once one is free; false (and
  // `task` dropped) when all threads are busy and the queue is full.
  bool TrySubmit(std::function<void()> task);

  int64_t threads() const;  // Alive now.
  int64_t busy() const;     // Running a task.
  int64_t waiting() const;  // Queued.

 private:
  void Work(uint64_t id);
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t max_threads_;
  const int64_t max_waiting_;
  const absl::Duration idle_timeout_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> exited_ ABSL_GUARDED_BY(mu_);  // To join.
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_WORKER_POOL_H_
