// The write side of a gRPC client bidi reactor whose writes come from any
// thread (opens, credits, closes of the streams multiplexed on a session
// call): a queue, one write in flight, and the reactor's extra hold (taken
// so that writes may start outside its reactions) dropped once writing is
// over and no write is in flight. Used by the gateway's sessions to the
// orchestrator and the orchestrator's sessions to the specialists.
//
// Order: messages go in the order Enqueue/Send was called. A caller that
// must keep an order decided under its own lock (stream ids, which the
// other side takes only increasing) calls Enqueue under that lock and
// Start() after letting go of it. Lock order: the caller's lock, then this
// one's; this never calls back into the caller with its lock held.
//
// Half-close: CloseWrites() sends WritesDone after every queued message,
// and nothing queues after it; the reactor's OnWritesDoneDone calls
// WritesDoneDone().
//
// Thread-safe. `Reactor` has StartWrite(const Message*) and RemoveHold()
// (and StartWritesDone() when CloseWrites is used).
#ifndef AGENTSTREAM_COMMON_REACTOR_WRITER_H_
#define AGENTSTREAM_COMMON_REACTOR_WRITER_H_

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agentstream {

template <typename Reactor, typename Message>
class ReactorWriter {
 public:
  // `reactor` owns this and has taken the hold this drops.
  explicit ReactorWriter(Reactor* reactor) : reactor_(reactor) {}

  // Queues `message` (dropped once writing is over); true when the caller
  // is to call Start(), after letting go of any lock it holds.
  [[nodiscard]] bool Enqueue(Message message) {
    absl::MutexLock lock(&mu_);
    if (over_ || closing_ || hold_dropped_) return false;
    pending_.push_back(std::move(message));
    if (writing_) return false;
    TakeNextLocked();
    return true;
  }
  // Starts the write Enqueue took.
  void Start() { reactor_->StartWrite(&out_); }
  // Enqueue, then Start if due.
  void Send(Message message) {
    if (Enqueue(std::move(message))) Start();
  }

  // From the reactor's OnWriteDone: the next write, or the hold dropped
  // when writing is over. A failed write ends writing.
  void WriteDone(bool ok) {
    bool write, writes_done = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) over_ = true;
      write = !over_ && !pending_.empty();
      if (write) {
        TakeNextLocked();
      } else if (!over_ && closing_) {
        writes_done = writing_ = true;
      }
    }
    if (write) {
      Start();
    } else if (writes_done) {
      reactor_->StartWritesDone();
    } else {
      MaybeDropHold();
    }
  }

  // Half-closes the call once the queue is written; Enqueue refuses from
  // now on. Nothing happens when writing is over.
  void CloseWrites() {
    {
      absl::MutexLock lock(&mu_);
      if (over_ || closing_ || hold_dropped_) return;
      closing_ = true;
      if (writing_) return;  // WriteDone starts it after the queue.
      writing_ = true;
    }
    reactor_->StartWritesDone();
  }
  // From the reactor's OnWritesDoneDone: writing is over.
  void WritesDoneDone() {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      over_ = true;
    }
    MaybeDropHold();
  }

  // No write starts after this; the hold goes once none is in flight.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      over_ = true;
    }
    MaybeDropHold();
  }

 private:
  void TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
  }
  void MaybeDropHold() {
    {
      absl::MutexLock lock(&mu_);
      if (!over_ || writing_ || hold_dropped_) return;
      hold_dropped_ = true;
    }
    reactor_->RemoveHold();
  }

  Reactor* const reactor_;
  Message out_;  // Touched by the write in flight only.
  absl::Mutex mu_;
  std::deque<Message> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool over_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // CloseWrites was called.
  bool hold_dropped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_REACTOR_WRITER_H_
