// The SDK: update stamping, cancellation tokens, request validation, and
// the gRPC host in-process (client cancel, drain and shutdown, metrics).
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/clock.h"
#include "common/grpc_health.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/sdk/metrics.h"
#include "specialists/sdk/specialist_server.h"
#include "specialists/sdk/specialist_service.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace agentstream::specialists {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::StatusIs;
using agentstream::v1::Update;
using ::testing::HasSubstr;

TEST(UpdateSinkTest, StampsEveryUpdate) {
  FakeClock clock(absl::FromUnixSeconds(1800000000));
  std::vector<Update> out;
  UpdateSink sink({"req_1", "Echo", "host:1"}, &clock, [&](const Update& u) {
    out.push_back(u);
    return true;
  });
  EXPECT_TRUE(sink.Progress(10, "start"));
  clock.Advance(absl::Milliseconds(5));
  EXPECT_TRUE(sink.Thinking("hmm", false));
  EXPECT_TRUE(
      sink.ToolCall("data_query", {{"sql", "SELECT 1"}, {"params", {1}}}));
  EXPECT_TRUE(sink.PartialResult({{"x", 1}}));
  EXPECT_TRUE(sink.PartialResult(nlohmann::json(5)));  // Wrapped.
  ASSERT_EQ(out.size(), 5u);
  for (const Update& u : out) {
    EXPECT_EQ(u.request_id(), "req_1");
    EXPECT_EQ(u.specialist(), "Echo");
    EXPECT_EQ(u.instance(), "host:1");
    EXPECT_EQ(u.seq(), 0u);
  }
  EXPECT_EQ(out[0].emitted_at(), 1800000000LL * 1000000000LL);
  EXPECT_EQ(out[1].emitted_at(), 1800000000LL * 1000000000LL + 5000000);
  EXPECT_EQ(out[1].thinking().agent(), "Echo");
  EXPECT_FALSE(out[1].thinking().visible());
  EXPECT_EQ(out[2].tool_call().parameters().fields().at("sql").string_value(),
            "SELECT 1");
  EXPECT_EQ(
      out[4].partial_result().result().fields().at("value").number_value(), 5);
  EXPECT_EQ(sink.updates_sent(), 5);
}

TEST(UpdateSinkTest, ProgressIsClampedAndNeverGoesBack) {
  std::vector<int> seen;
  UpdateSink sink({"r", "S", "i"}, Clock::Real(), [&](const Update& u) {
    seen.push_back(static_cast<int>(u.progress().progress()));
    return true;
  });
  sink.Progress(-5, "");
  sink.Progress(40, "");
  sink.Progress(20, "");
  sink.Progress(150, "");
  EXPECT_EQ(seen, (std::vector<int>{0, 40, 40, 100}));
}

TEST(UpdateSinkTest, ReportsAGoneStreamAndStopsWriting) {
  int writes = 0;
  UpdateSink sink({"r", "S", "i"}, Clock::Real(), [&](const Update&) {
    ++writes;
    return writes < 2;
  });
  EXPECT_TRUE(sink.Thinking("a"));
  EXPECT_FALSE(sink.Thinking("b"));
  EXPECT_FALSE(sink.Thinking("c"));
  EXPECT_EQ(writes, 2);
  EXPECT_FALSE(sink.ok());
  EXPECT_EQ(sink.updates_sent(), 1);
}

TEST(CancelTokenTest, FirstCancelWinsAndWakesWaiters) {
  CancelToken token;
  EXPECT_FALSE(token.cancelled());
  EXPECT_FALSE(token.WaitFor(absl::Milliseconds(10)));
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(50));
    token.Cancel("first");
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(token.WaitFor(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  t.join();
  token.Cancel("second");
  EXPECT_EQ(token.reason(), "first");
  EXPECT_NE(token.requested_at(), absl::InfinitePast());
  EXPECT_EQ(CancelToken::SqliteProgressHandler(&token), 1);
}

TEST(ValidateAnalyzeRequestTest, EmptyAndOversized) {
  AnalyzeRequest r;
  EXPECT_THAT(ValidateAnalyzeRequest(r),
              StatusIs(absl::StatusCode::kInvalidArgument));
  r.set_question("q");
  EXPECT_THAT(ValidateAnalyzeRequest(r), IsOk());
  r.set_question("");
  r.set_task("t");
  EXPECT_THAT(ValidateAnalyzeRequest(r), IsOk());
  r.set_task(std::string(kMaxRequestTextBytes, 'x'));
  EXPECT_THAT(ValidateAnalyzeRequest(r), IsOk());
  r.set_task(std::string(kMaxRequestTextBytes + 1, 'x'));
  EXPECT_THAT(ValidateAnalyzeRequest(r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("task")));
  r.set_task("t");
  r.set_question(std::string(kMaxRequestTextBytes + 1, 'x'));
  EXPECT_THAT(
      ValidateAnalyzeRequest(r),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("question")));
}

TEST(SpecialistMetricsTest, RendersPrometheusText) {
  SpecialistMetrics m("Echo");
  m.AnalysisStarted();
  m.AnalysisStarted();
  m.UpdateSent();
  m.AnalysisEnded(AnalysisOutcome::kCancelled);
  m.CancelStopped(12);
  const std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("agentstream_specialist_analyses_started_total{"
                              "specialist=\"Echo\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("agentstream_specialist_analyses_completed_total{"
                        "specialist=\"Echo\",outcome=\"cancelled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_specialist_analyses_active{"
                              "specialist=\"Echo\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_specialist_updates_sent_total{"
                              "specialist=\"Echo\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_specialist_last_cancel_stop_ms{"
                              "specialist=\"Echo\"} 12\n"));
}

// Emits `steps` progress updates, waiting `step` between them (through the
// token, so it stops at once when cancelled).
class Stepper final : public Specialist {
 public:
  Stepper(int steps, absl::Duration step) : steps_(steps), step_(step) {}
  SpecialistCard Card() const override {
    SpecialistCard card;
    card.set_name("Stepper");
    card.set_icon("S");
    return card;
  }
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) override {
    started_.fetch_add(1);
    for (int i = 1; i <= steps_; ++i) {
      if (cancel.WaitFor(step_)) return absl::CancelledError();
      sink.Progress(i * 100 / steps_, request.task());
    }
    return absl::OkStatus();
  }
  std::atomic<int> started_{0};

 private:
  const int steps_;
  const absl::Duration step_;
};

struct Harness {
  std::unique_ptr<SpecialistServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<agentstream::v1::Specialist::Stub> stub;
};

Harness StartServer(int steps, absl::Duration step, int64_t drain_ms = 5000) {
  ServerOptions options;
  options.port = 0;
  options.metrics_port = 0;
  options.drain_timeout_ms = drain_ms;
  auto server =
      SpecialistServer::Start(std::make_unique<Stepper>(steps, step), options);
  EXPECT_THAT(server, IsOk());
  Harness h;
  h.server = *std::move(server);
  h.channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", h.server->port()),
                                  grpc::InsecureChannelCredentials());
  h.stub = agentstream::v1::Specialist::NewStub(h.channel);
  return h;
}

TEST(SpecialistServerTest, DescribeAndAnalyzeOverGrpc) {
  Harness h = StartServer(4, absl::Milliseconds(1));
  grpc::ClientContext describe_ctx;
  describe_ctx.set_deadline(std::chrono::system_clock::now() +
                            std::chrono::seconds(10));
  SpecialistCard card;
  ASSERT_TRUE(h.stub->Describe(&describe_ctx, {}, &card).ok());
  EXPECT_EQ(card.name(), "Stepper");
  EXPECT_EQ(card.instance(), h.server->instance());
  EXPECT_THAT(card.instance(), HasSubstr(absl::StrCat(":", h.server->port())));

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  AnalyzeRequest req;
  req.set_request_id("req_a");
  req.set_task("go");
  auto reader = h.stub->Analyze(&ctx, req);
  Update u;
  std::vector<Update> got;
  while (reader->Read(&u)) got.push_back(u);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got.back().progress().progress(), 100u);
  EXPECT_EQ(got[0].request_id(), "req_a");
  EXPECT_GT(got[0].emitted_at(), 0);
  EXPECT_EQ(got[0].instance(), h.server->instance());
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kOk), 1);
  EXPECT_EQ(h.server->metrics().updates_sent(), 4);

  // Bad input.
  grpc::ClientContext bad_ctx;
  bad_ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  auto bad = h.stub->Analyze(&bad_ctx, AnalyzeRequest());
  while (bad->Read(&u)) {
  }
  EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Metrics over HTTP.
  httplib::Client http("127.0.0.1", h.server->metrics_port());
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body,
              HasSubstr("agentstream_specialist_analyses_completed_total{"
                        "specialist=\"Stepper\",outcome=\"ok\"} 1"));
}

TEST(SpecialistServerTest, ClientCancelStopsTheAnalysisWithin100ms) {
  Harness h = StartServer(1000, absl::Milliseconds(20));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  AnalyzeRequest req;
  req.set_task("long");
  auto reader = h.stub->Analyze(&ctx, req);
  Update u;
  ASSERT_TRUE(reader->Read(&u));  // Running.
  // Timed from the client's cancel to the analysis seen ended (the server's
  // counters, read every 1 ms), not from the server's own cancel token.
  const absl::Time cancelled_at = absl::Now();
  ctx.TryCancel();
  const absl::Time deadline = cancelled_at + absl::Seconds(5);
  while (h.server->metrics().completed(AnalysisOutcome::kCancelled) == 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  const absl::Duration stopped_after = absl::Now() - cancelled_at;
  while (reader->Read(&u)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kCancelled), 1);
  EXPECT_EQ(h.server->metrics().active(), 0);
  EXPECT_LT(stopped_after, absl::Milliseconds(100));
  // And the SDK's own figure (its token tripping to Analyze returning).
  EXPECT_GE(h.server->metrics().last_cancel_stop_ms(), 0);
  EXPECT_LT(h.server->metrics().last_cancel_stop_ms(), 100);
}

// gRPC's deadline filter is off the server's stack; the SDK enforces the
// client's deadline itself: the analysis is cancelled and the call ends.
TEST(SpecialistServerTest, ADeadlineEndsTheAnalysisAndTheCall) {
  Harness h = StartServer(1000, absl::Milliseconds(20));
  // A client that sends its deadline but does not enforce it: the server
  // must end the call (else it streams for 20 s and ends OK).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 0);
  auto lax = agentstream::v1::Specialist::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", h.server->port()),
                                grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(300));
  AnalyzeRequest req;
  req.set_task("long");
  auto reader = lax->Analyze(&ctx, req);
  Update u;
  while (reader->Read(&u)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((h.server->metrics().completed(AnalysisOutcome::kCancelled) == 0 ||
          h.server->metrics().active() > 0) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kCancelled), 1);
  EXPECT_EQ(h.server->metrics().active(), 0);
  // A call whose analysis ended before its deadline leaves nothing behind.
  grpc::ClientContext quick;
  quick.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  Harness q = StartServer(2, absl::Milliseconds(1));
  auto done = q.stub->Analyze(&quick, req);
  while (done->Read(&u)) {
  }
  EXPECT_TRUE(done->Finish().ok());
  EXPECT_EQ(q.server->metrics().completed(AnalysisOutcome::kOk), 1);
}

// Requests go uncompressed (docs/SPECIALISTS.md, "Server"): a compressed
// one is refused, never decompressed without a size check.
TEST(SpecialistServerTest, ACompressedRequestIsRefused) {
  Harness h = StartServer(2, absl::Milliseconds(1));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  AnalyzeRequest req;
  req.set_task(std::string(4096, 'a'));  // Compressible: it is compressed.
  auto reader = h.stub->Analyze(&ctx, req);
  Update u;
  EXPECT_FALSE(reader->Read(&u));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kOk), 0);
  // Uncompressed, the same request is served.
  grpc::ClientContext plain;
  plain.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
  auto served = h.stub->Analyze(&plain, req);
  int updates = 0;
  while (served->Read(&u)) ++updates;
  EXPECT_TRUE(served->Finish().ok());
  EXPECT_EQ(updates, 2);
}

// Reads a whole stream on its own thread.
struct StreamResult {
  std::vector<Update> updates;
  grpc::Status status;
};
std::thread ReadStream(Harness& h, grpc::ClientContext* ctx, StreamResult* out,
                       absl::Notification* first) {
  return std::thread([&h, ctx, out, first] {
    AnalyzeRequest req;
    req.set_task("t");
    auto reader = h.stub->Analyze(ctx, req);
    Update u;
    while (reader->Read(&u)) {
      out->updates.push_back(u);
      if (!first->HasBeenNotified()) first->Notify();
    }
    out->status = reader->Finish();
    if (!first->HasBeenNotified()) first->Notify();
  });
}

TEST(SpecialistServerTest, ShutdownLetsInFlightAnalysesFinish) {
  Harness h = StartServer(10, absl::Milliseconds(30), /*drain_ms=*/5000);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  StreamResult result;
  absl::Notification first;
  std::thread reader = ReadStream(h, &ctx, &result, &first);
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(10)));
  h.server->Shutdown();
  reader.join();
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.updates.size(), 10u);
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kOk), 1);
}

TEST(SpecialistServerTest, ShutdownCancelsAnalysesPastTheDrainTimeout) {
  Harness h = StartServer(1000, absl::Milliseconds(20), /*drain_ms=*/200);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  StreamResult result;
  absl::Notification first;
  std::thread reader = ReadStream(h, &ctx, &result, &first);
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Time start = absl::Now();
  h.server->Shutdown();
  const absl::Duration took = absl::Now() - start;
  reader.join();
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(result.status.error_message(), HasSubstr("shut down"));
  EXPECT_LT(result.updates.size(), 1000u);
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kCancelled), 1);
}

// The whole server's health (common/grpc_health.h): SERVING, NOT_SERVING.
absl::StatusOr<int> HealthStatus(std::shared_ptr<grpc::Channel> channel) {
  return GrpcHealthStatus(std::move(channel), absl::Seconds(5));
}

TEST(SpecialistServerTest, DrainingRefusesNewAnalysesAndReportsNotServing) {
  Harness h = StartServer(20, absl::Milliseconds(25), /*drain_ms=*/5000);
  EXPECT_THAT(HealthStatus(h.channel), IsOkAndHolds(kHealthServing));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  StreamResult result;
  absl::Notification first;
  std::thread reader = ReadStream(h, &ctx, &result, &first);
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread stopper([&] { h.server->Shutdown(); });
  // While the first analysis drains: NOT_SERVING, and new ones are refused.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (HealthStatus(h.channel).value_or(-1) != kHealthNotServing &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_THAT(HealthStatus(h.channel), IsOkAndHolds(kHealthNotServing));
  grpc::ClientContext late;
  late.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  AnalyzeRequest req;
  req.set_task("late");
  auto late_reader = h.stub->Analyze(&late, req);
  Update u;
  EXPECT_FALSE(late_reader->Read(&u));
  EXPECT_EQ(late_reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  stopper.join();
  reader.join();
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.updates.size(), 20u);
}

// Many analyses at once, each on its own stream, all complete.
TEST(SpecialistServerTest, ServesConcurrentAnalyses) {
  Harness h = StartServer(10, absl::Milliseconds(10));
  constexpr int kStreams = 16;
  std::vector<StreamResult> results(kStreams);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<absl::Notification>> firsts;
  std::vector<std::thread> readers;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() +
                                  std::chrono::seconds(30));
    firsts.push_back(std::make_unique<absl::Notification>());
    readers.push_back(
        ReadStream(h, contexts.back().get(), &results[i], firsts.back().get()));
  }
  for (auto& t : readers) t.join();
  for (const StreamResult& r : results) {
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.updates.size(), 10u);
  }
  EXPECT_EQ(h.server->metrics().completed(AnalysisOutcome::kOk), kStreams);
  EXPECT_EQ(h.server->metrics().updates_sent(), 10 * kStreams);
}

}  // namespace
}  // namespace agentstream::specialists
