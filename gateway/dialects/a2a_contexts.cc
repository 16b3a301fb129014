#include "gateway/dialects/a2a_contexts.h"

namespace agentstream::gateway::dialects {

A2aContexts::A2aContexts(const Clock* clock, A2aContextsOptions options)
    : clock_(clock), options_(options) {}

void A2aContexts::Put(const std::string& run_id,
                      const std::string& context_id) {
  if (context_id.empty() || context_id == run_id) return;
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  // Run ids are new every time (common/run_id.h): never one already here.
  if (!by_run_.emplace(run_id, Entry{context_id, now}).second) return;
  order_.push_back(run_id);
  Evict(now);
}

std::string A2aContexts::Get(const std::string& run_id) const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = by_run_.find(run_id);
  if (it == by_run_.end() || now - it->second.added > options_.ttl) {
    return run_id;
  }
  return it->second.context_id;
}

size_t A2aContexts::size() const {
  absl::MutexLock lock(&mu_);
  return by_run_.size();
}

void A2aContexts::Evict(absl::Time now) {
  while (!order_.empty()) {
    auto it = by_run_.find(order_.front());
    const bool over = by_run_.size() > options_.max_entries;
    if (it != by_run_.end() && !over &&
        now - it->second.added <= options_.ttl) {
      return;
    }
    if (it != by_run_.end()) by_run_.erase(it);
    order_.pop_front();
  }
}

}  // namespace agentstream::gateway::dialects
