// Where runs live beyond the RunLog of the replica running them: the run
// store (docs/SCALING.md).
//
// Two implementations:
//  - LocalRunStore (the default, `--run-store=memory`): a run exists only in
//    the memory of the orchestrator that started it (its RunLog and the
//    RunManager's tables); nothing is shared, so a second replica knows none
//    of its runs. What `./run.sh` uses.
//  - RedisRunStore (`--run-store=redis://HOST:PORT`, store/redis_run_store.h):
//    each run's updates in a Redis stream, its record and lease beside it;
//    any replica serves Attach and Cancel of any run, and a run whose owner
//    stops renewing its lease is taken over by another replica.
//
// The RunManager calls the store; the store calls the RunManager back
// through RunStoreEvents (cancel requests, remote followers, runs to take
// over), from the store's own threads.
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_STORE_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "agentstream/v1/specialist.pb.h"
#include "google/protobuf/struct.pb.h"
#include "orchestrator/followed_run.h"

namespace agentstream::orchestrator {

class Run;

// A replica with followers of a run held elsewhere says so this often
// (RunStoreEvents::OnFollowedElsewhere); the owner counts the run as
// followed for kFollowedElsewhereHold after each, so that a late message
// never lets the grace period run out under a follower.
inline constexpr absl::Duration kFollowedElsewhereEvery = absl::Seconds(1);
inline constexpr absl::Duration kFollowedElsewhereHold = absl::Seconds(3);

// What another replica needs to continue a run: the request as planned.
struct RunRecord {
  struct Participant {
    agentstream::v1::SpecialistCard card;
    std::string task;
  };
  std::string request_id;
  std::string principal;  // Who started it (caller.h); empty: anonymous.
  std::string question;
  google::protobuf::Struct options;
  std::string reasoning;
  std::vector<Participant> participants;
  agentstream::v1::DisconnectPolicy on_disconnect =
      agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED;
};
// JSON, readable with redis-cli; Decode answers kInvalidArgument for what
// Encode did not make.
std::string EncodeRunRecord(const RunRecord& record);
absl::StatusOr<RunRecord> DecodeRunRecord(std::string_view json);

// What the store knows of a run this replica does not hold.
struct StoredRun {
  std::string principal;
  bool ended = false;
  // The stored log holds first_seq..last_seq (first_seq == last_seq + 1:
  // nothing held: expired, or not written yet).
  uint64_t first_seq = 1;
  uint64_t last_seq = 0;
};

// The RunManager's side, called from the store's threads without any of
// the store's locks held.
class RunStoreEvents {
 public:
  virtual ~RunStoreEvents() = default;
  // Someone asked, through any replica, to cancel run `id`.
  virtual void OnCancelRequested(const std::string& id) = 0;
  // Run `id` has a follower on another replica (said every
  // kFollowedElsewhereEvery while it has).
  virtual void OnFollowedElsewhere(const std::string& id) = 0;
  // This replica now owns run `record.request_id` (its owner stopped
  // renewing the lease): continue it from `stored` (its updates as stored,
  // serialized, in seq order) under lease `version`; `note` says what
  // happened, for the run's followers. An error gives the run up here: the
  // lease lapses again.
  virtual absl::Status OnTakeOver(const RunRecord& record,
                                  const std::vector<std::string>& stored,
                                  uint64_t version,
                                  const std::string& note) = 0;
  // This replica lost run `id`: stop it here without a word to the store;
  // its followers end with `why` (UNAVAILABLE "run_moved: ..." when another
  // replica took it over while this one could not reach the store).
  virtual void OnLost(const std::string& id, const absl::Status& why) = 0;
};

class RunStore {
 public:
  virtual ~RunStore() = default;

  // Whether other replicas share the store (false: LocalRunStore).
  virtual bool shared() const = 0;
  // Starts the store's threads; `events` must outlive Stop().
  virtual void Start(RunStoreEvents* events) = 0;
  // Stops them; a run still being written is abandoned (its lease lapses,
  // so another replica takes it over).
  virtual void Stop() = 0;

  // Claims `record.request_id` store-wide for a new run owned by this
  // replica. kAlreadyExists if any replica has (or recently had) a run of
  // that id; kUnavailable ("run_store_unavailable: ... retry later") when
  // the store cannot be reached.
  virtual absl::Status Create(const RunRecord& record) = 0;
  // From now on the store keeps `run`'s log (created by Create, or taken
  // over under lease `version`): its log becomes commit-gated and each
  // entry is written, then committed.
  virtual void Track(const std::shared_ptr<Run>& run, uint64_t version) = 0;
  // A run this replica does not hold. kNotFound when the store has none;
  // kUnavailable when the store cannot be reached.
  virtual absl::StatusOr<StoredRun> Lookup(const std::string& id) = 0;
  // A run held elsewhere, its log read from the store as it grows.
  virtual absl::StatusOr<std::shared_ptr<FollowedRun>> Follow(
      const std::string& id) = 0;
  // Asks the run's owner to cancel it. False when it had already ended.
  virtual absl::StatusOr<bool> RequestCancel(const std::string& id) = 0;
};

// The default: nothing shared (see the file comment).
class LocalRunStore final : public RunStore {
 public:
  bool shared() const override { return false; }
  void Start(RunStoreEvents*) override {}
  void Stop() override {}
  absl::Status Create(const RunRecord&) override { return absl::OkStatus(); }
  void Track(const std::shared_ptr<Run>&, uint64_t) override {}
  absl::StatusOr<StoredRun> Lookup(const std::string& id) override {
    return absl::NotFoundError("no run " + id);
  }
  absl::StatusOr<std::shared_ptr<FollowedRun>> Follow(
      const std::string& id) override {
    return absl::NotFoundError("no run " + id);
  }
  absl::StatusOr<bool> RequestCancel(const std::string& id) override {
    return absl::NotFoundError("no run " + id);
  }
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_STORE_H_
