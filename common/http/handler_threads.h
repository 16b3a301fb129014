// The threads that run HTTP handlers: grown on demand up to a cap, with
// small stacks, and idle threads kept for the next request. A handler may
// block (a gRPC call, a stream that lasts minutes): each one running holds a
// thread, so the cap bounds them, and a bounded queue holds what waits.
//
// Thread-safe. Shutdown() runs what is queued, then joins every thread.
#ifndef AGENTSTREAM_COMMON_HTTP_HANDLER_THREADS_H_
#define AGENTSTREAM_COMMON_HTTP_HANDLER_THREADS_H_

#include <pthread.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::http {

class HandlerThreads final {
 public:
  // `stack_bytes` is raised to the platform minimum (and multiplied under
  // AddressSanitizer, whose frames are larger).
  HandlerThreads(size_t max_threads, size_t stack_bytes, size_t max_queued);
  ~HandlerThreads();
  HandlerThreads(const HandlerThreads&) = delete;
  HandlerThreads& operator=(const HandlerThreads&) = delete;

  // Runs `job` on an idle thread, a new one, or queued for the next free
  // one. False (and `job` dropped) when `max_queued` jobs already wait or
  // after Shutdown().
  bool Submit(std::function<void()> job);
  void Shutdown();

  size_t thread_count() const;
  size_t busy_count() const;

 private:
  static void* ThreadMain(void* self);
  void WorkerLoop();
  bool SpawnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_threads_;
  const size_t stack_bytes_;
  const size_t max_queued_;

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<pthread_t> threads_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;  // Serialises Shutdown().
};

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_HANDLER_THREADS_H_
