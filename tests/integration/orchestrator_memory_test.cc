// The memory attack of issue 10 on the orchestrator itself (the real
// orchestrator and Synthetic binaries, gRPC on loopback, no gateway): runs of
// 1 MiB updates with on_disconnect=CONTINUE whose clients never read. The
// runs' memory stays within --max-total-log-bytes (the runs going on are
// trimmed, never cancelled), a new run still gets its share once they fill
// it and runs whole, and once they have ended a new run is admitted with
// their logs dropped for it. Prints the figures it measures.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"
#include "tests/testing/resumable_sse.h"

namespace agentstream::testing {
namespace {

using agentstream::v1::Update;
using ::testing::EndsWith;
using ::testing::StartsWith;

constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kTotalBytes = 96 * kMiB;
constexpr int64_t kPerRunBytes = 32 * kMiB;
// Attack runs, started 300 ms apart; each makes 20 updates of 1 MiB a second.
constexpr int kAttackRuns = 6;
// What the gauge may show beyond the bound: a sixteenth (relief frees down
// to 15/16 and, when it cannot, waits for another sixteenth), and per run
// going on, an update appended before the relief ran and updates its stuck
// follower still holds (run_manager.h).
constexpr int64_t kPerRunSlackBytes = 3 * kMiB;
// Stated bound on the orchestrator's resident memory growth: the bound plus
// what is transient per run (an update parsed, serialized and merged for the
// synthesis: a few MiB each) and the allocator's slack. Measured here: +123
// to +130 MiB (without the bound, these runs' logs alone would take 192 MiB).
constexpr int64_t kRssGrowthBoundKib = (kTotalBytes + 64 * kMiB) / 1024;

class OrchestratorMemoryTest : public TopologyTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.start_gateway = false;
    options.extra_orchestrator_args = {
        absl::StrCat("--max-total-log-bytes=", kTotalBytes),
        absl::StrCat("--max-log-bytes=", kPerRunBytes)};
    StartTopology(options);
    stub_ = agentstream::v1::Orchestrator::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", topology_->orchestrator_port()),
        grpc::InsecureChannelCredentials()));
  }

  // A Run whose client never reads.
  struct Stuck {
    std::string id;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<Update>> reader;
    bool admitted = false;
    grpc::Status refused;  // When not admitted.
  };

  // Starts run `id` of Synthetic updates of `size` bytes, `rate` a second,
  // `count` of them, on_disconnect CONTINUE. Admitted runs answer initial
  // metadata (x-request-id) at once; refused ones end with a status.
  Stuck StartRun(const std::string& id, int64_t count, int64_t size,
                 int64_t rate) {
    agentstream::v1::RunRequest request;
    request.set_request_id(id);
    request.set_message("synthetic load");
    request.add_specialists("Synthetic");
    request.set_on_disconnect(agentstream::v1::DISCONNECT_POLICY_CONTINUE);
    auto& fields = *request.mutable_options()->mutable_fields();
    fields["count"].set_number_value(static_cast<double>(count));
    fields["size"].set_number_value(static_cast<double>(size));
    fields["rate"].set_number_value(static_cast<double>(rate));
    Stuck run;
    run.id = id;
    run.context = std::make_unique<grpc::ClientContext>();
    run.context->set_deadline(
        absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    run.reader = stub_->Run(run.context.get(), request);
    run.reader->WaitForInitialMetadata();
    run.admitted =
        run.context->GetServerInitialMetadata().count("x-request-id") > 0;
    if (!run.admitted) run.refused = run.reader->Finish();
    return run;
  }

  std::unique_ptr<agentstream::v1::Orchestrator::Stub> stub_;
};

TEST_F(OrchestratorMemoryTest, ClientsThatNeverReadCannotTakeMoreThanTheBound) {
  Topology& t = *topology_;
  const int pid = t.process("orchestrator")->pid();
  const int64_t start_kib = RssKibOrFail(pid);
  std::atomic<bool> sampling{true};
  std::atomic<int64_t> max_kib{start_kib};
  std::atomic<int64_t> max_log_bytes{0};
  std::thread sampler([&] {
    while (sampling.load()) {
      max_kib = std::max(max_kib.load(), RssKibOrFail(pid));
      max_log_bytes =
          std::max(max_log_bytes.load(),
                   static_cast<int64_t>(OrchestratorMetric(t, "log_bytes")));
      absl::SleepFor(absl::Milliseconds(100));
    }
  });

  std::vector<Stuck> runs;
  int admitted = 0;
  for (int i = 0; i < kAttackRuns; ++i) {
    runs.push_back(
        StartRun(absl::StrCat("stuck-", i), 10'000'000, kMiB, /*rate=*/20));
    if (runs.back().admitted) ++admitted;
    absl::SleepFor(absl::Milliseconds(300));
  }
  // Every one is admitted: each gets its share of the bound.
  EXPECT_EQ(admitted, kAttackRuns);
  // Once the runs going on hold nearly all of the bound, a new run still
  // gets its share (their logs are cut for it) and runs whole: clients that
  // never read cannot lock others out.
  EXPECT_TRUE(WaitFor(
      [&] {
        return OrchestratorMetric(t, "log_bytes") > kTotalBytes - kPerRunBytes;
      },
      absl::Seconds(60)));
  Stuck late = StartRun("late", 10, 100, 0);
  ASSERT_TRUE(late.admitted) << late.refused.error_message();
  {
    std::vector<Update> updates;
    Update u;
    while (late.reader->Read(&u)) updates.push_back(u);
    EXPECT_TRUE(late.reader->Finish().ok());
    ASSERT_FALSE(updates.empty());
    for (size_t i = 0; i < updates.size(); ++i) {
      EXPECT_EQ(updates[i].seq(), i + 1);
    }
    EXPECT_EQ(updates.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  }
  // The runs keep producing for a while against the bound.
  absl::SleepFor(absl::Seconds(4));

  // None of them was cancelled for it.
  EXPECT_EQ(OrchestratorMetric(t, "runs_active"), admitted);
  EXPECT_EQ(OrchestratorMetric(t, "runs_cancelled_total{reason=\"request\"}"),
            0);
  const double refused =
      OrchestratorMetric(t, "runs_refused_total{reason=\"memory\"}");
  const double trimmed = OrchestratorMetric(t, "log_updates_trimmed_total");

  // They end; their logs make room for a new run, which runs whole.
  for (Stuck& run : runs) {
    if (!run.admitted) continue;
    grpc::ClientContext context;
    agentstream::v1::CancelRequest cancel;
    cancel.set_request_id(run.id);
    agentstream::v1::CancelResponse response;
    EXPECT_TRUE(stub_->Cancel(&context, cancel, &response).ok());
    EXPECT_TRUE(response.cancelled());
  }
  Stuck after = StartRun("after", 5, 100, 0);
  ASSERT_TRUE(after.admitted) << after.refused.error_message();
  std::vector<Update> updates;
  Update u;
  while (after.reader->Read(&u)) updates.push_back(u);
  EXPECT_TRUE(after.reader->Finish().ok());
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().complete().outcome(), agentstream::v1::OUTCOME_OK);
  EXPECT_GE(OrchestratorMetric(t, "logs_dropped_total"), 1);

  sampling = false;
  sampler.join();
  for (Stuck& run : runs) {
    if (run.admitted) run.context->TryCancel();
  }
  const int64_t growth_kib = max_kib.load() - start_kib;
  std::cout << "[ figures ] " << admitted << " of " << kAttackRuns
            << " stuck runs admitted, " << refused << " refused; " << trimmed
            << " updates trimmed; log_bytes max " << max_log_bytes.load() / kMiB
            << " MiB (bound " << kTotalBytes / kMiB
            << " MiB); orchestrator RSS " << start_kib / 1024 << " -> max "
            << max_kib.load() / 1024 << " MiB (+" << growth_kib / 1024
            << " MiB, stated bound +" << kRssGrowthBoundKib / 1024 << " MiB)"
            << std::endl;
  EXPECT_LE(max_log_bytes.load(),
            kTotalBytes + kTotalBytes / 16 + admitted * kPerRunSlackBytes);
  if (RssBoundsApply()) {
    EXPECT_LE(growth_kib, kRssGrowthBoundKib);
  }
}

}  // namespace
}  // namespace agentstream::testing
