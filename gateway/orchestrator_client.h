// What the gateway needs from the orchestrator, as an interface the HTTP
// layer and its tests depend on, and its gRPC implementation.
//
// A RunStream is one server-streaming call (Run or Attach): the gRPC side
// pushes updates into a per-stream queue bounded in updates and bytes
// without ever blocking (when the queue is full it stops reading, and gRPC's
// flow control holds the orchestrator back until the owner takes the queue);
// the HTTP thread that owns the stream waits on it with a timeout.
//
// The orchestrator sends a call's initial metadata as soon as it accepts the
// call (before any update), and refuses a call (unknown run, gap, bad seq)
// with a status alone. So "accepted, nothing to send yet" (an idle live run)
// is told apart from "no answer yet" without waiting for an update
// (RunStream::WaitOpening).
#ifndef AGENTSTREAM_GATEWAY_ORCHESTRATOR_CLIENT_H_
#define AGENTSTREAM_GATEWAY_ORCHESTRATOR_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "agentstream/v1/update.pb.h"
#include "common/caller_metadata.h"
#include "common/tls.h"
#include "gateway/metrics.h"
#include "google/protobuf/struct.pb.h"

namespace grpc {
class Channel;
}

namespace agentstream::gateway {

struct RunParams {
  std::string request_id;  // Sent in RunRequest.request_id and x-request-id.
  // Who the run is for (the owner): sent as metadata (caller_metadata.h).
  OnBehalfOf on_behalf_of;
  std::string message;
  std::vector<std::string> specialists;
  google::protobuf::Struct options;
  agentstream::v1::DisconnectPolicy on_disconnect =
      agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED;
};

// One running call. Owned by one thread at a time (not for concurrent use),
// except Cancel(), which may be called from any thread.
class RunStream {
 public:
  enum class Next {
    kUpdates,   // `out` got at least one update.
    kTimeout,   // Nothing arrived within the timeout.
    kFinished,  // The call ended and every update was taken: see status().
  };
  enum class Opening {
    kAccepted,  // The orchestrator accepted the call: its initial metadata
                // (or an update) came. Updates follow through Wait().
    kFinished,  // The call ended before it was accepted: see status().
    kTimeout,   // No answer at all within the timeout.
  };
  virtual ~RunStream() = default;

  // Waits up to `timeout` for the call's first answer, taking no update.
  virtual Opening WaitOpening(absl::Duration timeout) = 0;
  // Moves every queued update (in order) into `out`, waiting up to `timeout`
  // for one to arrive.
  virtual Next Wait(absl::Duration timeout,
                    std::vector<agentstream::v1::Update>* out) = 0;
  // The call's final status; meaningful once Wait returned kFinished.
  virtual absl::Status status() const = 0;
  // Cancels this gRPC call only (idempotent); the stream then finishes with
  // kCancelled. What becomes of the run is the orchestrator's disconnect
  // policy.
  virtual void Cancel() = 0;
  // Waits up to `timeout` for the call to end by itself; true if it did.
  virtual bool WaitFinished(absl::Duration timeout) = 0;
  // For an owner that holds no thread while it waits: `listener` is called
  // (on whatever thread the news arrives, never under a lock of the stream)
  // when the call is accepted, when updates arrive and when it ends, and at
  // once if any of that already happened; the owner then takes what there
  // is with Wait(ZeroDuration()). It must not block. Destroying the stream
  // stops the calls. The default keeps no listener (a stream whose Wait
  // never has to wait).
  virtual void SetListener(std::function<void()> listener) { (void)listener; }
};

// Thread-safe.
// An AttachRequest following `request_id` after `after_seq`.
agentstream::v1::AttachRequest AttachFrom(const std::string& request_id,
                                          uint64_t after_seq);

class OrchestratorClient {
 public:
  virtual ~OrchestratorClient() = default;
  // Starts a Run call; never null. Failures arrive through the stream.
  virtual std::unique_ptr<RunStream> StartRun(const RunParams& params) = 0;
  // Starts an Attach call following run `attach.request_id()` from after
  // `attach.after_seq()` (0: from the start; with `replay_only`, what the
  // log holds now); never null. Failures (NOT_FOUND, OUT_OF_RANGE "gap:",
  // INVALID_ARGUMENT, UNAVAILABLE, ...) arrive through the stream.
  virtual std::unique_ptr<RunStream> StartAttach(
      const agentstream::v1::AttachRequest& attach, const OnBehalfOf& who) = 0;
  // The Cancel RPC: true when the run was cancelled, false when it had
  // already ended; NOT_FOUND for an unknown run, UNAVAILABLE or
  // DEADLINE_EXCEEDED when the orchestrator did not answer within `timeout`.
  virtual absl::StatusOr<bool> Cancel(const std::string& request_id,
                                      absl::Duration timeout,
                                      const OnBehalfOf& who) = 0;
  virtual absl::StatusOr<agentstream::v1::ListSpecialistsResponse>
  ListSpecialists(absl::Duration timeout, const std::string& request_id) = 0;
  // What the client counts of the updates it receives (GatewayMetrics reads
  // it); null when it counts nothing.
  virtual std::shared_ptr<const UpstreamCounters> upstream_counters() const {
    return nullptr;
  }
};

struct GrpcOrchestratorClientOptions {
  // Updates buffered per stream before the client stops reading
  // (--stream-queue), and their bytes (--stream-queue-kib): reading stops at
  // whichever bound comes first.
  size_t queue_capacity = 256;
  size_t queue_max_bytes = 1024 * 1024;
  // Call RunBatched and AttachBatched (several updates per message,
  // docs/CONTRACT.md) instead of Run and Attach.
  bool batched = true;
  // Open Run and Attach streams in one Session call (docs/CONTRACT.md,
  // "Sessions"; session_client.h) instead of a call each; the per-call form
  // above is the fallback for an orchestrator without Session. A stream's
  // window is queue_max_bytes.
  bool session = true;
  // A Session call older than this takes no more streams: the next stream
  // of its slot opens a new call, which round robin may place on another
  // orchestrator replica (one added since, once the orchestrator's
  // --max-connection-age-ms made the channel resolve again); the old call
  // ends once its last stream has (session_client.h). Zero: never.
  absl::Duration session_max_age = absl::Seconds(30);
};

// A client over `channel` using gRPC's callback API for Run and Attach.
std::unique_ptr<OrchestratorClient> NewGrpcOrchestratorClient(
    std::shared_ptr<grpc::Channel> channel,
    GrpcOrchestratorClientOptions options = {});

// A channel to `address` that reconnects quickly (at most 2 s of backoff)
// once an orchestrator comes back, balances calls round robin over every
// address the target resolves to, and resolves it again within a second
// when a connection goes (an orchestrator's GOAWAY); plaintext, or mTLS with
// `tls`'s files (common/tls.h).
std::shared_ptr<grpc::Channel> NewOrchestratorChannel(
    const std::string& address, const TlsFiles& tls = {});

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_ORCHESTRATOR_CLIENT_H_
