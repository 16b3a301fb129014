// The contextIds A2A clients gave their tasks (docs/PROTOCOLS.md, "A2A"),
// so that GetTask, CancelTask and a resubscribe answer with the same one.
// The run's log does not hold it: the gateway that started the task keeps
// it, for a bounded time and number of tasks; a task started without one
// (or one this gateway no longer knows) has its run id as its contextId.
// Thread-safe.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_A2A_CONTEXTS_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_A2A_CONTEXTS_H_

#include <cstddef>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace agentstream::gateway::dialects {

struct A2aContextsOptions {
  // Past this many, the oldest is forgotten first.
  size_t max_entries = 100000;
  // How long a task's contextId is kept after it started (the orchestrator
  // keeps a run's log for less: docs/ORCHESTRATOR.md).
  absl::Duration ttl = absl::Hours(2);
};

class A2aContexts {
 public:
  explicit A2aContexts(const Clock* clock, A2aContextsOptions options = {});

  // Remembers `context_id` for task `run_id` (nothing when it is the run
  // id itself: that is the default).
  void Put(const std::string& run_id, const std::string& context_id);
  // The contextId of task `run_id`: the one it was given, else the run id.
  std::string Get(const std::string& run_id) const;
  size_t size() const;

 private:
  // Drops what expired or is over the bound (oldest first).
  void Evict(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  const A2aContextsOptions options_;
  mutable absl::Mutex mu_;
  struct Entry {
    std::string context_id;
    absl::Time added;
  };
  absl::flat_hash_map<std::string, Entry> by_run_ ABSL_GUARDED_BY(mu_);
  // Run ids in the order they were added.
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_A2A_CONTEXTS_H_
