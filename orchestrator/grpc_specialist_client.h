// SpecialistClient over gRPC: Describe is a unary call, Analyze a callback-
// API server stream (ClientReadReactor), so a pending call holds no thread.
//
// Addresses: "host:port" or any gRPC target ("dns:///name:port"); the
// channel's service config selects round_robin, so a DNS name with several
// replicas spreads calls over all of them. Thread-safe.
#ifndef AGENTSTREAM_ORCHESTRATOR_GRPC_SPECIALIST_CLIENT_H_
#define AGENTSTREAM_ORCHESTRATOR_GRPC_SPECIALIST_CLIENT_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "agentstream/v1/specialist.grpc.pb.h"
#include "orchestrator/specialist_client.h"

namespace agentstream::orchestrator {

class GrpcSpecialistClient final : public SpecialistClient {
 public:
  explicit GrpcSpecialistClient(std::string address);

  // SpecialistClient methods
  absl::StatusOr<agentstream::v1::SpecialistCard> Describe(
      absl::Duration timeout) override;
  std::unique_ptr<AnalyzeCall> Analyze(
      const agentstream::v1::AnalyzeRequest& request,
      std::shared_ptr<AnalyzeObserver> observer) override;
  std::string address() const override { return address_; }

 private:
  const std::string address_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<agentstream::v1::Specialist::Stub> stub_;
};

// Creates the channel used above: round_robin, keepalive, unlimited receive
// size. Exposed for tests.
std::shared_ptr<grpc::Channel> CreateSpecialistChannel(
    const std::string& address);

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_GRPC_SPECIALIST_CLIENT_H_
