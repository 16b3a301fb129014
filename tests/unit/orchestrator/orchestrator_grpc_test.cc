// The orchestrator over real gRPC on loopback, against fake specialists that
// implement agentstream.v1.Specialist with the generated stubs: the run's
// sequence and dense seq, bad input, cancellation (client going away and the
// Cancel RPC), Attach, ListSpecialists, health, /metrics, start order, and
// the `orchestrator` binary itself.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <httplib.h>
#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/clock.h"
#include "common/grpc_health.h"
#include "common/update_json.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "orchestrator/orchestrator_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"
#include "tests/unit/orchestrator/orchestrator_grpc_fixture.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::testing::IsOk;
using agentstream::v1::Update;
using ::testing::HasSubstr;

class OrchestratorGrpcTest : public OrchestratorServerTest {
 protected:
  void SetUp() override {
    risk_ = StartFake("RiskAnalyst", {"risk"}, 5, absl::Milliseconds(20));
    aml_ = StartFake("ComplianceExpert", {"aml"}, 5, absl::Milliseconds(20));
    slow_ = StartFake("SlowAnalyst", {"slow"}, 1000, absl::Milliseconds(20));
    OrchestratorServerOptions options;
    options.specialists = {{"RiskAnalyst", risk_.address()},
                           {"ComplianceExpert", aml_.address()},
                           {"SlowAnalyst", slow_.address()}};
    ASSERT_NO_FATAL_FAILURE(StartOrchestrator(std::move(options)));
  }
  std::vector<FakeServer*> Fakes() override { return {&risk_, &aml_, &slow_}; }

  FakeServer risk_, aml_, slow_;
};

TEST_F(OrchestratorGrpcTest, RunStreamsTheWholeSequenceWithDenseSeq) {
  auto context = ContextWithDeadline();
  context->AddMetadata("x-request-id", "req_grpc_1");
  agentstream::v1::RunRequest request;
  request.set_message("What is the risk and AML exposure of ACC-1042?");
  auto reader = stub_->Run(context.get(), request);
  std::vector<Update> updates = ReadAll(reader.get());
  grpc::Status finish = reader->Finish();
  ASSERT_TRUE(finish.ok()) << finish.error_message();

  const auto& md = context->GetServerInitialMetadata();
  auto it = md.find("x-request-id");
  ASSERT_NE(it, md.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "req_grpc_1");

  ASSERT_GE(updates.size(), 20u);
  for (size_t i = 0; i < updates.size(); ++i) {
    EXPECT_EQ(updates[i].seq(), i + 1);
    EXPECT_EQ(updates[i].request_id(), "req_grpc_1");
  }
  EXPECT_EQ(updates[0].status().status(),
            agentstream::v1::RUN_STATUS_ANALYZING);
  EXPECT_TRUE(updates[1].has_thinking());
  EXPECT_EQ(updates[2].status().status(),
            agentstream::v1::RUN_STATUS_DELEGATING);
  EXPECT_EQ(updates[3].specialist(), "RiskAnalyst");
  EXPECT_EQ(updates[3].specialist_activated().display_name(),
            "RiskAnalyst display");
  EXPECT_EQ(updates[4].specialist(), "ComplianceExpert");
  ASSERT_TRUE(updates.back().has_complete());
  EXPECT_EQ(updates.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  nlohmann::json result = StructToJson(updates.back().complete().result());
  EXPECT_EQ(result["specialists"]["RiskAnalyst"]["risk_score"], 4.5);

  // Interleaved live: ComplianceExpert's first progress comes before
  // RiskAnalyst's last.
  size_t first_aml = 0, last_risk = 0;
  for (size_t i = 0; i < updates.size(); ++i) {
    if (!updates[i].has_progress()) continue;
    if (updates[i].specialist() == "ComplianceExpert" && first_aml == 0) {
      first_aml = i;
    }
    if (updates[i].specialist() == "RiskAnalyst") last_risk = i;
  }
  EXPECT_GT(first_aml, 0u);
  EXPECT_LT(first_aml, last_risk);
  EXPECT_EQ(slow_.service->request_count(), 0u);
}

TEST_F(OrchestratorGrpcTest, BadInputIsInvalidArgumentBeforeAnyUpdate) {
  {
    auto [updates, status] = RunToEnd(agentstream::v1::RunRequest());
    EXPECT_TRUE(updates.empty());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    auto [updates, status] =
        RunToEnd(RunRequestFor("risk", "", {"Astrologer"}));
    EXPECT_TRUE(updates.empty());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("Astrologer"));
  }
  {
    auto [updates, status] =
        RunToEnd(RunRequestFor(std::string(16 * 1024 + 1, 'x')));
    EXPECT_TRUE(updates.empty());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(OrchestratorGrpcTest, ClientGoingAwayCancelsTheSpecialistWithinASecond) {
  auto context = ContextWithDeadline();
  context->AddMetadata("x-request-id", "req_goes_away");
  agentstream::v1::RunRequest request =
      RunRequestFor("something slow", "", {"SlowAnalyst"});
  request.set_on_disconnect(agentstream::v1::DISCONNECT_POLICY_CANCEL);
  auto reader = stub_->Run(context.get(), request);
  Update u;
  bool saw_progress = false;
  while (reader->Read(&u)) {
    if (u.has_progress()) {
      saw_progress = true;
      break;
    }
  }
  ASSERT_TRUE(saw_progress);
  const absl::Time cancelled_at = absl::Now();
  context->TryCancel();
  EXPECT_TRUE(slow_.service->WaitCancelled(absl::Seconds(1)));
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(1));
  reader->Finish();

  // The run ended cancelled; its log is still there for Attach.
  auto [replay, status] = AttachToEnd("req_goes_away", 0);
  EXPECT_TRUE(status.ok());
  ASSERT_FALSE(replay.empty());
  EXPECT_EQ(replay.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
}

TEST_F(OrchestratorGrpcTest, CancelRpcEndsTheRunWithCancelledOutcome) {
  auto context = ContextWithDeadline();
  auto reader = stub_->Run(
      context.get(),
      RunRequestFor("slow please", "req_to_cancel", {"SlowAnalyst"}));
  // Once the specialist runs (its first update): before that, the call may
  // still be the AnalyzeBatched attempt this Analyze-only fake never sees.
  Update u;
  bool saw_progress = false;
  while (!saw_progress && reader->Read(&u)) saw_progress = u.has_progress();
  ASSERT_TRUE(saw_progress);

  agentstream::v1::CancelResponse response;
  ASSERT_TRUE(CancelRun("req_to_cancel", &response).ok());
  EXPECT_TRUE(response.cancelled());
  EXPECT_TRUE(slow_.service->WaitCancelled(absl::Seconds(1)));

  std::vector<Update> rest = ReadAll(reader.get());
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_GE(rest.size(), 3u);
  EXPECT_EQ(rest.back().complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);
  EXPECT_EQ(rest[rest.size() - 3].specialist_complete().outcome(),
            agentstream::v1::OUTCOME_CANCELLED);

  ASSERT_TRUE(CancelRun("req_to_cancel", &response).ok());
  EXPECT_FALSE(response.cancelled());
  EXPECT_EQ(CancelRun("req_nope", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrchestratorGrpcTest, AttachReplaysAfterSeqAndUnknownIsNotFound) {
  auto [original, run_status] = RunToEnd(RunRequestFor("risk", "req_attach"));
  ASSERT_TRUE(run_status.ok());

  auto [replay, attach_status] = AttachToEnd("req_attach", 3);
  ASSERT_TRUE(attach_status.ok());
  ASSERT_EQ(replay.size(), original.size() - 3);
  for (size_t i = 0; i < replay.size(); ++i) {
    // Struct maps serialize in no fixed order: compare as messages.
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        replay[i], original[i + 3]))
        << replay[i].DebugString();
  }

  auto [unknown, unknown_status] = AttachToEnd("req_unknown", 3);
  EXPECT_TRUE(unknown.empty());
  EXPECT_EQ(unknown_status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrchestratorGrpcTest, AttachFollowsARunningRunLive) {
  auto context = ContextWithDeadline();
  auto reader = stub_->Run(context.get(), RunRequestFor("risk", "req_live"));
  Update first;
  ASSERT_TRUE(reader->Read(&first));

  auto attach_context = ContextWithDeadline();
  auto attach_reader =
      stub_->Attach(attach_context.get(), AttachRequestFor("req_live"));
  std::vector<Update> followed = ReadAll(attach_reader.get());
  std::vector<Update> rest = ReadAll(reader.get());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(attach_reader->Finish().ok());
  ASSERT_EQ(followed.size(), rest.size() + 1);
  EXPECT_TRUE(followed.back().has_complete());
}

TEST_F(OrchestratorGrpcTest, ListSpecialistsHealthAndMetrics) {
  grpc::ClientContext context;
  agentstream::v1::ListSpecialistsResponse list;
  ASSERT_TRUE(stub_->ListSpecialists(&context, {}, &list).ok());
  ASSERT_EQ(list.specialists_size(), 3);
  EXPECT_EQ(list.specialists(0).card().name(), "RiskAnalyst");
  EXPECT_EQ(list.specialists(0).card().instance(), "RiskAnalyst@test");
  EXPECT_EQ(list.specialists(0).address(), risk_.address());
  EXPECT_TRUE(list.specialists(0).available());

  // grpc.health.v1.Health/Check (service ""): SERVING.
  EXPECT_THAT(GrpcHealthStatus(channel_, absl::Seconds(5)),
              ::agentstream::testing::IsOkAndHolds(kHealthServing));

  httplib::Client http("127.0.0.1", server_->metrics_port());
  http.set_read_timeout(5, 0);
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body,
              HasSubstr("agentstream_orchestrator_runs_started_total 0"));
  EXPECT_THAT(res->body,
              HasSubstr("agentstream_orchestrator_followers_active 0"));
}

TEST(OrchestratorStartOrderTest, ASpecialistStartedLaterIsPickedUp) {
  // Learn a free port, then leave it empty for a while.
  FakeServer probe =
      StartFake("RiskAnalyst", {"risk"}, 1, absl::Milliseconds(1));
  const int port = probe.port;
  probe.server->Shutdown();
  probe.server.reset();

  OrchestratorServerOptions options;
  options.port = 0;
  options.specialists = {{"RiskAnalyst", absl::StrCat("127.0.0.1:", port)}};
  options.registry.retry_interval = absl::Milliseconds(100);
  options.registry.describe_timeout = absl::Milliseconds(500);
  auto server = OrchestratorServer::Start(options, Clock::Real());
  ASSERT_THAT(server, IsOk());
  auto stub = StubFor((*server)->port());

  auto list = [&stub] {
    grpc::ClientContext context;
    agentstream::v1::ListSpecialistsResponse response;
    EXPECT_TRUE(stub->ListSpecialists(&context, {}, &response).ok());
    return response;
  };
  EXPECT_FALSE(list().specialists(0).available());

  FakeServer late =
      StartFake("RiskAnalyst", {"risk"}, 2, absl::Milliseconds(1), port);
  ASSERT_EQ(late.port, port);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!list().specialists(0).available() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(list().specialists(0).available());

  auto [updates, status] = RunToEnd(*stub, RunRequestFor("risk"));
  EXPECT_TRUE(status.ok());
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  (*server)->Shutdown(absl::Seconds(1));
  late.server->Shutdown();
}

TEST(OrchestratorBinaryTest, ServesRunsAndMetricsAndStopsOnSigterm) {
  FakeServer risk =
      StartFake("RiskAnalyst", {"risk"}, 3, absl::Milliseconds(5));
  const absl::StatusOr<agentstream::testing::ScopedTempDir> made =
      agentstream::testing::ScopedTempDir::Make("orchestrator");
  ASSERT_THAT(made, IsOk());
  const std::string& dir = made->path();
  OrchestratorProcess orchestrator;
  ASSERT_NO_FATAL_FAILURE(StartOrchestratorBinary(
      dir,
      {"--metrics-port=0", "--metrics-port-file=" + dir + "/metrics_port",
       "--specialist", "RiskAnalyst=" + risk.address()},
      &orchestrator));
  auto metrics_port = agentstream::testing::WaitForPortFile(
      dir + "/metrics_port", absl::Seconds(10));
  ASSERT_THAT(metrics_port, IsOk());

  auto [updates, status] =
      RunToEnd(*orchestrator.stub, RunRequestFor("risk of ACC-1"));
  ASSERT_TRUE(status.ok());
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  for (size_t i = 0; i < updates.size(); ++i) {
    EXPECT_EQ(updates[i].seq(), i + 1);
  }

  httplib::Client http("127.0.0.1", *metrics_port);
  http.set_read_timeout(5, 0);
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body,
              HasSubstr("agentstream_orchestrator_runs_started_total 1"));
  EXPECT_THAT(
      res->body,
      HasSubstr(
          "agentstream_orchestrator_runs_completed_total{outcome=\"ok\"} 1"));
  EXPECT_THAT(res->body, HasSubstr("agentstream_orchestrator_specialist_calls_"
                                   "total{specialist=\"RiskAnalyst\","
                                   "instance=\"RiskAnalyst@test\"} 1"));

  orchestrator.process->Signal(SIGTERM);
  EXPECT_THAT(orchestrator.process->Wait(absl::Seconds(10)),
              ::agentstream::testing::IsOkAndHolds(0));
  risk.server->Shutdown();
}

}  // namespace
}  // namespace agentstream::orchestrator
