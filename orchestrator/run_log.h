// A run's bounded, in-memory event log and the followers that read it.
//
// RunLog assigns the dense, 1-based `seq` (in append order) and serializes
// each update exactly once; every follower (the Run stream and any number of
// Attach streams) shares the same immutable LogEntry, which keeps only what a
// follower needs (seq, kind, specialist, the serialized bytes). When the log
// holds more than `max_events` entries or `max_bytes` (of LogEntry::Charge:
// the serialized update plus its bookkeeping), the oldest are dropped (the
// newest is always kept); a follower that needs a dropped entry gets a gap
// (kOutOfRange) instead of silently missing it. The RunManager may also drop
// a whole log (Drop: the run's log is gone, only its end is known) or the
// oldest part of one (TrimTo) to keep all runs within --max-total-log-bytes;
// followers see the same gap. With a RunMemory, every entry is charged to it
// for as long as the entry is alive (see run_memory.h).
//
// LogFollower is the transport-independent half of one outgoing stream: a
// cursor into the log, the rule "one write in flight", the batching of the
// batched streams (docs/CONTRACT.md, "Batched streams": each write takes
// whatever the log holds past the cursor, up to FollowerOptions::
// max_batch_bytes, at least one update), and the slow-follower policy. A
// follower's backlog is the log between its cursor and the head (no copies).
// Past `max_lag` entries of backlog, `progress` updates that a newer `progress`
// of the same specialist supersedes are skipped (coalesced); when the
// non-progress updates appended since the follower started and not yet sent
// still exceed `max_lag`, the follower ends with kResourceExhausted
// ("slow_consumer: ..."). Updates that were already in the log when the
// follower started never count toward the cut-off, so a replay (or a resume
// after a cut-off) is never cut off at once. The gRPC adapter implements
// LogFollower::Sink; unit tests use a recording sink.
//
// A log may be commit-gated (EnableCommitGate): a RunStore keeps it (a run
// store outside this process, run_store.h), and readers see an entry only
// once the store has it (Commit), so that what any follower has seen is what
// another replica continues from if this one is lost. The store learns of
// each entry through the log's LogStoreSink. A log may also end with an error
// (End(status)): its followers end with that status after the last entry
// they may see.
//
// Thread-safety: both classes are thread-safe. Listener notifications are
// delivered outside every lock of this file.
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_LOG_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "agentstream/v1/update.pb.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run_memory.h"
#include "orchestrator/update_wire.h"

namespace agentstream::orchestrator {

// One logged update, immutable once appended.
struct LogEntry {
  // Bookkeeping charged per entry besides its strings: the entry itself, its
  // shared_ptr control block, the log's slot and the allocator's headers (an
  // estimate; see Charge()).
  static constexpr size_t kOverheadBytes = 64;

  LogEntry() = default;
  LogEntry(const LogEntry&) = delete;
  LogEntry& operator=(const LogEntry&) = delete;
  // Releases the charge, if any.
  ~LogEntry();

  // What the entry costs: its serialized update, its specialist name, and
  // sizeof(LogEntry) + kOverheadBytes.
  size_t Charge() const {
    return framed.size() + specialist.size() + sizeof(LogEntry) +
           kOverheadBytes;
  }

  // The update (with its seq), serialized once: a Run or Attach message.
  std::string_view bytes() const {
    return std::string_view(framed).substr(header_size);
  }
  // The same bytes as one element of an UpdateBatch (field 1's tag and
  // length, then the update): a batch is the concatenation of these.
  std::string_view batch_bytes() const { return framed; }

  uint64_t seq = 0;
  // The update's emitted_at (the hop histograms, docs/METRICS.md).
  int64_t emitted_at = 0;
  agentstream::v1::Update::KindCase kind =
      agentstream::v1::Update::KIND_NOT_SET;
  std::string specialist;
  // UpdateBatch field 1's tag and length (header_size bytes), then the
  // update: serialized once, so that both stream forms reference it.
  std::string framed;
  uint8_t header_size = 0;
  // How many non-progress entries the log had appended up to and including
  // this one.
  uint64_t non_progress_through = 0;

  bool is_progress() const {
    return kind == agentstream::v1::Update::kProgress;
  }
  // The update, parsed back (tests, diagnostics; not on the hot path).
  agentstream::v1::Update Parse() const;

  // Where Charge() was charged (null: nowhere) and how much.
  std::shared_ptr<RunMemory> memory;
  size_t charged = 0;
};

// Told when a log may have something new (an entry, or its end).
class LogListener {
 public:
  virtual ~LogListener() = default;
  virtual void OnLogChanged() = 0;
};

// Told of every entry a log stores and of its end, in log order, under the
// log's lock: a sink only queues (it must not call back into the log).
class LogStoreSink {
 public:
  virtual ~LogStoreSink() = default;
  virtual void OnAppended(const std::shared_ptr<const LogEntry>& entry) = 0;
  virtual void OnEnded(uint64_t last_seq) = 0;
};

class RunLog final {
 public:
  static constexpr size_t kDefaultMaxBytes = size_t{64} << 20;

  // Zero limits are taken as 1 (the newest entry is always kept). Entries
  // are charged to `memory` when given.
  explicit RunLog(size_t max_events, size_t max_bytes = kDefaultMaxBytes,
                  std::shared_ptr<RunMemory> memory = nullptr);

  // Assigns the next seq, serializes and stores the update (framed, see
  // LogEntry); returns the seq. After End(), appends are refused (returns 0).
  // Does not notify: call Notify() once the caller has released its own locks.
  uint64_t Append(agentstream::v1::Update update);
  // The same for an update kept as its emitter encoded it (update_wire.h):
  // stored with the envelope {request_id, its seq, emitted_at, specialist}
  // and the rest of `encoded`'s bytes as they are; `kind` is its kind.
  uint64_t AppendEncoded(agentstream::v1::Update::KindCase kind,
                         const EncodedUpdate& encoded,
                         std::string_view request_id, int64_t emitted_at,
                         const std::string& specialist);
  // An update as a store holds it (`update` serialized, its seq inside):
  // the logs of runs followed from the store, and of a run taken over. An
  // entry at or before last_seq() is ignored (returns 0); one after
  // last_seq()+1 drops what the log holds first (followers that need the
  // updates in between get a gap). kInvalidArgument if the bytes are no
  // Update or the seq is 0. After End(), refused (returns 0).
  absl::StatusOr<uint64_t> AppendStored(std::string_view update);
  // Marks the log complete: followers finish after the last entry, with
  // `status` (OK: the run's end; an error: why the log ends here, e.g. the
  // run moved to another replica). Entries appended after are refused.
  void End(absl::Status status = absl::OkStatus());
  // Commit gate (see the file comment). Call before the first append.
  void EnableCommitGate();
  // The store holds every entry up to `seq` (capped at last_seq()).
  // Followers are told by the next Notify().
  void Commit(uint64_t seq);
  // Where the store's copy goes; null: nowhere. `sink` is told of entries
  // appended from now on.
  void SetStoreSink(std::shared_ptr<LogStoreSink> sink);
  // Tells the listeners that the log changed, then has the RunMemory relieved
  // if it is over its limit. Call without holding any lock.
  void Notify();

  // Lets go of every entry; the seqs and the end are kept, so reading after
  // the last seq still ends cleanly and anything earlier is a gap. Returns
  // the entries dropped.
  size_t Drop();
  // Drops the oldest entries until the log holds at most `max_bytes` (the
  // newest is always kept). Returns the entries dropped.
  size_t TrimTo(size_t max_bytes);

  // What a reader sees of the log, under its lock: valid only inside Read().
  class View {
   public:
    // The last seq a reader may see (visible_seq()).
    uint64_t last_seq() const;
    uint64_t first_seq() const;  // Oldest seq held (last_seq()+1 if none).
    // Nothing more will be visible; end_status() says how it ended.
    bool ended() const;
    const absl::Status& end_status() const;
    uint64_t non_progress_total() const;
    // The entry with `seq`, which must be in [first_seq(), last_seq()].
    const std::shared_ptr<const LogEntry>& At(uint64_t seq) const;
    // `entry` (held by the log) is a progress update that a newer progress
    // update of the same specialist supersedes.
    bool Superseded(const LogEntry& entry) const;

   private:
    friend class RunLog;
    explicit View(const RunLog& log) : log_(log) {}
    const RunLog& log_;
  };
  // Calls `reader` once with the log locked: a follower takes a whole batch
  // under one lock. `reader` must not call back into the log.
  void Read(absl::FunctionRef<void(const View&)> reader) const;

  struct Next {
    std::shared_ptr<const LogEntry> entry;  // The entry after the cursor.
    bool gap = false;    // The entry after the cursor was dropped.
    bool ended = false;  // No entry, and none will come.
    // The state of the log at the time of the read:
    uint64_t last_seq = 0;
    uint64_t non_progress_total = 0;
    // `entry` is a progress update that a newer progress update of the same
    // specialist supersedes.
    bool superseded = false;
  };
  // The entry with seq == after_seq + 1, if the log holds it (one entry at a
  // time: tests and diagnostics; followers use Read()).
  Next ReadAfter(uint64_t after_seq) const;

  void AddListener(std::weak_ptr<LogListener> listener);
  // Prunes expired listeners too.
  void RemoveListener(const LogListener* listener);

  // Whether a follower (listener) is still attached.
  bool has_listeners() const;
  // The last seq appended, and the last one readers may see (the same
  // unless the log is commit-gated).
  uint64_t last_seq() const;
  uint64_t visible_seq() const;
  bool commit_gated() const;
  uint64_t first_seq() const;  // Oldest seq held (last_seq()+1 when empty).
  bool ended() const;
  size_t size() const;
  size_t bytes() const;  // The Charge() of the entries held.
  uint64_t non_progress_total() const;
  // Where the entries are charged (null: nowhere).
  const std::shared_ptr<RunMemory>& memory() const { return memory_; }

 private:
  // The entries hold the dense seqs up to last_seq_, so the first is known
  // without reading the oldest entry (a cache miss on every read).
  uint64_t FirstSeqLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return last_seq_ + 1 - entries_.size();
  }
  uint64_t VisibleSeqLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return gated_ ? committed_ : last_seq_;
  }
  bool EndedVisibleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_ && VisibleSeqLocked() >= last_seq_;
  }
  // Indexes, charges and stores an entry whose seq and bytes are set, then
  // applies the bounds; returns its seq.
  uint64_t StoreLocked(std::shared_ptr<LogEntry> entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops the oldest entry.
  void PopFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_events_;
  const size_t max_bytes_;
  const std::shared_ptr<RunMemory> memory_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const LogEntry>> entries_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t non_progress_total_ ABSL_GUARDED_BY(mu_) = 0;
  // Per specialist, the seq of its latest progress update.
  std::map<std::string, uint64_t> latest_progress_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  bool gated_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<LogStoreSink> store_sink_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<LogListener>> listeners_ ABSL_GUARDED_BY(mu_);
};

struct FollowerOptions {
  // The bound on one batched write (docs/CONTRACT.md, "Batched streams"):
  // the batch_bytes() of the updates it carries, of which there is always at
  // least one however large.
  static constexpr size_t kMaxBatchBytes = size_t{256} << 10;

  // See the file comment; 0 turns coalescing and the cut-off off.
  uint64_t max_lag = 1024;
  // Counts coalesced updates, cut-offs and gaps; may be null.
  OrchestratorMetrics* metrics = nullptr;
  // 0: one update per write (Run, Attach); else the batched form (RunBatched,
  // AttachBatched), each write bounded by this many bytes.
  size_t max_batch_bytes = 0;
  // Send what the log holds at the first read, then end OK (an Attach with
  // replay_only).
  bool replay_only = false;
};

// Streams a RunLog from a cursor to one Sink, one write at a time.
//
// Sink calls are made by at most one thread at a time and never after the
// Sink::End call; they are never made while a lock of this class is held.
class LogFollower final : public LogListener,
                          public std::enable_shared_from_this<LogFollower> {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    // Starts one write of `entries` (in seq order; one of them unless
    // FollowerOptions::max_batch_bytes is set; never none); the transport
    // calls OnWriteDone when it completes. The span is only valid during the
    // call: a sink keeps (shares) the entries it still needs. `more_follows`:
    // the log already holds entries after these, which will be sent next, so
    // the transport may buffer this write (gRPC's buffer hint); false for the
    // last entries available, which must go out at once.
    virtual void Send(absl::Span<const std::shared_ptr<const LogEntry>> entries,
                      bool more_follows) = 0;
    // Ends the stream: OK after the log's end, kOutOfRange ("gap: ...") on a
    // gap, kResourceExhausted ("slow_consumer: ...") when cut off for
    // lagging, kCancelled when cancelled or a write failed.
    virtual void End(const absl::Status& status) = 0;
  };

  // `sink` must stay valid until End has been called on it.
  LogFollower(std::shared_ptr<RunLog> log, uint64_t after_seq, Sink* sink,
              FollowerOptions options = FollowerOptions());
  ~LogFollower() override;

  // Subscribes to the log and starts writing.
  void Start();
  // The transport's completion of the last Send.
  void OnWriteDone(bool ok);
  // The client went away: finish as soon as no write is in flight.
  void Cancel();
  // Unsubscribes (call once the stream is done).
  void Stop();

  uint64_t cursor() const;
  uint64_t coalesced() const;  // Progress updates skipped.

  // LogListener methods
  void OnLogChanged() override { Pump(); }

 private:
  void Pump();

  const std::shared_ptr<RunLog> log_;
  Sink* const sink_;
  const FollowerOptions options_;
  // The log's non-progress count when the follower started: what was
  // already there never counts toward the cut-off.
  const uint64_t start_non_progress_;
  mutable absl::Mutex mu_;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_);
  uint64_t coalesced_ ABSL_GUARDED_BY(mu_) = 0;
  // replay_only: the log's last seq at the first read, where it ends.
  std::optional<uint64_t> stop_at_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_LOG_H_
