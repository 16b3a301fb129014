// The run store in Redis (`--run-store=redis://HOST:PORT`; docs/SCALING.md):
// any orchestrator replica serves any run, and a run whose owner is lost is
// taken over by another replica.
//
// Keys (PREFIX is --run-store-prefix, "agentstream"; the braces keep a run's
// keys in one hash slot):
//   PREFIX:{ID}:log   a stream: the run's updates, entry id 0-SEQ, field `u`
//                     the serialized Update; trimmed to the run's event and
//                     byte bounds (--max-log-events, --max-log-bytes).
//   PREFIX:{ID}:meta  a hash: state (live|ended), owner (replica id),
//                     version (the lease's fencing token), seq (the last
//                     seq stored), principal, record (RunRecord JSON),
//                     cancel (1 once asked), last_seq (once ended).
//   PREFIX:{ID}:end   once ended: "LAST_SEQ:PRINCIPAL", kept for
//                     --tombstone-ttl after the log and meta expire
//                     (--log-ttl), so a late resume from the last seq still
//                     ends cleanly.
//   PREFIX:leases     a sorted set: each live run's id, scored by its lease's
//                     expiry (ms, Redis server time).
//   PREFIX:events     a Pub/Sub channel: "cancel ID", "watch ID".
// Every write of a run's log and end runs in a Lua script that first checks
// the run's version against the writer's lease (fencing): a replica that
// lost a run can never write to it again. Time is Redis's (TIME), never a
// replica's clock.
//
// Threads and connections (four per replica, whatever the number of runs):
//  - the writer: appends (pipelined: each round trip carries every update
//    queued meanwhile, one script call per run), ends, lease renewals and
//    takeovers; an update is committed to its RunLog (shown to followers)
//    once Redis has it;
//  - the reader: the logs of runs followed here but held elsewhere, with one
//    XREAD BLOCK over all of them (CLIENT UNBLOCK wakes it for a new one);
//  - the subscriber: cancel requests and remote followers, on PREFIX:events;
//  - the control connection (under a mutex): Create, Lookup, RequestCancel.
//
// When Redis is unreachable: Create answers kUnavailable
// ("run_store_unavailable: ... retry later"); live runs go on, their updates
// held in memory (not shown to followers, which get heartbeats), and written
// when Redis is back, under the same lease: a replica takes nothing over in
// its first lease period after (re)connecting, so an owner has that long to
// renew. If another replica did take a run over meanwhile (this one was cut
// off alone), this one stops it without writing (RunStoreEvents::OnLost)
// and its followers end with UNAVAILABLE "run_moved: ..." to attach again.
#ifndef AGENTSTREAM_ORCHESTRATOR_STORE_REDIS_RUN_STORE_H_
#define AGENTSTREAM_ORCHESTRATOR_STORE_REDIS_RUN_STORE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run_store.h"
#include "orchestrator/store/redis_connection.h"

namespace agentstream::orchestrator::store {

struct RedisRunStoreOptions {
  RedisAddress address;
  RedisOptions redis;
  // This replica's name in the store (owner of its runs); unique.
  std::string replica_id;
  std::string key_prefix = "agentstream";
  // How long a lease lasts unrenewed; renewed every third of it, and
  // expired leases are looked for every sixth.
  absl::Duration lease = absl::Seconds(3);
  // The run's bounds, as its RunLog's (run_manager.h).
  size_t max_log_events = 20000;
  size_t max_log_bytes = size_t{64} << 20;
  absl::Duration log_ttl = absl::Minutes(5);
  absl::Duration tombstone_ttl = absl::Hours(24);
  // A live run's keys expire this long after its last renewal (a run nobody
  // holds any more, every replica gone).
  absl::Duration live_ttl = absl::Hours(24);
  // At most this many runs taken over per look.
  int max_claims = 16;
  OrchestratorMetrics* metrics = nullptr;  // May be null.
};

class RedisRunStore final : public RunStore {
 public:
  explicit RedisRunStore(RedisRunStoreOptions options);
  ~RedisRunStore() override;

  bool shared() const override { return true; }
  void Start(RunStoreEvents* events) override;
  void Stop() override;
  absl::Status Create(const RunRecord& record) override;
  void Track(const std::shared_ptr<Run>& run, uint64_t version) override;
  absl::StatusOr<StoredRun> Lookup(const std::string& id) override;
  absl::StatusOr<std::shared_ptr<FollowedRun>> Follow(
      const std::string& id) override;
  absl::StatusOr<bool> RequestCancel(const std::string& id) override;

  // For tests and /metrics: whether the writer's connection is up.
  bool up() const;
  const std::string& replica_id() const { return options_.replica_id; }

 private:
  struct Shared;
  class Sink;
  struct Tracked;
  struct Mirror;

  void WriterLoop();
  void ReaderLoop();
  void SubscriberLoop();
  // One writer round: what is queued, renewals and claims when due.
  absl::Status WriterRound(RedisConnection& c, absl::Time connected_at);
  // A run the store no longer has (a Redis restarted without its data):
  // queued to be created and written again from this replica's log, or
  // given up (RunStoreEvents::OnLost, DATA_LOSS "run_store_lost: ...")
  // when the log no longer holds all of it.
  void Recreate(const std::string& id);
  // Reads a claimed run's record and log, and hands it to the events.
  void TakeOver(RedisConnection& c, const std::string& id, uint64_t version,
                const std::string& previous_owner, bool cancel);
  // The control connection, made when needed; kUnavailable when Redis
  // cannot be reached (fast while it recently could not).
  absl::StatusOr<RedisConnection*> ControlLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // `script` on the control connection (see the .cc).
  absl::StatusOr<RedisReply> RunControlLocked(const RedisScript& script,
                                              const RedisArgv& keys,
                                              const RedisArgv& args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  absl::Status Unavailable(const absl::Status& why) const;
  std::string Key(const std::string& id, const char* what) const;

  const RedisRunStoreOptions options_;
  const std::shared_ptr<Shared> shared_;
  RunStoreEvents* events_ = nullptr;

  absl::Mutex control_mu_;
  std::unique_ptr<RedisConnection> control_ ABSL_GUARDED_BY(control_mu_);
  absl::Time control_retry_at_ ABSL_GUARDED_BY(control_mu_) =
      absl::InfinitePast();
  absl::Status control_error_ ABSL_GUARDED_BY(control_mu_);

  // The writer thread's schedule.
  absl::Time next_renew_ = absl::InfinitePast();
  absl::Time next_claim_ = absl::InfinitePast();
  std::thread writer_;
  std::thread reader_;
  std::thread subscriber_;
};

}  // namespace agentstream::orchestrator::store

#endif  // AGENTSTREAM_ORCHESTRATOR_STORE_REDIS_RUN_STORE_H_
