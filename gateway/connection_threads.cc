#include "gateway/connection_threads.h"

#include <limits.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define AGENTSTREAM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AGENTSTREAM_ASAN 1
#endif
#endif

namespace agentstream::gateway {
namespace {

size_t EffectiveStackBytes(size_t requested) {
  size_t bytes = std::max<size_t>(requested, PTHREAD_STACK_MIN);
#ifdef AGENTSTREAM_ASAN
  bytes = std::max<size_t>(bytes * 4, 1 << 20);
#endif
  return bytes;
}

}  // namespace

ConnectionThreads::ConnectionThreads(size_t max_threads, size_t stack_bytes)
    : max_threads_(std::max<size_t>(max_threads, 1)),
      stack_bytes_(EffectiveStackBytes(stack_bytes)) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

void ConnectionThreads::enqueue(std::function<void()> fn) {
  bool run_inline = false;
  {
    absl::MutexLock lock(&mu_);
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_threads_) {
      if (!SpawnLocked() && threads_.empty()) {
        // No thread at all: serve this one on the accepting thread rather
        // than leave the connection hanging.
        fn = std::move(jobs_.back());
        jobs_.pop_back();
        run_inline = true;
      }
    }
  }
  if (run_inline) fn();
}

bool ConnectionThreads::SpawnLocked() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes_);
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, &ThreadMain, this);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    AS_LOG(WARNING) << "cannot start a connection thread (" << threads_.size()
                    << " running): " << std::strerror(rc);
    return false;
  }
  threads_.push_back(thread);
  return true;
}

void* ConnectionThreads::ThreadMain(void* self) {
  static_cast<ConnectionThreads*>(self)->WorkerLoop();
  return nullptr;
}

void ConnectionThreads::WorkerLoop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      ++idle_;
      mu_.Await(absl::Condition(
          +[](ConnectionThreads* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return !q->jobs_.empty() || q->shutdown_;
          },
          this));
      --idle_;
      if (jobs_.empty()) return;  // Shut down, nothing left to serve.
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void ConnectionThreads::shutdown() {
  std::vector<pthread_t> threads;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    threads.swap(threads_);
  }
  if (joined_) return;
  for (pthread_t t : threads) pthread_join(t, nullptr);
  joined_ = true;
}

size_t ConnectionThreads::thread_count() const {
  absl::MutexLock lock(&mu_);
  return threads_.size();
}

size_t ConnectionThreads::idle_count() const {
  absl::MutexLock lock(&mu_);
  return idle_;
}

}  // namespace agentstream::gateway
