// The client side of the standard gRPC health check,
// grpc.health.v1.Health/Check for service "" (the whole server), without
// generated stubs: Debian ships no health.proto. The one place that asks it:
// the image's health probe (deploy/docker/health_probe.cc) and the tests
// that ask a server whether it serves.
#ifndef AGENTSTREAM_COMMON_GRPC_HEALTH_H_
#define AGENTSTREAM_COMMON_GRPC_HEALTH_H_

#include <grpcpp/channel.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentstream {

// HealthCheckResponse.status (grpc/health/v1/health.proto).
inline constexpr int kHealthUnknown = 0;
inline constexpr int kHealthServing = 1;
inline constexpr int kHealthNotServing = 2;

// Asks `channel`'s server, waiting at most `timeout` (the call's deadline)
// for the answer. Returns the status the server reports (kHealthServing,
// kHealthNotServing, ...); else the call's own status, code and message
// (e.g. kUnavailable when the server refused the TLS handshake,
// kDeadlineExceeded when no answer came in time), or kDataLoss when the
// answer is not a HealthCheckResponse.
absl::StatusOr<int> GrpcHealthStatus(std::shared_ptr<grpc::Channel> channel,
                                     absl::Duration timeout);

// OK when the server answers SERVING; else GrpcHealthStatus's error, or
// kUnavailable "not SERVING (status N)".
absl::Status GrpcHealthCheck(std::shared_ptr<grpc::Channel> channel,
                             absl::Duration timeout);

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_GRPC_HEALTH_H_
