#include "orchestrator/run_memory.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace agentstream::orchestrator {

RunMemory::RunMemory(size_t limit, OrchestratorMetrics* metrics)
    : limit_(limit == 0
                 ? INT64_MAX
                 : static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX))),
      metrics_(metrics),
      relieve_above_(limit_) {}

void RunMemory::Charge(size_t n) {
  bytes_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
  if (metrics_ != nullptr) metrics_->LogBytesChanged(static_cast<int64_t>(n));
}

void RunMemory::Release(size_t n) {
  const int64_t after =
      bytes_.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed) -
      static_cast<int64_t>(n);
  // Back within the limit: the next excess is relieved at once again.
  if (after <= limit_ &&
      relieve_above_.load(std::memory_order_relaxed) != limit_) {
    relieve_above_.store(limit_, std::memory_order_relaxed);
  }
  if (metrics_ != nullptr) metrics_->LogBytesChanged(-static_cast<int64_t>(n));
}

size_t RunMemory::bytes() const {
  return static_cast<size_t>(
      std::max<int64_t>(0, bytes_.load(std::memory_order_relaxed)));
}

void RunMemory::SetReliefHandler(std::function<void()> handler) {
  absl::MutexLock lock(&mu_);
  handler_ = std::move(handler);
}

void RunMemory::RelieveIfOver() {
  if (bytes_.load(std::memory_order_relaxed) <=
      relieve_above_.load(std::memory_order_relaxed)) {
    return;
  }
  absl::MutexLock lock(&mu_);
  // Another thread may have relieved it meanwhile.
  if (bytes_.load(std::memory_order_relaxed) <=
          relieve_above_.load(std::memory_order_relaxed) ||
      !handler_) {
    return;
  }
  handler_();
  const int64_t left = bytes_.load(std::memory_order_relaxed);
  relieve_above_.store(left > limit_ ? left + limit_ / kReliefDivisor : limit_,
                       std::memory_order_relaxed);
}

}  // namespace agentstream::orchestrator
