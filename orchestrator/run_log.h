// A run's bounded, in-memory event log and the followers that read it.
//
// RunLog assigns the dense, 1-based `seq` (in append order) and serializes
// each update exactly once; every follower (the Run stream and any number of
// Attach streams) shares the same immutable LogEntry. When the log holds
// `max_events` entries the oldest is dropped; a follower that needs a dropped
// entry gets a gap (kOutOfRange) instead of silently missing it.
//
// LogFollower is the transport-independent half of one outgoing stream: a
// cursor into the log and the rule "one write in flight". The gRPC adapter
// implements LogFollower::Sink; unit tests use a recording sink.
//
// Thread-safety: both classes are thread-safe. Listener notifications are
// delivered outside every lock of this file.
#ifndef AGENTSTREAM_ORCHESTRATOR_RUN_LOG_H_
#define AGENTSTREAM_ORCHESTRATOR_RUN_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agentstream/v1/update.pb.h"

namespace agentstream::orchestrator {

// One logged update, immutable once appended.
struct LogEntry {
  agentstream::v1::Update update;  // With its seq.
  std::string bytes;               // update, serialized once.
  uint64_t seq() const { return update.seq(); }
};

// Told when a log may have something new (an entry, or its end).
class LogListener {
 public:
  virtual ~LogListener() = default;
  virtual void OnLogChanged() = 0;
};

class RunLog final {
 public:
  explicit RunLog(size_t max_events);

  // Assigns the next seq, serializes and stores the update; returns the
  // seq. After End(), appends are refused (returns 0). Does not notify: call
  // Notify() once the caller has released its own locks.
  uint64_t Append(agentstream::v1::Update update);
  // Marks the log complete: followers finish after the last entry.
  void End();
  void Notify();

  struct Next {
    std::shared_ptr<const LogEntry> entry;  // The entry after the cursor.
    bool gap = false;    // The entry after the cursor was dropped.
    bool ended = false;  // No entry, and none will come.
  };
  // The entry with seq == after_seq + 1, if the log holds it.
  Next ReadAfter(uint64_t after_seq) const;

  void AddListener(std::weak_ptr<LogListener> listener);
  // Prunes expired listeners too.
  void RemoveListener(const LogListener* listener);

  uint64_t last_seq() const;
  uint64_t first_seq() const;  // Oldest seq held (last_seq()+1 when empty).
  bool ended() const;
  size_t size() const;

 private:
  const size_t max_events_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const LogEntry>> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<LogListener>> listeners_ ABSL_GUARDED_BY(mu_);
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
    // Starts one write; the transport calls OnWriteDone when it completes.
    virtual void Send(std::shared_ptr<const LogEntry> entry) = 0;
    // Ends the stream: OK after the log's end, kOutOfRange on a gap,
    // kCancelled when cancelled or a write failed.
    virtual void End(const absl::Status& status) = 0;
  };

  // `sink` must stay valid until End has been called on it.
  LogFollower(std::shared_ptr<RunLog> log, uint64_t after_seq, Sink* sink);
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

  // LogListener methods
  void OnLogChanged() override { Pump(); }

 private:
  void Pump();

  const std::shared_ptr<RunLog> log_;
  Sink* const sink_;
  mutable absl::Mutex mu_;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_RUN_LOG_H_
