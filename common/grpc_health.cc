#include "common/grpc_health.h"

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/grpc_status.h"

namespace agentstream {

absl::StatusOr<int> GrpcHealthStatus(std::shared_ptr<grpc::Channel> channel,
                                     absl::Duration timeout) {
  grpc::GenericStub stub(std::move(channel));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(timeout));
  // An empty HealthCheckRequest: service "".
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  // The call's own deadline ends it; the margin only guards against a hang.
  if (!done.WaitForNotificationWithTimeout(timeout + absl::Seconds(1))) {
    ctx.TryCancel();
    done.WaitForNotification();
    return absl::DeadlineExceededError("no answer");
  }
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return absl::DataLossError("unreadable answer");
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // Field 1 (tag byte 08), a small enum (one varint byte); proto3 leaves out
  // the default, UNKNOWN.
  if (bytes.empty()) return kHealthUnknown;
  if (bytes.size() == 2 && bytes[0] == 0x08 &&
      static_cast<unsigned char>(bytes[1]) < 0x80) {
    return static_cast<int>(bytes[1]);
  }
  return absl::DataLossError(
      absl::StrCat("not a HealthCheckResponse (", bytes.size(), " bytes)"));
}

absl::Status GrpcHealthCheck(std::shared_ptr<grpc::Channel> channel,
                             absl::Duration timeout) {
  absl::StatusOr<int> status = GrpcHealthStatus(std::move(channel), timeout);
  if (!status.ok()) return status.status();
  if (*status != kHealthServing) {
    return absl::UnavailableError(
        absl::StrCat("not SERVING (status ", *status, ")"));
  }
  return absl::OkStatus();
}

}  // namespace agentstream
