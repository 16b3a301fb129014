// The fixture of the orchestrator's in-process gRPC tests: the real
// OrchestratorServer on 127.0.0.1 (ephemeral gRPC and metrics ports, the
// real clock) against fake specialist gRPC servers, a stub to it, and its
// /metrics text; and the client helpers those tests share (request
// building, reading a stream to its end, starting the `orchestrator`
// binary).
#ifndef AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_ORCHESTRATOR_GRPC_FIXTURE_H_
#define AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_ORCHESTRATOR_GRPC_FIXTURE_H_

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <httplib.h>

#include <cstdint>
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
#include "tests/testing/subprocess.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"

namespace agentstream::orchestrator {

// A stub to an orchestrator listening on 127.0.0.1:`port`.
inline std::unique_ptr<agentstream::v1::Orchestrator::Stub> StubFor(int port) {
  return agentstream::v1::Orchestrator::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

// A RunRequest for `message`; `request_id` and the forced `specialists` are
// set when given.
inline agentstream::v1::RunRequest RunRequestFor(
    const std::string& message, const std::string& request_id = "",
    const std::vector<std::string>& specialists = {}) {
  agentstream::v1::RunRequest request;
  if (!request_id.empty()) request.set_request_id(request_id);
  request.set_message(message);
  for (const std::string& s : specialists) request.add_specialists(s);
  return request;
}

// An AttachRequest for the run `request_id`, resuming after `after_seq`.
inline agentstream::v1::AttachRequest AttachRequestFor(
    const std::string& request_id, uint64_t after_seq = 0) {
  agentstream::v1::AttachRequest attach;
  attach.set_request_id(request_id);
  attach.set_after_seq(after_seq);
  return attach;
}

// What a Run or Attach stream sent, read to its end, and how it finished.
struct StreamEnd {
  std::vector<agentstream::v1::Update> updates;
  grpc::Status status;
};

// Reads `reader` to its end and finishes it.
inline StreamEnd ReadToEnd(
    grpc::ClientReaderInterface<agentstream::v1::Update>* reader) {
  StreamEnd end;
  end.updates = ReadAll(reader);
  end.status = reader->Finish();
  return end;
}

// A whole Run stream of `request` on `stub` (30 s deadline).
inline StreamEnd RunToEnd(agentstream::v1::Orchestrator::Stub& stub,
                          const agentstream::v1::RunRequest& request) {
  auto context = ContextWithDeadline();
  auto reader = stub.Run(context.get(), request);
  return ReadToEnd(reader.get());
}

// A whole Attach stream of `attach` on `stub` (30 s deadline).
inline StreamEnd AttachToEnd(agentstream::v1::Orchestrator::Stub& stub,
                             const agentstream::v1::AttachRequest& attach) {
  auto context = ContextWithDeadline();
  auto reader = stub.Attach(context.get(), attach);
  return ReadToEnd(reader.get());
}

// The `orchestrator` binary, started by StartOrchestratorBinary.
struct OrchestratorProcess {
  std::unique_ptr<agentstream::testing::Subprocess> process;
  std::unique_ptr<agentstream::v1::Orchestrator::Stub> stub;
};

// Starts the `orchestrator` binary with --port=0 and --port-file in `dir`,
// then `args`; logs to `dir`/orchestrator.log. Returns once it wrote its
// port, with a stub to it. Call with ASSERT_NO_FATAL_FAILURE.
inline void StartOrchestratorBinary(const std::string& dir,
                                    std::vector<std::string> args,
                                    OrchestratorProcess* out) {
  agentstream::testing::Subprocess::Options options;
  options.binary = "orchestrator";
  options.args = {"--port=0", "--port-file=" + dir + "/port"};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.log_path = dir + "/orchestrator.log";
  auto process = agentstream::testing::Subprocess::Start(options);
  ASSERT_THAT(process, ::agentstream::testing::IsOk());
  out->process = *std::move(process);
  auto port =
      agentstream::testing::WaitForPortFile(dir + "/port", absl::Seconds(10));
  ASSERT_THAT(port, ::agentstream::testing::IsOk()) << out->process->ReadLog();
  out->stub = StubFor(*port);
}

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

  StreamEnd RunToEnd(const agentstream::v1::RunRequest& request) {
    return ::agentstream::orchestrator::RunToEnd(*stub_, request);
  }
  StreamEnd AttachToEnd(const std::string& request_id, uint64_t after_seq) {
    return ::agentstream::orchestrator::AttachToEnd(
        *stub_, AttachRequestFor(request_id, after_seq));
  }

  // The Cancel RPC for the run `request_id`.
  grpc::Status CancelRun(const std::string& request_id,
                         agentstream::v1::CancelResponse* response) {
    grpc::ClientContext context;
    agentstream::v1::CancelRequest cancel;
    cancel.set_request_id(request_id);
    return stub_->Cancel(&context, cancel, response);
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
// The orchestrator over one RiskAnalyst served by the fake `a_` (which a test
// starts first, with StartFake).
class OverOneSpecialistTest : public OrchestratorServerTest {
 protected:
  std::vector<FakeServer*> Fakes() override { return {&a_}; }

  // A named default (not `= {}`): GCC 12 warns, wrongly, that a defaulted
  // temporary's strings may be used uninitialized.
  void StartOverA() {
    OrchestratorServerOptions options;
    StartOverA(std::move(options));
  }
  void StartOverA(OrchestratorServerOptions options) {
    options.specialists = {{"RiskAnalyst", a_.address()}};
    options.sweep_interval = absl::Milliseconds(20);
    StartOrchestrator(std::move(options));
  }

  FakeServer a_;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_ORCHESTRATOR_GRPC_FIXTURE_H_
