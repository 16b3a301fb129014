// The specialist client's batched stream over real gRPC on loopback
// (docs/CONTRACT.md, "Batched streams"): AnalyzeBatched when the specialist
// has it, else Analyze, remembered for the endpoint; and what a specialist
// sends that is not an Update, in either form, fails that specialist's call
// and nothing else.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/grpc_specialist_client.h"
#include "orchestrator/orchestrator_server.h"
#include "orchestrator/specialist_session.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/fake_session_specialist.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"
#include "tests/unit/orchestrator/orchestrator_grpc_fixture.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::testing::IsOk;
using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;
using ::testing::HasSubstr;

// The specialist client: AnalyzeBatched when the specialist has it, else
// Analyze, remembered for the endpoint.
class AnalyzeFallbackTest : public OrchestratorServerTest {
 protected:
  std::vector<FakeServer*> Fakes() override { return {&a_}; }
  BatchedFakeSpecialistService* fake() {
    return static_cast<BatchedFakeSpecialistService*>(a_.service.get());
  }
  void Start(bool batched, bool sessions = false) {
    a_ = StartFakeService(std::make_unique<BatchedFakeSpecialistService>(
        "RiskAnalyst", std::vector<std::string>{"risk"}, 7,
        absl::Milliseconds(1), batched));
    OrchestratorServerOptions options;
    options.specialists = {{"RiskAnalyst", a_.address()}};
    options.specialist_client.sessions = sessions;
    StartOrchestrator(std::move(options));
  }
  // The run's RiskAnalyst updates: 7 progress and a partial result.
  static void ExpectTheWholeAnalysis(const StreamEnd& end) {
    ASSERT_TRUE(end.status.ok()) << end.status.error_message();
    int progress = 0;
    int partial = 0;
    for (const Update& u : end.updates) {
      progress += u.has_progress() ? 1 : 0;
      partial += u.has_partial_result() ? 1 : 0;
      if (u.has_progress()) {
        EXPECT_EQ(u.specialist(), "RiskAnalyst");
      }
    }
    EXPECT_EQ(progress, 7);
    EXPECT_EQ(partial, 1);
    EXPECT_EQ(end.updates.back().complete().outcome(),
              agentstream::v1::OUTCOME_OK);
  }
  FakeServer a_;
};

TEST_F(AnalyzeFallbackTest, ASpecialistWithAnalyzeBatchedIsCalledThere) {
  Start(/*batched=*/true);
  for (int i = 0; i < 2; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        ExpectTheWholeAnalysis(RunToEnd(RunRequestFor("risk"))));
  }
  EXPECT_EQ(fake()->batched_calls(), 2);
  EXPECT_EQ(fake()->request_count(), 2u);  // Both were AnalyzeBatched.
}

TEST_F(AnalyzeFallbackTest, UnimplementedAnalyzeBatchedFallsBackOnceForGood) {
  Start(/*batched=*/false);
  for (int i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        ExpectTheWholeAnalysis(RunToEnd(RunRequestFor("risk"))));
  }
  // AnalyzeBatched was tried once; every run was served by Analyze.
  EXPECT_EQ(fake()->batched_calls(), 1);
  EXPECT_EQ(fake()->request_count(), 3u);
}

// With sessions on, a specialist without AnalyzeSession serves each run as
// before, through AnalyzeBatched (specialist_session.h).
TEST_F(AnalyzeFallbackTest, SessionsFallBackToAnalyzeBatchedForWholeRuns) {
  Start(/*batched=*/true, /*sessions=*/true);
  for (int i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        ExpectTheWholeAnalysis(RunToEnd(RunRequestFor("risk"))));
  }
  EXPECT_EQ(fake()->batched_calls(), 3);
}

// Runs whose analyses are streams of a specialist's AnalyzeSession
// (docs/CONTRACT.md, "Specialist sessions").
class SessionRunTest : public OrchestratorServerTest {
 protected:
  std::vector<FakeServer*> Fakes() override { return {}; }
  void TearDown() override {
    OrchestratorServerTest::TearDown();
    if (fake_.server != nullptr) {
      fake_.server->Shutdown(
          absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    }
  }
  FakeSessionServer fake_;
};

TEST_F(SessionRunTest, ARunGetsItsAnalysisOverASession) {
  fake_ = StartFakeSessionServer(
      std::make_unique<FakeSessionSpecialist>(5, absl::Milliseconds(1)));
  OrchestratorServerOptions options;
  options.specialists = {{"RiskAnalyst", fake_.address()}};
  options.specialist_client.sessions = true;
  ASSERT_NO_FATAL_FAILURE(StartOrchestrator(std::move(options)));
  for (int i = 0; i < 3; ++i) {
    const StreamEnd end = RunToEnd(RunRequestFor("risk"));
    ASSERT_TRUE(end.status.ok()) << end.status.error_message();
    std::vector<uint32_t> progress;
    for (const Update& u : end.updates) {
      if (u.has_progress() && u.specialist() == "RiskAnalyst") {
        progress.push_back(u.progress().progress());
      }
    }
    EXPECT_EQ(progress, (std::vector<uint32_t>{1, 2, 3, 4, 5}));
    ASSERT_FALSE(end.updates.empty());
    EXPECT_TRUE(end.updates.back().has_complete());
  }
  EXPECT_EQ(fake_.service->opens(), 3);
  EXPECT_LE(fake_.service->calls_started(),
            static_cast<int>(SpecialistSessions::kSessions));
}

TEST(GrpcSpecialistClientTest, AnAnalyzeOnlySpecialistIsRememberedAsSuch) {
  // The plain fake has no AnalyzeBatched at all (gRPC answers UNIMPLEMENTED).
  FakeServer fake =
      StartFake("RiskAnalyst", {"risk"}, 3, absl::Milliseconds(1));
  GrpcSpecialistClient client(fake.address());
  EXPECT_FALSE(client.uses_analyze());

  class Collect final : public AnalyzeObserver {
   public:
    void OnUpdate(Update update) override {
      absl::MutexLock lock(&mu_);
      updates_.push_back(std::move(update));
    }
    void OnDone(const absl::Status& status) override {
      absl::MutexLock lock(&mu_);
      status_ = status;
      done_ = true;
    }
    bool Wait() {
      absl::MutexLock lock(&mu_);
      return mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(10));
    }
    absl::Mutex mu_;
    std::vector<Update> updates_;
    absl::Status status_;
    bool done_ = false;
  };
  for (int i = 0; i < 2; ++i) {
    auto observer = std::make_shared<Collect>();
    agentstream::v1::AnalyzeRequest request;
    request.set_request_id("req_fallback");
    request.set_task("look");
    auto call = client.Analyze(request, observer);
    ASSERT_TRUE(observer->Wait());
    absl::MutexLock lock(&observer->mu_);
    EXPECT_TRUE(observer->status_.ok()) << observer->status_;
    EXPECT_EQ(observer->updates_.size(), 4u);  // 3 progress, 1 partial.
    EXPECT_TRUE(client.uses_analyze());
  }
  EXPECT_EQ(fake.service->request_count(), 2u);
  fake.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

// A specialist that answers every method raw: AnalyzeBatched with a batch
// holding one good update and bytes that are no Update, or (`batched`
// false) UNIMPLEMENTED, and then Analyze with such bytes alone.
class MalformedSpecialist final : public grpc::CallbackGenericService {
 public:
  explicit MalformedSpecialist(bool batched) : batched_(batched) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      Reactor(std::string method, bool batched)
          : method_(std::move(method)), batched_(batched) {
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        // A tag for field 1 with a length past the end: not an Update.
        const std::string garbage("\x0a\x7f\x01", 3);
        std::string message;
        if (method_ == "/agentstream.v1.Specialist/AnalyzeBatched") {
          if (!batched_) {
            return Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""));
          }
          Update good;
          good.mutable_progress()->set_progress(1);
          UpdateBatch batch;
          *batch.add_updates() = good;
          message = batch.SerializeAsString();
          message += '\x0a';
          message += static_cast<char>(garbage.size());
          message += garbage;
        } else if (method_ == "/agentstream.v1.Specialist/Analyze") {
          message = garbage;
        } else {
          return Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""));
        }
        grpc::Slice slice(message);
        response_ = grpc::ByteBuffer(&slice, 1);
        StartWrite(&response_);
      }
      void OnWriteDone(bool) override { Finish(grpc::Status::OK); }
      void OnDone() override { delete this; }

     private:
      const std::string method_;
      const bool batched_;
      grpc::ByteBuffer request_;
      grpc::ByteBuffer response_;
    };
    return new Reactor(context->method(), batched_);
  }

 private:
  const bool batched_;
};

// What a specialist sends that is not an Update fails its call (`internal`),
// in either form; nothing of that message reaches the run, which goes on.
TEST(MalformedUpdateTest, IsAnInternalErrorOfThatSpecialist) {
  for (bool batched : {true, false}) {
    MalformedSpecialist service(batched);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterCallbackGenericService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    OrchestratorServerOptions options;
    options.specialists = {{"Garbled", absl::StrCat("127.0.0.1:", port)}};
    options.port = 0;
    auto orchestrator = OrchestratorServer::Start(options, Clock::Real());
    ASSERT_THAT(orchestrator, IsOk());
    auto stub = StubFor((*orchestrator)->port());
    auto [updates, status] =
        RunToEnd(*stub, RunRequestFor("anything", "", {"Garbled"}));
    ASSERT_TRUE(status.ok()) << status.error_message();
    int errors = 0;
    for (const Update& u : updates) {
      EXPECT_FALSE(u.has_progress()) << "part of a malformed message was kept";
      if (u.has_error()) {
        ++errors;
        EXPECT_EQ(u.error().code(), "internal") << batched;
        EXPECT_THAT(u.error().message(), HasSubstr("malformed"));
      }
    }
    EXPECT_EQ(errors, 1) << batched;
    ASSERT_FALSE(updates.empty());
    EXPECT_EQ(updates.back().complete().outcome(),
              agentstream::v1::OUTCOME_PARTIAL);
    (*orchestrator)->Shutdown(absl::Seconds(1));
    server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
}

}  // namespace
}  // namespace agentstream::orchestrator
