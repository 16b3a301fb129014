#include "common/http/handler_threads.h"

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

namespace agentstream::http {
namespace {

size_t EffectiveStackBytes(size_t requested) {
  size_t bytes = std::max<size_t>(requested, PTHREAD_STACK_MIN);
#ifdef AGENTSTREAM_ASAN
  bytes = std::max<size_t>(bytes * 4, 1 << 20);
#endif
  return bytes;
}

}  // namespace

HandlerThreads::HandlerThreads(size_t max_threads, size_t stack_bytes,
                               size_t max_queued)
    : max_threads_(std::max<size_t>(max_threads, 1)),
      stack_bytes_(EffectiveStackBytes(stack_bytes)),
      max_queued_(max_queued) {}

HandlerThreads::~HandlerThreads() { Shutdown(); }

bool HandlerThreads::Submit(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return false;
  const size_t waiting = jobs_.size();
  if (idle_ <= waiting && threads_.size() < max_threads_) {
    SpawnLocked();
  }
  if (idle_ <= waiting && threads_.size() >= max_threads_ &&
      waiting >= max_queued_) {
    return false;
  }
  if (threads_.empty()) return false;  // Not even one thread could start.
  jobs_.push_back(std::move(job));
  return true;
}

bool HandlerThreads::SpawnLocked() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes_);
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, &ThreadMain, this);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    AS_LOG(WARNING) << "cannot start a handler thread (" << threads_.size()
                    << " running): " << std::strerror(rc);
    return false;
  }
  threads_.push_back(thread);
  // Counted idle at once, so that the next Submit() does not start another
  // thread for the job this one is about to take.
  ++idle_;
  return true;
}

void* HandlerThreads::ThreadMain(void* self) {
  static_cast<HandlerThreads*>(self)->WorkerLoop();
  return nullptr;
}

void HandlerThreads::WorkerLoop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](HandlerThreads* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return !q->jobs_.empty() || q->shutdown_;
          },
          this));
      if (jobs_.empty()) {
        --idle_;
        return;  // Shut down, nothing left to run.
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
    }
    job();
    job = nullptr;  // Release what the job holds before counting idle.
    absl::MutexLock lock(&mu_);
    ++idle_;
  }
}

void HandlerThreads::Shutdown() {
  absl::MutexLock join_lock(&join_mu_);
  std::vector<pthread_t> threads;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    threads.swap(threads_);
  }
  for (pthread_t t : threads) pthread_join(t, nullptr);
}

size_t HandlerThreads::thread_count() const {
  absl::MutexLock lock(&mu_);
  return threads_.size();
}

size_t HandlerThreads::busy_count() const {
  absl::MutexLock lock(&mu_);
  return threads_.size() - std::min(idle_, threads_.size());
}

}  // namespace agentstream::http
