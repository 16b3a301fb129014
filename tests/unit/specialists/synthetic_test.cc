// Synthetic: parameters, counts and pacing in-process, then the real binary
// over gRPC on loopback.
#include "specialists/synthetic/synthetic.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/update_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/sdk/specialist_server.h"
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

TEST(SyntheticTest, FaultOptionsAreValidatedAndNamed) {
  const SyntheticParams defaults;
  auto p =
      ResolveSyntheticParams(defaults, WithOptions({{"progress_every", 3},
                                                    {"start_delay_ms", "250"},
                                                    {"stall_after", 0},
                                                    {"fail_after", 7}}));
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->progress_every, 3);
  EXPECT_EQ(p->start_delay_ms, 250);
  EXPECT_EQ(p->stall_after, 0);
  EXPECT_EQ(p->fail_after, 7);
  // Flag defaults: off.
  p = ResolveSyntheticParams(defaults, WithOptions(nlohmann::json::object()));
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->progress_every, 0);
  EXPECT_EQ(p->start_delay_ms, 0);
  EXPECT_EQ(p->stall_after, -1);
  EXPECT_EQ(p->fail_after, -1);
  for (const char* key :
       {"progress_every", "start_delay_ms", "stall_after", "fail_after"}) {
    SCOPED_TRACE(key);
    EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{key, "soon"}})),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)));
    EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{key, true}})),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)));
    EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{key, 1.5}})),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat(key, " must be an integer"))));
    EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{key, -2}})),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)));
    EXPECT_THAT(ResolveSyntheticParams(defaults, WithOptions({{key, 1e12}})),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key)));
  }
  // 0 and -1 mean "off" only where documented.
  EXPECT_THAT(
      ResolveSyntheticParams(defaults, WithOptions({{"start_delay_ms", -1}})),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ResolveSyntheticParams(defaults, WithOptions({{"progress_every", -1}})),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ResolveSyntheticParams(defaults, WithOptions({{"stall_after", -1}})),
      IsOk());
  // Analyze reports the same error.
  Synthetic synthetic(defaults);
  CancelToken cancel;
  UpdateSink sink({"r", "Synthetic", "i"}, Clock::Real(),
                  [](const Update&) { return true; });
  EXPECT_THAT(
      synthetic.Analyze(WithOptions({{"fail_after", "x"}}), sink, cancel),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fail_after")));
  EXPECT_EQ(sink.updates_sent(), 0);
}

TEST(SyntheticTest, ProgressEveryKthPartialResult) {
  Synthetic synthetic({10, 4, 0});
  CancelToken cancel;
  std::vector<Update> got;
  UpdateSink sink({"r", "Synthetic", "i"}, Clock::Real(), [&](const Update& u) {
    got.push_back(u);
    return true;
  });
  ASSERT_THAT(
      synthetic.Analyze(WithOptions({{"progress_every", 3}}), sink, cancel),
      IsOk());
  // Progress before results 1, 4, 7 and 10: 14 updates in all.
  std::vector<int> before;
  for (size_t k = 0; k + 1 < got.size(); ++k) {
    if (got[k].has_progress()) {
      ASSERT_TRUE(got[k + 1].has_partial_result());
      before.push_back(static_cast<int>(got[k + 1]
                                            .partial_result()
                                            .result()
                                            .fields()
                                            .at("i")
                                            .number_value()));
    }
  }
  EXPECT_EQ(before, (std::vector<int>{1, 4, 7, 10}));
  EXPECT_EQ(got.size(), 14u);
  EXPECT_EQ(got[got.size() - 2].progress().progress(), 100u);

  // k = 1: one progress per result, even where the percentage stays.
  Synthetic many({1000, 1, 0});
  int progress = 0;
  int partials = 0;
  UpdateSink sink2({"r", "Synthetic", "i"}, Clock::Real(),
                   [&](const Update& u) {
                     progress += u.has_progress() ? 1 : 0;
                     partials += u.has_partial_result() ? 1 : 0;
                     return true;
                   });
  ASSERT_THAT(many.Analyze(WithOptions({{"progress_every", 1}}), sink2, cancel),
              IsOk());
  EXPECT_EQ(progress, 1000);
  EXPECT_EQ(partials, 1000);
}

TEST(SyntheticTest, FailAfterNPartialResults) {
  Synthetic synthetic({10, 4, 0});
  auto c = testing::RunAnalyze(synthetic, "go");
  ASSERT_THAT(c.status, IsOk());
  // Through the flag default, then overridden per request.
  Synthetic failing({10, 4, 0, 0, 0, -1, 4});
  c = testing::RunAnalyze(failing, "go");
  EXPECT_THAT(c.status,
              StatusIs(absl::StatusCode::kInternal, HasSubstr("fail_after")));
  EXPECT_EQ(c.partials.size(), 4u);
  CancelToken cancel;
  int partials = 0;
  UpdateSink sink({"r", "Synthetic", "i"}, Clock::Real(), [&](const Update& u) {
    partials += u.has_partial_result() ? 1 : 0;
    return true;
  });
  EXPECT_THAT(synthetic.Analyze(WithOptions({{"fail_after", 0}}), sink, cancel),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(partials, 0);
  // fail_after == count: every result, then the failure.
  EXPECT_THAT(
      synthetic.Analyze(WithOptions({{"fail_after", 10}}), sink, cancel),
      StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(partials, 10);
}

// Runs Analyze on its own thread; counts what it sends.
struct Background {
  CancelToken cancel;
  std::atomic<int> updates{0};
  std::atomic<int> partials{0};
  UpdateSink sink{
      {"r", "Synthetic", "i"}, Clock::Real(), [this](const Update& u) {
        updates.fetch_add(1);
        if (u.has_partial_result()) partials.fetch_add(1);
        return true;
      }};
  absl::Status status;
  absl::Time returned;
  std::thread thread;

  void Start(Synthetic& synthetic, AnalyzeRequest request) {
    thread = std::thread([this, &synthetic, request = std::move(request)] {
      status = synthetic.Analyze(request, sink, cancel);
      returned = absl::Now();
    });
  }
  // Waits (bounded) until `n` partial results are out.
  bool WaitForPartials(int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (partials.load() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return partials.load() >= n;
  }
};

TEST(SyntheticTest, StartDelayIsCancellable) {
  Synthetic synthetic({5, 4, 0});
  // A short delay: the first update comes after it.
  {
    CancelToken cancel;
    const absl::Time start = absl::Now();
    absl::Time first = absl::InfinitePast();
    UpdateSink sink({"r", "Synthetic", "i"}, Clock::Real(), [&](const Update&) {
      if (first == absl::InfinitePast()) first = absl::Now();
      return true;
    });
    ASSERT_THAT(
        synthetic.Analyze(WithOptions({{"start_delay_ms", 150}}), sink, cancel),
        IsOk());
    EXPECT_GE(first - start, absl::Milliseconds(150));
    EXPECT_EQ(sink.updates_sent(), 10);
  }
  // A long one, cancelled midway: nothing sent, stops at once.
  Background bg;
  bg.Start(synthetic, WithOptions({{"start_delay_ms", 60000}}));
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_EQ(bg.updates.load(), 0);
  bg.cancel.Cancel("test");
  bg.thread.join();
  EXPECT_THAT(bg.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(bg.returned - bg.cancel.requested_at(), absl::Milliseconds(100));
  EXPECT_EQ(bg.updates.load(), 0);
}

TEST(SyntheticTest, StallAfterWaitsUntilCancelled) {
  Synthetic synthetic({100, 4, 0});
  Background bg;
  bg.Start(synthetic, WithOptions({{"stall_after", 3}}));
  ASSERT_TRUE(bg.WaitForPartials(3));
  const int updates = bg.updates.load();
  absl::SleepFor(absl::Milliseconds(200));
  // Stalled: nothing more, not finished.
  EXPECT_EQ(bg.updates.load(), updates);
  EXPECT_EQ(bg.partials.load(), 3);
  bg.cancel.Cancel("test");
  bg.thread.join();
  EXPECT_THAT(bg.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(bg.returned - bg.cancel.requested_at(), absl::Milliseconds(100));
  EXPECT_EQ(bg.partials.load(), 3);

  // stall_after == count: every result, then never finishes.
  Background all;
  all.Start(synthetic, WithOptions({{"count", 5}, {"stall_after", 5}}));
  ASSERT_TRUE(all.WaitForPartials(5));
  absl::SleepFor(absl::Milliseconds(100));
  all.cancel.Cancel("test");
  all.thread.join();
  EXPECT_THAT(all.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(all.partials.load(), 5);
}

// The SDK's host in-process: a delayed or stalled analysis has ended within
// 100 ms of the client cancelling (and within 100 ms of its token tripping,
// the SDK's own stop-time metric), and every update carries this replica's
// instance.
TEST(SyntheticServerTest, ClientCancelStopsDelayAndStallWithin100ms) {
  ServerOptions options;
  options.port = 0;
  auto server = SpecialistServer::Start(
      std::make_unique<Synthetic>(SyntheticParams{50, 8, 0}), options);
  ASSERT_THAT(server, IsOk());
  auto stub = agentstream::v1::Specialist::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                          grpc::InsecureChannelCredentials()));
  const std::string instance = (*server)->instance();
  EXPECT_THAT(instance, HasSubstr(absl::StrCat(":", (*server)->port())));

  int cancelled = 0;
  for (const nlohmann::json& opts :
       {nlohmann::json{{"start_delay_ms", 60000}},
        nlohmann::json{{"stall_after", 2}, {"progress_every", 1}}}) {
    SCOPED_TRACE(opts.dump());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    AnalyzeRequest req = WithOptions(opts);
    auto reader = stub->Analyze(&ctx, req);
    Update u;
    int partials = 0;
    if (opts.contains("stall_after")) {
      while (partials < 2 && reader->Read(&u)) {
        EXPECT_EQ(u.instance(), instance);
        partials += u.has_partial_result() ? 1 : 0;
      }
      ASSERT_EQ(partials, 2);
    }
    absl::SleepFor(absl::Milliseconds(200));  // Delayed or stalled.
    // Timed from the client's cancel to the analysis seen ended (the
    // server's counters, read every 1 ms).
    const absl::Time cancelled_at = absl::Now();
    ctx.TryCancel();
    ++cancelled;
    const absl::Time deadline = cancelled_at + absl::Seconds(5);
    while ((*server)->metrics().completed(AnalysisOutcome::kCancelled) <
               cancelled &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    const absl::Duration stopped_after = absl::Now() - cancelled_at;
    while (reader->Read(&u)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_EQ((*server)->metrics().completed(AnalysisOutcome::kCancelled),
              cancelled);
    EXPECT_LT(stopped_after, absl::Milliseconds(100));
    // And the SDK's own figure (its token tripping to Analyze returning).
    EXPECT_GE((*server)->metrics().last_cancel_stop_ms(), 0);
    EXPECT_LT((*server)->metrics().last_cancel_stop_ms(), 100);
  }
  EXPECT_EQ((*server)->metrics().active(), 0);

  // fail_after over gRPC: INTERNAL after the results, each stamped.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stub->Analyze(&ctx, WithOptions({{"fail_after", 3}}));
  Update u;
  int partials = 0;
  while (reader->Read(&u)) {
    EXPECT_EQ(u.instance(), instance);
    partials += u.has_partial_result() ? 1 : 0;
  }
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("fail_after"));
  EXPECT_EQ(partials, 3);
}

struct Running {
  // Its port file and log; removed after the process has stopped.
  agentstream::testing::ScopedTempDir dir;
  std::unique_ptr<Subprocess> process;
  int port = 0;
  std::unique_ptr<agentstream::v1::Specialist::Stub> stub;
};

// The synthetic binary, listening; an error (with its log) if it does not
// start.
absl::StatusOr<Running> StartBinary(const std::vector<std::string>& extra,
                                    const std::vector<std::string>& env = {}) {
  absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("synthetic");
  if (!dir.ok()) return dir.status();
  std::vector<std::string> args = {"--port", "0", "--port-file",
                                   dir->path() + "/port"};
  args.insert(args.end(), extra.begin(), extra.end());
  Subprocess::Options options;
  options.binary = "synthetic";
  options.args = args;
  options.log_path = dir->path() + "/log";
  options.env = env;
  auto process = Subprocess::Start(std::move(options));
  if (!process.ok()) return process.status();
  absl::StatusOr<int> port = agentstream::testing::WaitForPortFile(
      dir->path() + "/port", absl::Seconds(20));
  if (!port.ok()) {
    return absl::Status(
        port.status().code(),
        absl::StrCat(port.status().message(), "\n", (*process)->ReadLog()));
  }
  Running r;
  r.dir = *std::move(dir);
  r.process = *std::move(process);
  r.port = *port;
  r.stub = agentstream::v1::Specialist::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  return r;
}

TEST(SyntheticBinaryTest, StreamsNUpdatesOverGrpc) {
  absl::StatusOr<Running> started =
      StartBinary({"--count", "3", "--size", "16", "--rate", "0"});
  ASSERT_THAT(started, IsOk());
  Running& r = *started;
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
    // hostname:port of this replica, on every update.
    EXPECT_THAT(u.instance(), ::testing::EndsWith(absl::StrCat(":", r.port)));
    EXPECT_GT(u.instance().size(), absl::StrCat(":", r.port).size());
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

TEST(SyntheticBinaryTest, FaultFlagsWithEnvironmentDefaults) {
  {
    const absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
        agentstream::testing::ScopedTempDir::Make("synthetic");
    ASSERT_THAT(dir, IsOk());
    Subprocess::Options options;
    options.binary = "synthetic";
    options.args = {"--help"};
    options.log_path = dir->path() + "/log";
    auto help = Subprocess::Start(std::move(options));
    ASSERT_THAT(help, IsOk());
    EXPECT_THAT((*help)->Wait(absl::Seconds(10)), IsOkAndHolds(0));
    const std::string text = (*help)->ReadLog();
    for (const char* flag :
         {"--progress-every", "--start-delay-ms", "--stall-after",
          "--fail-after", "AGENTSTREAM_FAIL_AFTER"}) {
      EXPECT_THAT(text, HasSubstr(flag));
    }
  }
  // --fail-after from the environment, --progress-every from the command line.
  absl::StatusOr<Running> started =
      StartBinary({"--count", "10", "--rate", "0", "--progress-every", "5"},
                  {"AGENTSTREAM_FAIL_AFTER=6"});
  ASSERT_THAT(started, IsOk());
  Running& r = *started;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = r.stub->Analyze(&ctx, WithOptions({{"size", 1}}));
  Update u;
  int partials = 0;
  int progress = 0;
  while (reader->Read(&u)) {
    partials += u.has_partial_result() ? 1 : 0;
    progress += u.has_progress() ? 1 : 0;
  }
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(partials, 6);
  EXPECT_EQ(progress, 2);  // Before results 1 and 6.

  // A request option overrides the flag; a bad one is INVALID_ARGUMENT.
  grpc::ClientContext ok_ctx;
  ok_ctx.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(20));
  auto ok_reader = r.stub->Analyze(&ok_ctx, WithOptions({{"fail_after", -1}}));
  partials = 0;
  while (ok_reader->Read(&u)) partials += u.has_partial_result() ? 1 : 0;
  EXPECT_TRUE(ok_reader->Finish().ok());
  EXPECT_EQ(partials, 10);
  grpc::ClientContext bad_ctx;
  bad_ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  auto bad = r.stub->Analyze(&bad_ctx, WithOptions({{"stall_after", "never"}}));
  while (bad->Read(&u)) {
  }
  const grpc::Status bad_status = bad->Finish();
  EXPECT_EQ(bad_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad_status.error_message(), HasSubstr("stall_after"));
}

TEST(SyntheticBinaryTest, SigtermEndsALongStreamCleanlyAfterTheDrain) {
  absl::StatusOr<Running> started = StartBinary({"--drain-timeout-ms", "200"});
  ASSERT_THAT(started, IsOk());
  Running& r = *started;
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
