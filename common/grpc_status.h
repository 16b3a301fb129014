// The one place where absl::Status and grpc::Status convert into each other.
// Both use the same canonical codes, so the conversion keeps code and message.
#ifndef AGENTSTREAM_COMMON_GRPC_STATUS_H_
#define AGENTSTREAM_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace agentstream {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_GRPC_STATUS_H_
