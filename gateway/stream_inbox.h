// What a RunStream implementation keeps of one orchestrator stream for its
// owner (orchestrator_client.h): the updates queued, whether the
// orchestrator accepted the stream, whether it ended and how, and the
// owner's listener; and the waits on them. The per-call reactor
// (orchestrator_client.cc) and a session's streams (session_client.cc)
// derive from it and fill it under mu_.
//
// Thread-safe.
#ifndef AGENTSTREAM_GATEWAY_STREAM_INBOX_H_
#define AGENTSTREAM_GATEWAY_STREAM_INBOX_H_

#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/update.pb.h"
#include "gateway/orchestrator_client.h"

namespace agentstream::gateway {

class StreamInbox {
 public:
  // RunStream::WaitOpening, WaitFinished, status and SetListener.
  RunStream::Opening WaitOpening(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return accepted_ || done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&answered), timeout);
    if (accepted_) return RunStream::Opening::kAccepted;
    return done_ ? RunStream::Opening::kFinished : RunStream::Opening::kTimeout;
  }
  bool WaitFinished(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }
  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  // Called at once (outside the lock) when there is news already.
  void SetListener(std::function<void()> listener) {
    bool call_now;
    {
      absl::MutexLock lock(&mu_);
      if (done_) {
        call_now = listener != nullptr;
      } else {
        listener_ = listener;
        call_now = listener != nullptr && (!queue_.empty() || accepted_);
      }
    }
    if (call_now) listener();
  }

 protected:
  StreamInbox() = default;
  ~StreamInbox() = default;

  mutable absl::Mutex mu_;
  std::function<void()> listener_ ABSL_GUARDED_BY(mu_);
  std::deque<agentstream::v1::Update> queue_ ABSL_GUARDED_BY(mu_);
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_STREAM_INBOX_H_
