#include "common/memory_return.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"

namespace agentstream {

bool TrimPolicy::ShouldTrim(int64_t rss, absl::Time now) {
  floor_ = std::min(floor_, rss);
  return now >= next_trim_ && rss - floor_ >= options_.min_growth_bytes;
}

void TrimPolicy::Trimmed(int64_t rss_before, int64_t rss_after,
                         absl::Time now) {
  floor_ = std::min(floor_, rss_after);
  interval_ = rss_before - rss_after >= options_.min_growth_bytes
                  ? options_.min_interval
                  : std::min(2 * interval_, options_.max_interval);
  next_trim_ = now + interval_;
}

std::optional<int64_t> ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return std::nullopt;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (n != 2) return std::nullopt;
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

namespace {

[[noreturn]] void ReturnLoop(MemoryReturnOptions options) {
  pthread_setname_np(pthread_self(), "mem_return");
  TrimPolicy policy(options, ResidentBytes().value_or(0));
  while (true) {
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(options.period));
    const std::optional<int64_t> rss = ResidentBytes();
    if (!rss.has_value() || !policy.ShouldTrim(*rss, absl::Now())) continue;
    malloc_trim(0);
    policy.Trimmed(*rss, ResidentBytes().value_or(*rss), absl::Now());
  }
}

}  // namespace

void StartMemoryReturner(const MemoryReturnOptions& options) {
  static std::once_flag once;
  std::call_once(once, [&options] {
    // Started with every signal blocked, so that the termination signals
    // still reach only the thread that waits for them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    std::thread(ReturnLoop, options).detach();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  });
}

}  // namespace agentstream
