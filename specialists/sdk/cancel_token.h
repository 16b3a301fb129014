// Cooperative cancellation for a specialist's Analyze().
//
// The SDK trips a token when the client cancels the RPC (observed within
// 100 ms), when the stream to the client breaks, and when the server shuts
// down past its drain timeout. Analyze() polls cancelled() between steps,
// sleeps with WaitFor() instead of sleeping blindly, and installs
// SqliteProgressHandler() so that a long SQL statement is interrupted too.
//
// Thread-safe: any thread may Cancel(); any thread may observe.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_CANCEL_TOKEN_H_
#define AGENTSTREAM_SPECIALISTS_SDK_CANCEL_TOKEN_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace agentstream::specialists {

class CancelToken final {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Trips the token. The first call wins: its `reason` and the time it was
  // requested are kept; later calls are no-ops.
  void Cancel(const std::string& reason = "cancelled");

  // Cheap (one atomic load); safe to call in tight loops.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Waits up to `timeout` for cancellation; true if cancelled. Use it to pace
  // work instead of sleeping.
  bool WaitFor(absl::Duration timeout) const;

  // Why the token was tripped ("" while not cancelled).
  std::string reason() const;
  // When Cancel() was first called (absl::InfinitePast() while not).
  absl::Time requested_at() const;

  // A callback for sqlite3_progress_handler(db, N, &SqliteProgressHandler,
  // &token): a non-zero return makes SQLite abort the running statement with
  // SQLITE_INTERRUPT. Declared without SQLite types so the SDK does not
  // depend on SQLite.
  static int SqliteProgressHandler(void* token);

 private:
  // Made by the first Cancel(): a token lives as long as its call, and most
  // are never tripped, so an untripped one holds a pointer, not the string.
  struct Tripped {
    std::string reason;
    absl::Time requested_at;
  };

  std::atomic<bool> cancelled_{false};
  mutable absl::Mutex mu_;
  std::unique_ptr<const Tripped> tripped_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_CANCEL_TOKEN_H_
