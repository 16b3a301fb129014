// What the gateway needs from the orchestrator, as an interface the HTTP
// layer and its tests depend on, and its gRPC implementation.
//
// A RunStream is one Run call: the gRPC side pushes updates into a bounded
// per-stream queue without ever blocking (when the queue is full it stops
// reading, and gRPC's flow control holds the orchestrator back); the HTTP
// thread that owns the stream waits on it with a timeout.
#ifndef AGENTSTREAM_GATEWAY_ORCHESTRATOR_CLIENT_H_
#define AGENTSTREAM_GATEWAY_ORCHESTRATOR_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "agentstream/v1/update.pb.h"
#include "google/protobuf/struct.pb.h"

namespace grpc {
class Channel;
}

namespace agentstream::gateway {

struct RunParams {
  std::string request_id;  // Sent in RunRequest.request_id and x-request-id.
  std::string message;
  std::vector<std::string> specialists;
  google::protobuf::Struct options;
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
  virtual ~RunStream() = default;

  // Moves every queued update (in order) into `out`, waiting up to `timeout`
  // for one to arrive.
  virtual Next Wait(absl::Duration timeout,
                    std::vector<agentstream::v1::Update>* out) = 0;
  // The call's final status; meaningful once Wait returned kFinished.
  virtual absl::Status status() const = 0;
  // Cancels the call (idempotent); the stream then finishes with kCancelled.
  virtual void Cancel() = 0;
  // Waits up to `timeout` for the call to end by itself; true if it did.
  virtual bool WaitFinished(absl::Duration timeout) = 0;
};

// Thread-safe.
class OrchestratorClient {
 public:
  virtual ~OrchestratorClient() = default;
  // Starts a Run call; never null. Failures arrive through the stream.
  virtual std::unique_ptr<RunStream> StartRun(const RunParams& params) = 0;
  virtual absl::StatusOr<agentstream::v1::ListSpecialistsResponse>
  ListSpecialists(absl::Duration timeout, const std::string& request_id) = 0;
};

struct GrpcOrchestratorClientOptions {
  // Updates buffered per stream before the client stops reading.
  size_t queue_capacity = 256;
};

// A client over `channel` using gRPC's callback API for Run.
std::unique_ptr<OrchestratorClient> NewGrpcOrchestratorClient(
    std::shared_ptr<grpc::Channel> channel,
    GrpcOrchestratorClientOptions options = {});

// An insecure channel to `address` that reconnects quickly (at most 2 s of
// backoff) once an orchestrator comes back.
std::shared_ptr<grpc::Channel> NewOrchestratorChannel(
    const std::string& address);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_ORCHESTRATOR_CLIENT_H_
