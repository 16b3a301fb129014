// Per-client bounds at the gateway (docs/GATEWAY.md, "Limits"): how many
// streams one client may hold open at once, and how fast it may start runs
// (a token bucket: `run_starts_per_second`, bursts of `run_start_burst`).
// A client is a key: the authenticated principal once there is one, the
// client address until then (common/http/client_address.h).
//
// A client with no open stream whose bucket is full again is forgotten: it
// would start that way anyway. That happens when its last stream ends, or
// at the latest one refill time (`run_start_burst` / the rate) later, so a
// burst of clients leaves no entries behind (their small allocations would
// pin the pages the burst used; docs/BENCHMARKS.md, "After the burst").
// The table of clients is bounded too (`max_clients`): when full, clients
// with no open stream are forgotten, the longest idle first (a forgotten
// client's bucket starts full again, which is the least harm).
//
// Refusals are kResourceExhausted (HTTP 429) with the seconds to wait.
// Thread-safe; time from the injected Clock.
#ifndef AGENTSTREAM_GATEWAY_CLIENT_LIMITS_H_
#define AGENTSTREAM_GATEWAY_CLIENT_LIMITS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace agentstream::gateway {

struct ClientLimitOptions {
  // Open streams per client at once; 0: no bound.
  int64_t max_streams_per_client = 256;
  // Run starts per client: refill rate and bucket size; a rate of 0: no
  // bound.
  double run_starts_per_second = 50;
  int64_t run_start_burst = 100;
  // Clients remembered at once.
  size_t max_clients = 100000;
  // Retry-After for a client at its stream bound (a stream's end cannot be
  // predicted).
  int stream_retry_after_seconds = 2;
};

class ClientLimiter final {
 public:
  ClientLimiter(ClientLimitOptions options, const Clock* clock);

  // One of a client's open streams; released when destroyed.
  class StreamSlot final {
   public:
    ~StreamSlot();
    StreamSlot(const StreamSlot&) = delete;
    StreamSlot& operator=(const StreamSlot&) = delete;

   private:
    friend class ClientLimiter;
    StreamSlot(ClientLimiter* limiter, std::string client)
        : limiter_(limiter), client_(std::move(client)) {}
    ClientLimiter* const limiter_;
    const std::string client_;
  };

  struct Refusal {
    absl::Status status;  // kResourceExhausted, saying which bound.
    int retry_after_seconds = 1;
  };

  // A stream slot for `client`, or a refusal when it holds its bound.
  // Exactly one of the two is set.
  struct StreamResult {
    std::unique_ptr<StreamSlot> slot;
    Refusal refusal;
  };
  StreamResult AcquireStream(const std::string& client);

  // Takes a token from the client's bucket: OK, or a refusal with the
  // seconds until one is there.
  Refusal TakeRunStart(const std::string& client);

  size_t tracked_clients() const;
  int64_t open_streams(const std::string& client) const;

 private:
  struct Entry {
    int64_t open_streams = 0;
    double tokens = 0;
    absl::Time refilled;
    absl::Time last_seen;
  };
  void Release(const std::string& client);
  Entry& EntryLocked(const std::string& client, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefillLocked(Entry& e, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeRoomLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when `e` holds nothing a new entry would not (refills it).
  bool ForgettableLocked(Entry& e, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the forgettable clients, at most once per refill time.
  void ForgetIdleLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClientLimitOptions options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  // Time for an empty bucket to fill again: how often idle clients are
  // looked for.
  const absl::Duration forget_period_;
  absl::flat_hash_map<std::string, Entry> clients_ ABSL_GUARDED_BY(mu_);
  absl::Time next_forget_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_CLIENT_LIMITS_H_
