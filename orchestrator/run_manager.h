// All runs of this orchestrator: creation (request id, plan), lookup for
// Attach and Cancel, the disconnect policy, and expiry of ended runs' logs.
//
// Thread-safe. Time comes from the injected Clock; Sweep() is called
// periodically by the server (and lazily on each lookup), so unit tests drive
// expiry with a FakeClock.
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "common/clock.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run.h"
#include "orchestrator/specialist_registry.h"

namespace agentstream::orchestrator {

struct RunManagerOptions {
  size_t max_log_events = 20000;
  // How long an ended run's log stays attachable.
  absl::Duration log_ttl = absl::Minutes(5);
  // How long a run whose last follower went away lives on before its
  // specialist calls are cancelled; zero cancels at once.
  absl::Duration disconnect_grace = absl::ZeroDuration();
  int max_attempts = 3;
  // Per specialist call; zero turns a deadline off (see RunOptions).
  absl::Duration soft_deadline = absl::ZeroDuration();
  absl::Duration hard_deadline = absl::ZeroDuration();
};

// Whether `id` is an acceptable request id: 1..128 of [A-Za-z0-9._-].
bool ValidRequestId(const std::string& id);
// "req_" and 16 random hex digits.
std::string GenerateRequestId();

class RunManager final {
 public:
  // `registry`, `clock` and `metrics` (nullable) must outlive the manager.
  RunManager(RunManagerOptions options, const SpecialistRegistry* registry,
             const Clock* clock, OrchestratorMetrics* metrics);

  // Plans and registers a run; the caller attaches its follower, then calls
  // Run::Start(). The request id is request.request_id(), else
  // `metadata_request_id`, else generated.
  //
  // Errors: kInvalidArgument (empty or oversized message, unknown forced
  // specialist, malformed request id), kAlreadyExists (the request id is
  // taken), kUnavailable (no specialist to plan with).
  absl::StatusOr<std::shared_ptr<Run>> CreateRun(
      const agentstream::v1::RunRequest& request,
      const std::string& metadata_request_id);

  // Null when unknown or expired.
  std::shared_ptr<Run> Find(const std::string& request_id);

  // kNotFound for an unknown run; false when it had already ended.
  absl::StatusOr<bool> Cancel(const std::string& request_id);

  // A follower of `run` went away: applies the disconnect policy.
  void ReleaseFollower(const std::shared_ptr<Run>& run);

  // Cancels every run still going (shutdown).
  void CancelAll(const std::string& reason);

  // Drops ended runs past their TTL, cancels orphaned runs past the grace
  // period and applies the specialists' deadlines.
  void Sweep();

  size_t run_count() const;

 private:
  const RunManagerOptions options_;
  const SpecialistRegistry* const registry_;
  const Clock* const clock_;
  OrchestratorMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_
