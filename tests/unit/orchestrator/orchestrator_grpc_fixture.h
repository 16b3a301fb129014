// The fixture of the orchestrator's in-process gRPC tests: the real
// OrchestratorServer on 127.0.0.1 (ephemeral gRPC and metrics ports, the
// real clock) against fake specialist gRPC servers, a stub to it, and its
// /metrics text.
#ifndef AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_ORCHESTRATOR_GRPC_FIXTURE_H_
#define AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_ORCHESTRATOR_GRPC_FIXTURE_H_

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <httplib.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/orchestrator_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"

namespace agentstream::orchestrator {

class OrchestratorServerTest : public ::testing::Test {
 protected:
  // Starts the orchestrator with `options` on ephemeral ports and a stub to
  // it. Call with ASSERT_NO_FATAL_FAILURE.
  void StartOrchestrator(OrchestratorServerOptions options) {
    options.port = 0;
    options.metrics_port = 0;
    auto server = OrchestratorServer::Start(std::move(options), Clock::Real());
    ASSERT_THAT(server, ::agentstream::testing::IsOk());
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = agentstream::v1::Orchestrator::NewStub(channel_);
  }

  // The orchestrator first (its runs end), then every fake in Fakes().
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
    for (FakeServer* f : Fakes()) {
      if (f->server != nullptr) {
        f->server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
      }
    }
  }
  // The fake specialists a test fixture started, to stop after the server.
  virtual std::vector<FakeServer*> Fakes() = 0;

  // The orchestrator's /metrics text ("" if it did not answer).
  std::string Metrics() {
    httplib::Client http("127.0.0.1", server_->metrics_port());
    http.set_read_timeout(5, 0);
    auto res = http.Get("/metrics");
    return res ? res->body : "";
  }

  std::unique_ptr<OrchestratorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<agentstream::v1::Orchestrator::Stub> stub_;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_ORCHESTRATOR_GRPC_FIXTURE_H_
