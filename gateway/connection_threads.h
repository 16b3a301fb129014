// cpp-httplib's TaskQueue for streaming: one thread per open connection,
// grown on demand up to a cap, with small stacks.
//
// cpp-httplib 0.11 holds a worker thread for the whole life of a streaming
// response and its default pool has 8 threads, whose enqueue() cannot refuse
// work. This queue starts a thread whenever a connection arrives and no
// thread is idle, up to `max_threads`; past the cap connections wait for a
// thread to come free (the gateway refuses streams well before that, in the
// handler, so that short requests keep a headroom of threads). Threads that
// finish a connection stay, idle, for the next one.
//
// Thread-safe. shutdown() joins every thread (cpp-httplib calls it once the
// listening socket is closed).
#ifndef AGENTSTREAM_GATEWAY_CONNECTION_THREADS_H_
#define AGENTSTREAM_GATEWAY_CONNECTION_THREADS_H_

#include <httplib.h>
#include <pthread.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::gateway {

class ConnectionThreads final : public httplib::TaskQueue {
 public:
  // `stack_bytes` is raised to the platform minimum (and multiplied under
  // AddressSanitizer, whose frames are larger).
  ConnectionThreads(size_t max_threads, size_t stack_bytes);
  ~ConnectionThreads() override;

  // httplib::TaskQueue methods
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

  size_t thread_count() const;
  size_t idle_count() const;

 private:
  static void* ThreadMain(void* self);
  void WorkerLoop();
  bool SpawnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_threads_;
  const size_t stack_bytes_;

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<pthread_t> threads_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool joined_ = false;  // Touched by shutdown() only.
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_CONNECTION_THREADS_H_
