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
// Memory and admission. Every run's bookkeeping and every log entry is
// charged, while alive, to one RunMemory (run_memory.h) whose limit is
// `max_total_log_bytes`; the total is the `log_bytes` gauge. The rules, in
// the order they apply:
//  1. At most `max_runs` runs are live (not yet ended); a new run beyond is
//     refused. Ended runs do not count.
//  Ended logs go in the order their runs ended, except that a log a
//  follower is still reading goes last of all: after the live logs were cut.
//  2. A new run is admitted when the charged bytes leave room for its share:
//     share = min(max_log_bytes, max_total_log_bytes / (live runs + 1)), a
//     full log while the bound holds that many, else an equal part. To make
//     room, the logs of ended runs are dropped, the run that ended first
//     first; then the largest live logs are cut down towards the share (as
//     in 3). Runs whose clients never read thus cannot lock others out: their
//     logs shrink to their share. Refused only when even that cannot make
//     room (updates larger than a share, or still being written).
//     Refusals (1, 2) are kResourceExhausted with a message starting
//     "at_capacity:" and ending "retry later" (runs_refused_total).
//  3. Relief: when appends take the bytes over max_total_log_bytes, they are
//     brought down to RunMemory::relief_target() (1/16 below): first by
//     dropping ended runs' logs, the one that ended first first
//     (logs_dropped_total); then by dropping the oldest updates of the
//     largest live logs, evening them out (no live log is cut below the
//     level the others are cut to; a log within a run's share, max_total /
//     live runs, is not cut at all; each keeps its newest update;
//     log_updates_trimmed_total). The run goes on; a follower that needs a
//     dropped update ends with OUT_OF_RANGE "gap: ..." (never silently), and
//     so does an Attach before the log's first seq.
//  A dropped ended log leaves the same tombstone as expiry (below): a resume
//  from its last seq ends cleanly, any earlier one is a gap. What may exceed
//  the limit: the updates appended between two reliefs (at most one update
//  per run appending at that moment), and updates a follower is still
//  writing (one per follower: charged, but no relief can free them; relief
//  is tried again once another 1/16 of the limit has been charged).
//  `max_log_bytes` is taken as at most `max_total_log_bytes`.
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
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "common/clock.h"
#include "orchestrator/caller.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run.h"
#include "orchestrator/run_memory.h"
#include "orchestrator/run_store.h"
#include "orchestrator/specialist_registry.h"
#include "orchestrator/tombstones.h"

namespace agentstream::orchestrator {

struct RunManagerOptions {
  size_t max_log_events = 20000;
  // Per run; see RunLog.
  size_t max_log_bytes = RunLog::kDefaultMaxBytes;
  // The bound on all runs together and on the live ones (see the file
  // comment; 0: unbounded). docs/ORCHESTRATOR.md explains the defaults.
  size_t max_total_log_bytes = size_t{512} << 20;
  size_t max_runs = 1000;
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

class RunManager final : public RunStoreEvents {
 public:
  // `registry`, `clock`, `metrics` (nullable) and `store` (nullable: a
  // LocalRunStore of its own) must outlive the manager. With a shared store
  // (run_store.h), runs are created in it, and Attach and Cancel of a run
  // this replica does not hold go to it; the caller starts the store with
  // this manager as its RunStoreEvents.
  RunManager(RunManagerOptions options, const SpecialistRegistry* registry,
             const Clock* clock, OrchestratorMetrics* metrics,
             RunStore* store = nullptr);
  ~RunManager();

  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  // Plans and registers a run owned by `caller.principal` (caller.h); the
  // caller attaches its follower, then calls Run::Start(). A trusted caller
  // may choose the run's id: request.request_id(), else
  // `metadata_request_id`; otherwise (and for anyone else) it is a fresh
  // NewRunId() and what the caller gave is only its correlation id.
  //
  // Errors: kInvalidArgument (empty or oversized message, unknown forced
  // specialist, malformed request id), kAlreadyExists (a trusted caller's
  // chosen id is taken), kUnavailable (no specialist to plan with),
  // kResourceExhausted ("at_capacity: ... retry later": rules 1 and 2 of
  // the file comment).
  absl::StatusOr<std::shared_ptr<Run>> CreateRun(
      const agentstream::v1::RunRequest& request,
      const std::string& metadata_request_id,
      const Caller& caller = LocalCaller());

  // Null when unknown or expired. Not checked against an owner: for the
  // orchestrator's own use and tests.
  std::shared_ptr<Run> Find(const std::string& request_id);

  // What an Attach(request_id, after_seq) follows: the run (stream its
  // updates after after_seq; a run held by another replica is followed
  // through the store), or null with OK (nothing after after_seq: the
  // run has ended at after_seq; end the stream with OK at once). Errors:
  // kNotFound (unknown run), kInvalidArgument (after_seq is ahead of the
  // run's last seq), kOutOfRange "gap: ..." (the run's log has expired and
  // after_seq is before its last seq). Counts the attach in the metrics.
  // A run `caller` may not access (caller.h) is kNotFound, word for word
  // as an unknown one, and an audit line.
  absl::StatusOr<std::shared_ptr<FollowedRun>> Attach(
      const std::string& request_id, uint64_t after_seq,
      const Caller& caller = LocalCaller());

  // kNotFound for an unknown run (and for one `caller` may not access);
  // false when it had already ended (also when only its tombstone is left).
  // A run held by another replica is cancelled through the store (its owner
  // hears of it at once).
  absl::StatusOr<bool> Cancel(const std::string& request_id,
                              const Caller& caller = LocalCaller());

  // A follower of `run` went away: applies the disconnect policy. A follower
  // the orchestrator itself cut off (`cut_off`: slow_consumer) is expected
  // back, so a CANCEL policy gives it the grace period instead.
  void ReleaseFollower(const std::shared_ptr<FollowedRun>& run,
                       bool cut_off = false);

  // RunStoreEvents methods
  void OnCancelRequested(const std::string& id) override;
  void OnFollowedElsewhere(const std::string& id) override;
  absl::Status OnTakeOver(const RunRecord& record,
                          const std::vector<std::string>& stored,
                          uint64_t version, const std::string& note) override;
  void OnLost(const std::string& id, const absl::Status& why) override;

  // Cancels every run still going (reason kShutdown).
  void CancelAll(const std::string& message);
  // Stops every run still going here without a word (Run::Abandon): the
  // store has handed them to another replica.
  void AbandonAll(const absl::Status& why);

  // Rule 3 of the file comment; what the RunMemory runs when over its limit
  // (public for tests).
  void RelieveMemory();

  // Drops ended runs past their TTL, cancels orphaned runs past the grace
  // period and applies the specialists' deadlines. Returns when the next
  // sweep has something to do (the earliest pending deadline, end of a grace
  // period or TTL; InfiniteFuture when none), so that a sweeper can wake
  // then rather than up to a whole interval late.
  absl::Time Sweep();
  // Sweep() when something may be due: the earliest time the last sweep
  // returned has come, or runs ended since. Start, Find and Attach call it,
  // so that a burst of them does not cost a sweep of every run each (that
  // made a burst of 4,000 streams quadratic: docs/BENCHMARKS.md); what became
  // due meanwhile by other events (a client gone) is the sweeper's, within
  // its interval.
  void SweepIfDue();

  size_t run_count() const;  // Live and ended runs held.
  size_t live_run_count() const;
  size_t tombstone_count() const;
  // What is charged to the RunMemory (see the file comment).
  size_t memory_bytes() const { return memory_->bytes(); }

 private:
  // Fed by the runs' on_finished callbacks, which may come after the manager
  // is gone (hence shared): the live runs, and the runs that ended since
  // AbsorbEndedLocked last took them. A leaf lock.
  struct Lifecycle {
    absl::Mutex mu;
    size_t live ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::weak_ptr<Run>> ended ABSL_GUARDED_BY(mu);
  };
  // An ended run whose log is held, and that log's bytes when it ended.
  struct Ended {
    std::weak_ptr<Run> run;
    size_t bytes = 0;
  };
  // Moves the runs that ended meanwhile from lifecycle_ to ended_.
  void AbsorbEndedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops the entries of ended_ whose run is no longer held.
  void PruneEndedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The run behind `entry` if it is still held (else null).
  std::shared_ptr<Run> HeldLocked(const Ended& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds a run and holds it (counted live).
  std::shared_ptr<Run> MakeRunLocked(
      const std::string& id, const std::string& question,
      const google::protobuf::Struct& options, std::string reasoning,
      std::vector<Run::Participant> participants,
      agentstream::v1::DisconnectPolicy on_disconnect,
      const std::string& principal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An Attach of a run that ended at `last_seq`, its log gone.
  absl::StatusOr<std::shared_ptr<FollowedRun>> EndedAt(
      const std::string& request_id, uint64_t after_seq, uint64_t last_seq);
  // An Attach of a run this replica does not hold: through the store.
  absl::StatusOr<std::shared_ptr<FollowedRun>> AttachStored(
      const std::string& request_id, uint64_t after_seq, const Caller& caller);
  // Rule 1 and 2: OK, or kResourceExhausted "at_capacity: ...".
  absl::Status AdmitLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops ended runs' logs, the run that ended first first, until the
  // memory holds at most `target` bytes or none is left.
  void DropEndedLogsLocked(size_t target, absl::Time now, bool followed_too)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evens out the largest live logs until the memory holds at most
  // `target` bytes (rule 3); a log of at most `floor` bytes (a run's fair
  // share) is never cut: a run within its share keeps its updates.
  void TrimLiveLogsLocked(size_t target, size_t floor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RunManagerOptions options_;
  const std::unique_ptr<RunStore> owned_store_;  // When none was given.
  RunStore* const store_;
  const SpecialistRegistry* const registry_;
  const Clock* const clock_;
  OrchestratorMetrics* const metrics_;
  const std::shared_ptr<RunMemory> memory_;
  const std::shared_ptr<Lifecycle> lifecycle_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_ ABSL_GUARDED_BY(mu_);
  // The ended runs held, in the order they ended (entries of runs dropped
  // since are skipped), and the sum of their `bytes`.
  std::deque<Ended> ended_ ABSL_GUARDED_BY(mu_);
  size_t ended_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // What the last Sweep() returned.
  absl::Time next_due_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Compact (tombstones.h): created in bursts as runs' logs are freed.
  TombstoneTable tombstones_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_MANAGER_H_
