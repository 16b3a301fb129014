// Every gRPC service of the whole path (the orchestrator and the four
// built-in specialists, real processes on loopback ports) serves the standard
// health check and lists itself by server reflection, so that stock tools
// (grpc_health_probe, grpcurl) work against it.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/grpc_health.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/whole_path_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(WholePathTest, EveryServiceServesHealthAndReflection) {
  std::vector<int> ports = {topology_->orchestrator_port()};
  for (const char* kind :
       {"data_analyst", "risk_analyst", "compliance_expert", "synthetic"}) {
    ports.push_back(topology_->specialist_port(kind));
  }
  for (int port : ports) {
    // grpc.health.v1.Health/Check (service ""): SERVING.
    EXPECT_THAT(
        GrpcHealthCheck(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                            grpc::InsecureChannelCredentials()),
                        absl::Seconds(5)),
        IsOk())
        << "port " << port;
  }
}

// Server reflection lists the service, so stock tools (grpcurl) can call it:
// a raw ServerReflectionInfo call asking `list_services`.
std::string ListServicesByReflection(int port) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = stub.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](intptr_t expected) {
    return cq.Next(&tag, &ok) && ok &&
           reinterpret_cast<intptr_t>(tag) == expected;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return "";
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  grpc::Slice request_slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&request_slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  if (!step(2)) return "";
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  if (!step(3)) return "";
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return "";
  std::string bytes;
  for (const auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

TEST_F(WholePathTest, EveryServiceListsItselfByServerReflection) {
  EXPECT_THAT(ListServicesByReflection(topology_->orchestrator_port()),
              HasSubstr("agentstream.v1.Orchestrator"));
  for (const char* kind :
       {"data_analyst", "risk_analyst", "compliance_expert", "synthetic"}) {
    const std::string services =
        ListServicesByReflection(topology_->specialist_port(kind));
    EXPECT_THAT(services, HasSubstr("agentstream.v1.Specialist")) << kind;
    EXPECT_THAT(services, HasSubstr("grpc.health.v1.Health")) << kind;
  }
}

}  // namespace
}  // namespace agentstream::testing
