#include "gateway/dialects/a2a_contexts.h"

namespace agentstream::gateway::dialects {

A2aContexts::A2aContexts(const Clock* clock, A2aContextsOptions options)
    : context_by_run_({.max_entries = options.max_entries, .ttl = options.ttl},
                      clock) {}

void A2aContexts::Put(const std::string& run_id,
                      const std::string& context_id) {
  if (context_id.empty() || context_id == run_id) return;
  context_by_run_.Put(run_id, context_id);
}

std::string A2aContexts::Get(const std::string& run_id) const {
  return context_by_run_.Find(run_id).value_or(run_id);
}

size_t A2aContexts::size() const { return context_by_run_.size(); }

}  // namespace agentstream::gateway::dialects
