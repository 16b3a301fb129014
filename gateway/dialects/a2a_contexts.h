// The contextIds A2A clients gave their tasks (docs/PROTOCOLS.md, "A2A"),
// so that GetTask, CancelTask and a resubscribe answer with the same one.
// The run's log does not hold it: the gateway that started the task keeps
// it, for a bounded time and number of tasks; a task started without one
// (or one this gateway no longer knows) has its run id as its contextId.
// Thread-safe.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_A2A_CONTEXTS_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_A2A_CONTEXTS_H_

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gateway/dialects/expiring_map.h"

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
  // Mutable: a look-up also drops what expired.
  mutable ExpiringMap<std::string> context_by_run_;
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_A2A_CONTEXTS_H_
