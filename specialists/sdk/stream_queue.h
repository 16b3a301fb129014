// The queue between one analysis and its gRPC stream (docs/CONTRACT.md,
// "Batched streams"): updates the analysis emitted that gRPC has not taken
// yet. One write is in flight at a time; whatever was emitted meanwhile goes
// out in the next write: all of it as one UpdateBatch (AnalyzeBatched; at
// most max_bytes of updates, or one larger update alone), or one Update per
// write, oldest first (Analyze).
//
// Bounded in bytes and in updates (StreamLimits): HasRoom() turns false at
// either bound, and the producer is held back (the SDK blocks a blocking
// analysis, and stops stepping an asynchronous one) until a write completes.
// An update larger than the byte bound is still taken when the queue is
// empty, so nothing is ever refused for its size alone.
//
// Not thread-safe: the owner (the call) guards it with its mutex.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_STREAM_QUEUE_H_
#define AGENTSTREAM_SPECIALISTS_SDK_STREAM_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agentstream/v1/update.pb.h"

namespace agentstream::specialists {

// How much one call may hold queued (emitted, not yet taken by gRPC). The
// defaults are the --stream-queue-bytes and --stream-queue-updates flags'.
struct StreamLimits {
  int64_t max_bytes = 256 * 1024;
  int64_t max_updates = 1024;
};

class StreamQueue final {
 public:
  explicit StreamQueue(StreamLimits limits) : limits_(limits) {}

  // Below both bounds (an empty queue always has room).
  bool HasRoom() const {
    return queued_updates_ == 0 || (queued_bytes_ < limits_.max_bytes &&
                                    queued_updates_ < limits_.max_updates);
  }
  // Past twice the bounds: a producer that ignores HasRoom() (a bug in an
  // asynchronous analysis) is stopped here instead of growing the queue.
  bool Overflowing() const {
    return queued_updates_ > 0 && (queued_bytes_ >= 2 * limits_.max_bytes ||
                                   queued_updates_ >= 2 * limits_.max_updates);
  }
  // Queues `update` (the caller checked HasRoom or Overflowing).
  void Push(agentstream::v1::Update update);
  // True when nothing is queued and no write is in flight.
  bool idle() const { return queued_updates_ == 0; }
  bool writing() const { return writing_; }
  // When no write is in flight and something waits, moves the next message
  // into `out` (its previous contents are dropped), marks a write in flight
  // and returns true: the oldest update, or everything queued as one batch.
  bool TakeNext(agentstream::v1::Update* out);
  bool TakeNext(agentstream::v1::UpdateBatch* out);
  // The same, taking updates only while their size inside the batch (tag,
  // length and update) stays within `max_framed_bytes` too (a session
  // stream's credit); at least one.
  bool TakeNext(agentstream::v1::UpdateBatch* out, int64_t max_framed_bytes);
  // The write in flight completed: its updates leave the queue's count.
  void WriteDone();
  // Frees the storage kept for queued updates when nothing is queued (the
  // stream went idle; a busy one keeps it, to avoid regrowing it).
  void Shrink();
  // Drops everything queued (the stream is gone).
  void Clear();

  int64_t queued_bytes() const { return queued_bytes_; }
  // Whether updates wait beyond the write in flight.
  bool more_pending() const { return head_ < pending_.size(); }
  // Updates in the write in flight (0 when none).
  int64_t in_flight_updates() const { return in_flight_updates_; }
  // Their serialized bytes.
  int64_t in_flight_bytes() const { return in_flight_bytes_; }
  // The encoded size of the UpdateBatch in flight (each update's tag and
  // length included).
  int64_t in_flight_framed_bytes() const { return in_flight_framed_bytes_; }
  int64_t queued_updates() const { return queued_updates_; }

 private:
  struct Entry {
    agentstream::v1::Update update;
    int64_t bytes;
  };
  const StreamLimits limits_;
  std::vector<Entry> pending_;  // Oldest first, from head_.
  size_t head_ = 0;
  bool writing_ = false;
  int64_t queued_bytes_ = 0;  // Pending plus the write in flight.
  int64_t queued_updates_ = 0;
  int64_t in_flight_bytes_ = 0;
  int64_t in_flight_framed_bytes_ = 0;
  int64_t in_flight_updates_ = 0;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_STREAM_QUEUE_H_
