// All runs of this orchestrator: creation (request id, plan), lookup for
// Attach and Cancel, the disconnect policy, and expiry of ended runs' logs.
//
// Disconnect policy (RunRequest.on_disconnect), applied when a run's last
// follower goes away: UNSPECIFIED waits `disconnect_grace` and cancels the
// run then unless a follower attached meanwhile (zero: at once); CANCEL
// cancels at once; CONTINUE never cancels for lack of followers.
//
// Expiry: an ended run's log is kept for `log_ttl`; then only a tombstone
// {last_seq} is kept (at most `max_tombstones`, for `tombstone_ttl`), so that
// a late resume from the final seq still ends cleanly (OK, nothing sent) and
// any earlier point is reported as a gap.
//
// Thread-safe. Time comes from the injected Clock; Sweep() is called
// periodically by the server (and lazily on each lookup), so unit tests drive
// expiry with a FakeClock.
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

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
  size_t max_log_bytes = RunLog::kDefaultMaxBytes;
  // How long an ended run's log stays attachable.
  absl::Duration log_ttl = absl::Minutes(5);
  // After it, what is kept of an ended run (see the file comment).
  size_t max_tombstones = 100000;
  absl::Duration tombstone_ttl = absl::Hours(24);
  // How long a run whose last follower went away lives on before its
  // specialist calls are cancelled (policy UNSPECIFIED); zero: at once.
  absl::Duration disconnect_grace = absl::Seconds(30);
  int max_attempts = 3;
  // Per specialist call; zero turns a deadline off (see RunOptions).
  absl::Duration soft_deadline = absl::ZeroDuration();
  absl::Duration hard_deadline = absl::ZeroDuration();
  // Overrides of the two above, by specialist name.
  std::map<std::string, SpecialistDeadlines> deadlines_by_kind;
};

// Parses `--specialist-deadline` values `NAME=SOFT_MS:HARD_MS` (each may hold
// several, comma-separated; 0 turns one deadline off). kInvalidArgument
// naming the bad value (format, negative or non-numeric milliseconds, a hard
// deadline before the soft one, a name given twice).
absl::StatusOr<std::map<std::string, SpecialistDeadlines>>
ParseSpecialistDeadlineFlags(const std::vector<std::string>& values);

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

  // What an Attach(request_id, after_seq) follows: the run (stream its
  // updates after after_seq), or null with OK (nothing after after_seq: the
  // run has ended at after_seq; end the stream with OK at once). Errors:
  // kNotFound (unknown run), kInvalidArgument (after_seq is ahead of the
  // run's last seq), kOutOfRange "gap: ..." (the run's log has expired and
  // after_seq is before its last seq). Counts the attach in the metrics.
  absl::StatusOr<std::shared_ptr<Run>> Attach(const std::string& request_id,
                                              uint64_t after_seq);

  // kNotFound for an unknown run; false when it had already ended (also
  // when only its tombstone is left).
  absl::StatusOr<bool> Cancel(const std::string& request_id);

  // A follower of `run` went away: applies the disconnect policy. A follower
  // the orchestrator itself cut off (`cut_off`: slow_consumer) is expected
  // back, so a CANCEL policy gives it the grace period instead.
  void ReleaseFollower(const std::shared_ptr<Run>& run, bool cut_off = false);

  // Cancels every run still going (reason kShutdown).
  void CancelAll(const std::string& message);

  // Drops ended runs past their TTL, cancels orphaned runs past the grace
  // period and applies the specialists' deadlines. Returns when the next
  // sweep has something to do (the earliest pending deadline, end of a grace
  // period or TTL; InfiniteFuture when none), so that a sweeper can wake
  // then rather than up to a whole interval late.
  absl::Time Sweep();

  size_t run_count() const;
  size_t tombstone_count() const;

 private:
  struct Tombstone {
    uint64_t last_seq = 0;
    absl::Time expires;
    uint64_t generation = 0;
  };
  void AddTombstoneLocked(const std::string& id, uint64_t last_seq,
                          absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneTombstonesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RunManagerOptions options_;
  const SpecialistRegistry* const registry_;
  const Clock* const clock_;
  OrchestratorMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, Tombstone> tombstones_ ABSL_GUARDED_BY(mu_);
  // (generation, id) in creation order; entries whose tombstone was
  // replaced or removed are skipped when they reach the front.
  std::deque<std::pair<uint64_t, std::string>> tombstone_order_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_
