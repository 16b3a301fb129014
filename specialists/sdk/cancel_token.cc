#include "specialists/sdk/cancel_token.h"

#include <memory>

#include "absl/time/clock.h"

namespace agentstream::specialists {

void CancelToken::Cancel(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (cancelled_.load(std::memory_order_relaxed)) return;
  tripped_ = std::make_unique<const Tripped>(Tripped{reason, absl::Now()});
  cancelled_.store(true, std::memory_order_release);
}

bool CancelToken::WaitFor(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto is_cancelled = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return cancelled_.load(std::memory_order_relaxed);
  };
  mu_.AwaitWithTimeout(absl::Condition(&is_cancelled), timeout);
  return cancelled_.load(std::memory_order_relaxed);
}

std::string CancelToken::reason() const {
  absl::MutexLock lock(&mu_);
  return tripped_ == nullptr ? std::string() : tripped_->reason;
}

absl::Time CancelToken::requested_at() const {
  absl::MutexLock lock(&mu_);
  return tripped_ == nullptr ? absl::InfinitePast() : tripped_->requested_at;
}

int CancelToken::SqliteProgressHandler(void* token) {
  return static_cast<const CancelToken*>(token)->cancelled() ? 1 : 0;
}

}  // namespace agentstream::specialists
