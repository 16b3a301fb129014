// One run: the fan-out to the planned specialists, the live merge of their
// streams into the run's log, and the synthesis at the end.
//
// A Run emits, in this order: `status` analyzing, `thinking` (the plan's
// reasoning), `status` delegating, `specialist_activated` for each planned
// specialist; then every specialist's updates as they arrive (all calls run
// at once, so their updates interleave); for each specialist that ends, an
// `error` if it failed, its `specialist_complete` and a `synthesis` update;
// finally `status` synthesizing and `complete`. Cancel() ends the run at once:
// `status` cancelled, `specialist_complete` cancelled for each running
// specialist, `complete` with outcome cancelled. Past RunOptions' deadlines
// a specialist gets `timeout` updates (continuing, then abandoned with
// `specialist_complete` timed_out); deadlines may differ per specialist
// kind.
//
// No thread is held while a run waits: everything happens in the callbacks
// of the specialist calls (AnalyzeObserver) and of the caller.
//
// Memory: with RunOptions::memory, the run charges its fixed bookkeeping
// (question, options, plan; charged_bytes()) for its lifetime, and its log
// charges each entry. Not charged: each specialist's partial results merged
// by key for the synthesis, held while the run goes on and freed when it
// ends.
//
// Thread-safe. Owned by shared_ptr (the RunManager and the pending calls).
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "agentstream/v1/update.pb.h"
#include "common/clock.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "orchestrator/followed_run.h"
#include "orchestrator/metrics.h"
#include "orchestrator/planner.h"
#include "orchestrator/run_log.h"
#include "orchestrator/specialist_client.h"

namespace agentstream::orchestrator {

// Past the soft deadline a specialist gets a `timeout` update (action
// continuing); past the hard one its call is cancelled (`timeout` action
// abandoned, outcome timed_out). Zero turns either off.
struct SpecialistDeadlines {
  absl::Duration soft = absl::ZeroDuration();
  absl::Duration hard = absl::ZeroDuration();
};

struct RunOptions {
  size_t max_log_events = 20000;
  size_t max_log_bytes = RunLog::kDefaultMaxBytes;
  // Attempts per specialist when it is unavailable before its first update
  // (with round-robin, each attempt may reach another replica).
  int max_attempts = 3;
  // The deadlines of every specialist, unless `deadlines_by_kind` names it.
  absl::Duration soft_deadline = absl::ZeroDuration();
  absl::Duration hard_deadline = absl::ZeroDuration();
  std::map<std::string, SpecialistDeadlines> deadlines_by_kind;
  // What the RunManager does when the run's last follower goes away.
  agentstream::v1::DisconnectPolicy on_disconnect =
      agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED;
  // Charged with the run's bookkeeping and its log's entries while they are
  // alive; null: not accounted.
  std::shared_ptr<RunMemory> memory;
  // The principal that started the run (caller.h); empty: anonymous.
  std::string owner;
};

// Why a run was cancelled (the `reason` label of runs_cancelled_total).
enum class CancelReason {
  kRequest,     // The Cancel RPC.
  kDisconnect,  // The last follower left a run with on_disconnect=CANCEL.
  kGrace,       // Nobody attached within the grace period.
  kShutdown,    // The orchestrator is stopping.
};
const char* CancelReasonName(CancelReason reason);

class Run final : public FollowedRun, public std::enable_shared_from_this<Run> {
 public:
  struct Participant {
    PlannedSpecialist planned;
    std::shared_ptr<SpecialistClient> client;
  };

  // `clock` must outlive the run; `metrics` may be null. `on_finished` is
  // called once, outside every lock, when the run has ended.
  Run(std::string request_id, std::string question,
      google::protobuf::Struct options, std::string reasoning,
      std::vector<Participant> participants, const Clock* clock,
      RunOptions run_options, OrchestratorMetrics* metrics,
      std::function<void()> on_finished);
  ~Run();

  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // Emits the opening updates and starts every specialist call. Once.
  void Start();

  // Takeover (docs/SCALING.md): instead of Start(), a run another replica
  // started continues here. LoadStored puts the updates the store holds
  // (serialized, in seq order) into the log, and marks each specialist whose
  // `specialist_complete` is among them as done, with its results; the seq
  // continues after the last. kInvalidArgument for bytes that are no Update.
  // Then Resume emits a `status` and a `thinking` update saying what
  // happened (`note`) and which specialists are called again, and calls
  // them; a run whose stored log already holds its `complete` only ends.
  absl::Status LoadStored(const std::vector<std::string>& stored);
  void Resume(const std::string& note);
  // The names of the specialists LoadStored found done, and the others.
  std::vector<std::string> DoneSpecialists(bool done) const;

  // Stops the run here without another update: its specialist calls are
  // cancelled and its log ends with `why`, which its followers get (the
  // run continues on another replica, or the store gave it up).
  void Abandon(const absl::Status& why);
  // A follower on another replica reads the run: while this replica has
  // none, the grace period counts from `until` at the earliest.
  void FollowedElsewhere(absl::Time until);

  // Ends the run now (see above); `message` goes into the `status`
  // cancelled update. Returns false if it had already ended.
  bool Cancel(CancelReason reason, const std::string& message);
  // Cancels (reason kGrace) only if the run has had no follower since
  // `cutoff` or earlier; atomic with respect to AddFollower.
  bool CancelIfOrphanedSince(absl::Time cutoff, const std::string& message);

  // Applies the soft and hard deadlines at `now` (called periodically).
  void CheckDeadlines(absl::Time now);
  // When CheckDeadlines next has something to do: the earliest soft deadline
  // not yet reported or hard deadline of a call still going; nullopt when
  // none is pending (not started, ended, or deadlines off).
  std::optional<absl::Time> NextDeadline() const;

  // Followers: the Run stream and Attach streams. RemoveFollower returns
  // true when it removed the last one of a run still going.
  void AddFollower() override;
  bool RemoveFollower() override;
  int followers() const override;
  // When the last follower left a run still going; unset while it has one.
  std::optional<absl::Time> orphaned_since() const;

  const std::string& request_id() const override { return request_id_; }
  const std::string& owner() const { return run_options_.owner; }
  agentstream::v1::DisconnectPolicy on_disconnect() const {
    return run_options_.on_disconnect;
  }
  const std::shared_ptr<RunLog>& log() const override { return log_; }
  // The bookkeeping charged to RunOptions::memory (not counting the log).
  size_t charged_bytes() const { return charged_bytes_; }
  bool finished() const;
  std::optional<absl::Time> finished_at() const;

 private:
  class CallObserver;
  struct CallState {
    Participant participant;
    std::shared_ptr<AnalyzeCall> handle;
    int attempt = 0;
    int64_t updates_seen = 0;
    SpecialistDeadlines deadlines;
    bool soft_deadline_reported = false;
    absl::Time started_at;
    bool done = false;
    agentstream::v1::Outcome outcome = agentstream::v1::OUTCOME_UNSPECIFIED;
    std::string error;
    std::string instance;
    // Its partial results merged by top-level key (later wins).
    google::protobuf::Struct merged;
    // The latest partial result carrying a `summary` string.
    google::protobuf::Struct summary;
  };

  // The first block of the arena a specialist's update is parsed on: room
  // for a typical update's messages, on the stack of a gRPC callback.
  static constexpr size_t kParseArenaBlockBytes = 4096;

  void StartCall(size_t index);
  // Takes what the run needs from a specialist's update (its instance, its
  // partial results); false when the kind is the orchestrator's (dropped).
  bool AcceptLocked(CallState& call, const agentstream::v1::Update& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnCallUpdate(size_t index, int attempt, agentstream::v1::Update update);
  // The same for one message's updates as the specialist encoded them, kept
  // so (only the envelope rewritten, update_wire.h); false (and none taken)
  // if one is not an Update.
  bool OnCallEncodedUpdates(size_t index, int attempt,
                            absl::Span<const std::string_view> updates);
  void OnCallDone(size_t index, int attempt, const absl::Status& status);
  bool CancelImpl(CancelReason reason, const std::string& message,
                  std::optional<absl::Time> orphaned_cutoff);
  // Applies `call`'s deadlines at `now`; true if it abandoned the call (its
  // handle is then moved to `to_cancel`).
  bool CheckDeadlineLocked(CallState& call, absl::Time now,
                           std::vector<std::shared_ptr<AnalyzeCall>>* to_cancel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void EmitLocked(agentstream::v1::Update update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitStatusLocked(agentstream::v1::RunStatus status,
                        const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitCompleteOfCallLocked(CallState& call)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(bool cancelled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notifies followers and, once, the owner. Call without holding mu_.
  void AfterUnlock();

  const std::string request_id_;
  const std::string question_;
  const google::protobuf::Struct options_;
  const std::string reasoning_;
  const Clock* const clock_;
  const RunOptions run_options_;
  OrchestratorMetrics* const metrics_;
  const std::shared_ptr<RunLog> log_;
  size_t charged_bytes_ = 0;  // Set once, in the constructor.

  mutable absl::Mutex mu_;
  std::vector<CallState> calls_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // LoadStored found the run's `complete`.
  bool loaded_complete_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Time> finished_at_ ABSL_GUARDED_BY(mu_);
  int followers_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Time> orphaned_since_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_H_
