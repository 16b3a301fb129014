// Two orchestrator replicas sharing a real redis-server, as in
// replicas_test.cc, for what concerns the store itself (docs/SCALING.md):
// - the owner's disconnect grace counts a follower on the other replica;
// - a Redis restarted without its data gets the live runs written again;
// - the store keeps a run within the log's bounds and TTL, then its
//   tombstone, through either replica.
#include <string>

#include "tests/integration/replicas_fixture.h"

namespace agentstream::testing::replicas {
namespace {

using ::testing::HasSubstr;

// The owner's disconnect grace period counts followers on other replicas.
class ReplicasGraceTest : public ReplicasTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.redis = true;
    options.orchestrator_replicas = 2;
    options.extra_orchestrator_args = {
        absl::StrCat("--run-lease-ms=", kLeaseMs),
        absl::StrCat("--disconnect-grace-ms=", kGraceMs)};
    StartTopology(options);
  }
  static constexpr int kGraceMs = 1000;
};

TEST_F(ReplicasGraceTest, AFollowerOnTheOtherReplicaKeepsTheRunAlive) {
  auto owner = Stub(0);
  auto other = Stub(1);
  // The run's own stream on the owner: read a few updates, then gone.
  std::string id;
  {
    grpc::ClientContext context;
    auto reader = owner->Run(&context, SyntheticRun(10000, 100));
    Update update;
    for (int i = 0; i < 10 && reader->Read(&update); ++i) {
      id = update.request_id();
    }
    context.TryCancel();
    (void)reader->Finish();
  }
  ASSERT_FALSE(id.empty());
  // Meanwhile followed through the other replica only.
  std::atomic<int> received{0};
  std::atomic<bool> stop{false};
  grpc::ClientContext attach_context;
  AttachRequest attach;
  attach.set_request_id(id);
  attach.set_after_seq(10);
  grpc::Status attach_status;
  std::thread follower([&] {
    auto reader = other->Attach(&attach_context, attach);
    Update update;
    while (reader->Read(&update)) ++received;
    attach_status = reader->Finish();
  });
  const JoinOnExit join_follower(follower);
  auto active = [&] {
    return SpecialistMetric(*topology_, "synthetic", "analyses_active");
  };
  // Three grace periods later the run still goes on for that follower.
  absl::SleepFor(absl::Milliseconds(3 * kGraceMs));
  EXPECT_EQ(active(), 1) << "cancelled although followed on the other replica";
  const int before = received.load();
  EXPECT_GT(before, 50);
  EXPECT_EQ(ReplicaMetric(0, "runs_cancelled_total{reason=\"grace\"}"), 0);
  // That follower gone too: cancelled within about the grace period.
  attach_context.TryCancel();
  follower.join();
  EXPECT_TRUE(WaitFor([&] { return active() == 0; },
                      absl::Milliseconds(kGraceMs + 3000)));
  EXPECT_EQ(ReplicaMetric(0, "runs_cancelled_total{reason=\"grace\"}"), 1);
}

// A Redis without persistence: restarted, it has lost every run.
class ReplicasVolatileRedisTest : public ReplicasTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.redis = true;
    options.redis_appendonly = false;
    options.orchestrator_replicas = 2;
    options.extra_orchestrator_args = {
        absl::StrCat("--run-lease-ms=", kLeaseMs)};
    StartTopology(options);
  }
};

TEST_F(ReplicasVolatileRedisTest, RunsAreWrittenAgainWhenRedisLostThem) {
  constexpr int kRuns = 4;
  Clients clients(topology_->gateway_port(), kRuns,
                  {{"count", 200}, {"size", 64}, {"rate", 50}}, "volatile-", 5);
  ASSERT_TRUE(
      WaitFor([&] { return clients.started() == kRuns; }, absl::Seconds(30)));
  ASSERT_TRUE(topology_->redis()->Restart().ok());
  clients.Join();
  const std::vector<Followed>& results = clients.results();
  for (int i = 0; i < kRuns; ++i) {
    SCOPED_TRACE(absl::StrCat("run ", i, " ", results[i].run_id));
    EXPECT_EQ(CheckCompleted(results[i]), "");
    // In the store again, whole, under its owner.
    EXPECT_THAT(OwnerOf(results[i].run_id),
                ::testing::AnyOf("orchestrator", "orchestrator#2"));
    const RawSseResult replay =
        ReplayRun(topology_->gateway_port(), results[i].run_id);
    EXPECT_EQ(CheckDenseRun(MessagesOf(replay), results[i].run_id), "");
  }
  EXPECT_EQ(SumOverReplicas("runs_lost_total"), 0);
  EXPECT_EQ(SumOverReplicas("runs_taken_over_total"), 0);
}

// The store keeps a run within the log's bounds and TTL, then its
// tombstone: as the in-memory log does, through either replica.
class ReplicasBoundsTest : public ReplicasTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.redis = true;
    options.orchestrator_replicas = 2;
    options.extra_orchestrator_args = {
        absl::StrCat("--run-lease-ms=", kLeaseMs), "--max-log-events=50",
        absl::StrCat("--log-ttl-ms=", kTtlMs)};
    StartTopology(options);
  }
  static constexpr int kTtlMs = 1500;

  int64_t Redis(const orchestrator::store::RedisArgv& argv) {
    auto address =
        orchestrator::store::ParseRedisUrl(topology_->redis()->url());
    auto c = orchestrator::store::RedisConnection::Connect(*address);
    if (!c.ok()) return -1;
    auto reply = (*c)->Command(argv);
    return reply.ok() ? reply->integer : -1;
  }
};

TEST_F(ReplicasBoundsTest, TheStoreKeepsTheLogsBoundsTtlAndTombstone) {
  auto owner = Stub(0);
  auto other = Stub(1);
  Read run = ReadAll([&](grpc::ClientContext* c) {
    // 100 updates/s: its own stream may fall 50 updates (half a second)
    // behind on a busy machine before the log's bound makes that a gap.
    return owner->Run(c, SyntheticRun(200, 100));
  });
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_EQ(CheckDense(run), "");
  const std::string id = run.request_id;
  const uint64_t last = run.updates.size();
  const std::string log_key = absl::StrCat("agentstream:{", id, "}:log");
  EXPECT_EQ(Redis({"XLEN", log_key}), 50) << "--max-log-events";

  AttachRequest attach;
  attach.set_request_id(id);
  Read from_start =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  EXPECT_EQ(from_start.status.error_code(), grpc::StatusCode::OUT_OF_RANGE)
      << from_start.status.error_message();
  EXPECT_THAT(from_start.status.error_message(), HasSubstr("gap"));
  attach.set_after_seq(last - 10);
  Read tail =
      ReadAll([&](grpc::ClientContext* c) { return other->Attach(c, attach); });
  EXPECT_TRUE(tail.status.ok());
  EXPECT_EQ(tail.updates.size(), 10u);

  // Past --log-ttl-ms: the log and meta are gone, the tombstone stays.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Redis({"EXISTS", log_key}) == 0;
      },
      absl::Milliseconds(kTtlMs + 5000)));
  EXPECT_EQ(Redis({"EXISTS", absl::StrCat("agentstream:{", id, "}:meta")}), 0);
  EXPECT_EQ(Redis({"EXISTS", absl::StrCat("agentstream:{", id, "}:end")}), 1);
  for (int replica = 0; replica < 2; ++replica) {
    SCOPED_TRACE(absl::StrCat("replica ", replica));
    auto stub = Stub(replica);
    attach.set_after_seq(last);
    Read at_end = ReadAll(
        [&](grpc::ClientContext* c) { return stub->Attach(c, attach); });
    EXPECT_TRUE(at_end.status.ok()) << at_end.status.error_message();
    EXPECT_TRUE(at_end.updates.empty());
    attach.set_after_seq(5);
    Read earlier = ReadAll(
        [&](grpc::ClientContext* c) { return stub->Attach(c, attach); });
    EXPECT_EQ(earlier.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  }
  // Through the gateway: a resume from the end is the 204 that stops an
  // EventSource.
  const RawSseResult after =
      RawSse(ResumeRequest(topology_->gateway_port(), RunStreamPath(id),
                           absl::StrCat(id, ":", last), absl::Seconds(10)));
  EXPECT_EQ(after.status, 204) << after.body;
}

}  // namespace
}  // namespace agentstream::testing::replicas
