// Synthetic: parameters, counts and pacing in-process, then the real binary
// over gRPC on loopback.
#include "specialists/synthetic/synthetic.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/update_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/specialists/fixture.h"

namespace agentstream::specialists {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::StatusIs;
using ::agentstream::testing::Subprocess;
using agentstream::v1::Update;
using ::testing::HasSubstr;
using Kind = agentstream::v1::Update::KindCase;

AnalyzeRequest WithOptions(const nlohmann::json& options) {
  AnalyzeRequest r;
  r.set_task("load");
  *r.mutable_options() = JsonToStruct(options);
  return r;
}

TEST(SyntheticTest, OptionsOverrideFlagDefaults) {
  const SyntheticParams defaults{5, 10, 0};
  auto p = ResolveSyntheticParams(defaults, WithOptions({{"count", 7}}));
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->count, 7);
  EXPECT_EQ(p->size, 10);
  p = ResolveSyntheticParams(defaults,
                             WithOptions({{"size", "64"}, {"rate", 2.5}}));
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->size, 64);
  EXPECT_DOUBLE_EQ(p->rate, 2.5);
  EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{"count", -1}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count")));
  EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{"size", "big"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size")));
  EXPECT_THAT(
      ResolveSyntheticParams(defaults, WithOptions({{"size", 2 << 20}})),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SyntheticTest, EmitsCountPartialResultsOfSizeBytes) {
  Synthetic synthetic({250, 100, 0});
  EXPECT_TRUE(synthetic.Card().explicit_only());
  const auto c = testing::RunAnalyze(synthetic, "go");
  ASSERT_THAT(c.status, IsOk());
  ASSERT_EQ(c.partials.size(), 250u);
  EXPECT_EQ(c.partials[0]["payload"].get<std::string>().size(), 100u);
  EXPECT_EQ(c.partials[249]["i"], 250);
  // One progress update per whole percent, 0 (i = 1) to 100.
  EXPECT_EQ(c.Count(Kind::kProgress), 101);
  EXPECT_EQ(c.updates.back()
                .partial_result()
                .result()
                .fields()
                .at("i")
                .number_value(),
            250);
}

TEST(SyntheticTest, PacesAtTheRateAndStopsWhenCancelled) {
  Synthetic synthetic({1000, 8, 50});
  CancelToken cancel;
  int partials = 0;
  UpdateSink sink({"r", "Synthetic", "i"}, Clock::Real(), [&](const Update& u) {
    partials += u.has_partial_result() ? 1 : 0;
    return true;
  });
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(300));
    cancel.Cancel("test");
  });
  AnalyzeRequest req;
  req.set_task("t");
  const absl::Status s = synthetic.Analyze(req, sink, cancel);
  const absl::Time stopped = absl::Now();
  canceller.join();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(stopped - cancel.requested_at(), absl::Milliseconds(100));
  // 50/s for 0.3 s: about 15 (the first is immediate).
  EXPECT_GE(partials, 10);
  EXPECT_LE(partials, 25);
}

struct Running {
  std::unique_ptr<Subprocess> process;
  std::unique_ptr<agentstream::v1::Specialist::Stub> stub;
};

Running StartBinary(const std::vector<std::string>& extra) {
  const std::string dir = agentstream::testing::MakeTempDir("synthetic");
  std::vector<std::string> args = {"--port", "0", "--port-file", dir + "/port"};
  args.insert(args.end(), extra.begin(), extra.end());
  Subprocess::Options options;
  options.binary = "synthetic";
  options.args = args;
  options.log_path = dir + "/log";
  auto process = Subprocess::Start(std::move(options));
  EXPECT_THAT(process, IsOk());
  absl::StatusOr<int> port =
      agentstream::testing::WaitForPortFile(dir + "/port", absl::Seconds(20));
  EXPECT_THAT(port, IsOk()) << (*process)->ReadLog();
  Running r;
  r.process = *std::move(process);
  r.stub = agentstream::v1::Specialist::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  return r;
}

TEST(SyntheticBinaryTest, StreamsNUpdatesOverGrpc) {
  Running r = StartBinary({"--count", "3", "--size", "16", "--rate", "0"});
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  AnalyzeRequest req = WithOptions({{"count", 40}, {"size", 32}});
  req.set_request_id("req_bin");
  auto reader = r.stub->Analyze(&ctx, req);
  Update u;
  int partials = 0;
  int64_t last_emitted = 0;
  while (reader->Read(&u)) {
    EXPECT_GT(u.emitted_at(), 0);
    EXPECT_GE(u.emitted_at(), last_emitted);
    last_emitted = u.emitted_at();
    EXPECT_EQ(u.specialist(), "Synthetic");
    EXPECT_EQ(u.request_id(), "req_bin");
    if (u.has_partial_result()) {
      ++partials;
      EXPECT_EQ(u.partial_result()
                    .result()
                    .fields()
                    .at("payload")
                    .string_value()
                    .size(),
                32u);
    }
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(partials, 40);
  const absl::Time now = absl::Now();
  EXPECT_LT(absl::FromUnixNanos(last_emitted), now + absl::Seconds(1));
  EXPECT_GT(absl::FromUnixNanos(last_emitted), now - absl::Seconds(60));

  grpc::ClientContext bad;
  bad.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto bad_reader = r.stub->Analyze(&bad, AnalyzeRequest());
  while (bad_reader->Read(&u)) {
  }
  EXPECT_EQ(bad_reader->Finish().error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  r.process->Signal(SIGTERM);
  EXPECT_THAT(r.process->Wait(absl::Seconds(10)), IsOkAndHolds(0));
}

TEST(SyntheticBinaryTest, SigtermEndsALongStreamCleanlyAfterTheDrain) {
  Running r = StartBinary({"--drain-timeout-ms", "200"});
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader =
      r.stub->Analyze(&ctx, WithOptions({{"count", 100000}, {"rate", 20}}));
  Update u;
  ASSERT_TRUE(reader->Read(&u));
  r.process->Signal(SIGTERM);
  int after = 0;
  while (reader->Read(&u)) ++after;
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_LT(after, 100);
  EXPECT_THAT(r.process->Wait(absl::Seconds(10)), IsOkAndHolds(0));
  EXPECT_THAT(r.process->ReadLog(), HasSubstr("analysis cancelled"));
}

}  // namespace
}  // namespace agentstream::specialists
