// The RunLog's side of the run store (docs/SCALING.md): the commit gate,
// the store sink, updates appended as the store holds them, and a log that
// ends with an error.
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/run_log.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/run_fixture.h"

namespace agentstream::orchestrator::testing {
namespace {

using ::agentstream::testing::IsOk;
using ::testing::ElementsAre;

Update Progress(uint32_t p) {
  Update u;
  u.set_specialist("Synthetic");
  u.mutable_progress()->set_progress(p);
  return u;
}

class RecordingStoreSink final : public LogStoreSink {
 public:
  void OnAppended(const std::shared_ptr<const LogEntry>& entry) override {
    absl::MutexLock lock(&mu_);
    appended_.push_back(entry->seq);
  }
  void OnEnded(uint64_t last_seq) override {
    absl::MutexLock lock(&mu_);
    ended_at_ = last_seq;
  }
  std::vector<uint64_t> appended() {
    absl::MutexLock lock(&mu_);
    return appended_;
  }
  uint64_t ended_at() {
    absl::MutexLock lock(&mu_);
    return ended_at_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> appended_;
  uint64_t ended_at_ = 0;
};

TEST(RunStoreLogTest, AGatedLogShowsOnlyWhatTheStoreHas) {
  auto log = std::make_shared<RunLog>(100);
  log->EnableCommitGate();
  auto store = std::make_shared<RecordingStoreSink>();
  log->SetStoreSink(store);
  FollowerSink sink;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink);
  follower->Start();
  log->Append(Progress(1));
  log->Append(Progress(2));
  log->Append(Progress(3));
  log->Notify();
  DrainAll(sink, *follower);
  EXPECT_TRUE(sink.seqs().empty()) << "shown before the store had it";
  EXPECT_THAT(store->appended(), ElementsAre(1, 2, 3));
  EXPECT_EQ(log->last_seq(), 3u);
  EXPECT_EQ(log->visible_seq(), 0u);

  log->Commit(2);
  log->Notify();
  DrainAll(sink, *follower);
  EXPECT_THAT(sink.seqs(), ElementsAre(1, 2));

  // The end waits for the last update to be stored.
  log->End();
  EXPECT_EQ(store->ended_at(), 3u);
  log->Notify();
  DrainAll(sink, *follower);
  EXPECT_FALSE(sink.ended());
  log->Commit(99);  // Capped at the last seq.
  EXPECT_EQ(log->visible_seq(), 3u);
  log->Notify();
  DrainAll(sink, *follower);
  EXPECT_THAT(sink.seqs(), ElementsAre(1, 2, 3));
  EXPECT_TRUE(sink.ended());
  EXPECT_TRUE(sink.status().ok());
  follower->Stop();
}

TEST(RunStoreLogTest, ALogEndingWithAnErrorEndsItsFollowersWithIt) {
  auto log = std::make_shared<RunLog>(100);
  log->Append(Progress(1));
  FollowerSink sink;
  auto follower = std::make_shared<LogFollower>(log, 0, &sink);
  follower->Start();
  DrainAll(sink, *follower);
  log->End(absl::UnavailableError("run_moved: attach again"));
  log->Notify();
  DrainAll(sink, *follower);
  EXPECT_THAT(sink.seqs(), ElementsAre(1));
  ASSERT_TRUE(sink.ended());
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sink.status().message(), "run_moved: attach again");
  follower->Stop();
}

TEST(RunStoreLogTest, StoredUpdatesKeepTheirSeqAndBytes) {
  RunLog source(100);
  for (uint32_t p = 1; p <= 5; ++p) source.Append(Progress(p));
  std::vector<std::string> stored;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    stored.emplace_back(source.ReadAfter(seq - 1).entry->bytes());
  }
  RunLog mirror(100);
  // From seq 3 on: what came before is a gap for a follower that needs it.
  EXPECT_EQ(*mirror.AppendStored(stored[2]), 3u);
  EXPECT_EQ(mirror.first_seq(), 3u);
  EXPECT_TRUE(mirror.ReadAfter(1).gap);
  EXPECT_EQ(*mirror.AppendStored(stored[3]), 4u);
  // Again (a read that overlapped): ignored.
  EXPECT_EQ(*mirror.AppendStored(stored[3]), 0u);
  EXPECT_EQ(*mirror.AppendStored(stored[4]), 5u);
  EXPECT_EQ(mirror.last_seq(), 5u);
  for (uint64_t seq = 3; seq <= 5; ++seq) {
    RunLog::Next next = mirror.ReadAfter(seq - 1);
    ASSERT_NE(next.entry, nullptr);
    EXPECT_EQ(next.entry->bytes(), stored[seq - 1]);
    EXPECT_EQ(next.entry->specialist, "Synthetic");
    EXPECT_EQ(next.entry->kind, Update::kProgress);
    EXPECT_EQ(next.entry->batch_bytes(),
              source.ReadAfter(seq - 1).entry->batch_bytes());
  }
  EXPECT_FALSE(mirror.AppendStored("\xff\xff not an update").ok());
  Update no_seq = Progress(1);
  EXPECT_FALSE(mirror.AppendStored(no_seq.SerializeAsString()).ok());
}

// A run continued by another replica from what the store holds.
class TakeOverTest : public RunTest {
 protected:
  RunRecord RecordOf(const RunPtr& run) {
    RunRecord record;
    record.request_id = run->request_id();
    record.question = "risk and aml of ACC-1042";
    record.reasoning = "the plan";
    for (const auto& card : registry_->PlanningCards()) {
      if (card.name() == "RiskAnalyst" || card.name() == "ComplianceExpert") {
        record.participants.push_back({card, "task of " + card.name()});
      }
    }
    return record;
  }
  static std::vector<std::string> StoredOf(const RunPtr& run) {
    std::vector<std::string> out;
    for (uint64_t seq = 1; seq <= run->log()->last_seq(); ++seq) {
      out.emplace_back(run->log()->ReadAfter(seq - 1).entry->bytes());
    }
    return out;
  }
};

TEST_F(TakeOverTest,
       CompletedSpecialistsKeepTheirResultsTheOthersAreCalledAgain) {
  auto run = StartRun("risk and aml of ACC-1042");
  ASSERT_THAT(run, IsOk());
  auto risk = CallOf("RiskAnalyst");
  auto aml = CallOf("ComplianceExpert");
  risk->Emit(PartialOf({{"risk_score", 7.5}, {"confidence", 0.9}}));
  risk->Finish(absl::OkStatus());
  aml->Emit(ProgressOf(40));
  aml->Emit(PartialOf({{"findings", {{{"rule", "from the lost call"}}}}}));
  const std::vector<std::string> stored = StoredOf(*run);
  const uint64_t stored_last = stored.size();

  // Another replica: its own manager over the same specialists.
  OrchestratorMetrics other_metrics;
  RunManager other(RunManagerOptions(), registry_.get(), &clock_,
                   &other_metrics);
  ASSERT_TRUE(other
                  .OnTakeOver(RecordOf(*run), stored, 2,
                              "Orchestrator replica b took this run over")
                  .ok());
  RunPtr taken = other.Find((*run)->request_id());
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(fake("RiskAnalyst").call_count(), 1u) << "a finished one again";
  auto aml_again = CallOf("ComplianceExpert", 1);
  ASSERT_NE(aml_again, nullptr);
  aml_again->Emit(PartialOf({{"findings", nlohmann::json::array()}}));
  aml_again->Finish(absl::OkStatus());

  std::vector<Update> log = LogOf(*taken);
  ASSERT_GT(log.size(), stored_last + 2);
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].seq(), i + 1) << "seq continues, none used twice";
    if (i < stored_last) {
      EXPECT_EQ(taken->log()->ReadAfter(i).entry->bytes(), stored[i]);
    }
  }
  EXPECT_EQ(log[stored_last].status().status(),
            agentstream::v1::RUN_STATUS_DELEGATING);
  EXPECT_EQ(log[stored_last].status().message(),
            "Orchestrator replica b took this run over");
  EXPECT_THAT(log[stored_last + 1].thinking().thought(),
              ::testing::HasSubstr("Calling again: ComplianceExpert"));
  const auto& complete = log.back().complete();
  EXPECT_EQ(complete.outcome(), agentstream::v1::OUTCOME_OK);
  nlohmann::json result = StructToJson(complete.result());
  EXPECT_EQ(result["specialists"]["RiskAnalyst"]["risk_score"], 7.5);
  EXPECT_EQ(result.dump().find("from the lost call"), std::string::npos)
      << "only the new call's results count: " << result.dump();
  EXPECT_THAT(result["answer"].get<std::string>(),
              ::testing::HasSubstr("ComplianceExpert found no AML issues"));
  EXPECT_TRUE(taken->log()->ended());
  EXPECT_EQ(other_metrics.runs_active(), 0);
  (*run)->Abandon(absl::UnavailableError("run_moved"));
}

TEST_F(TakeOverTest, ARunWhoseCompleteIsStoredOnlyEnds) {
  auto run = StartRun("risk and aml of ACC-1042");
  ASSERT_THAT(run, IsOk());
  CallOf("RiskAnalyst")->Finish(absl::OkStatus());
  CallOf("ComplianceExpert")->Finish(absl::OkStatus());
  ASSERT_TRUE((*run)->finished());
  const std::vector<std::string> stored = StoredOf(*run);
  OrchestratorMetrics other_metrics;
  RunManager other(RunManagerOptions(), registry_.get(), &clock_,
                   &other_metrics);
  ASSERT_TRUE(other.OnTakeOver(RecordOf(*run), stored, 2, "note").ok());
  RunPtr taken = other.Find((*run)->request_id());
  ASSERT_NE(taken, nullptr);
  EXPECT_TRUE(taken->log()->ended());
  EXPECT_EQ(taken->log()->last_seq(), stored.size());
  EXPECT_EQ(fake("RiskAnalyst").call_count(), 1u);
}

TEST_F(TakeOverTest, AnUnknownSpecialistOrBadBytesRefuseTheTakeOver) {
  auto run = StartRun("risk and aml of ACC-1042");
  ASSERT_THAT(run, IsOk());
  RunRecord record = RecordOf(*run);
  OrchestratorMetrics other_metrics;
  RunManager other(RunManagerOptions(), registry_.get(), &clock_,
                   &other_metrics);
  RunRecord unknown = record;
  unknown.participants[0].card.set_name("NoSuchAnalyst");
  EXPECT_EQ(other.OnTakeOver(unknown, {}, 2, "note").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(other.OnTakeOver(record, {"\xff\xff"}, 2, "note").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(other.Find(record.request_id), nullptr);
  EXPECT_EQ(other.live_run_count(), 0u);
}

TEST(RunRecordTest, RoundTripsThroughJson) {
  RunRecord record;
  record.request_id = "r-1";
  record.principal = "alice";
  record.question = "risk of \"ACC-1042\"\n";
  record.reasoning = "because";
  record.on_disconnect = agentstream::v1::DISCONNECT_POLICY_CONTINUE;
  (*record.options.mutable_fields())["count"].set_number_value(3);
  agentstream::v1::SpecialistCard card;
  card.set_name("RiskAnalyst");
  card.add_keywords("risk");
  record.participants.push_back({card, "assess"});
  absl::StatusOr<RunRecord> back = DecodeRunRecord(EncodeRunRecord(record));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->request_id, "r-1");
  EXPECT_EQ(back->principal, "alice");
  EXPECT_EQ(back->question, record.question);
  EXPECT_EQ(back->on_disconnect, agentstream::v1::DISCONNECT_POLICY_CONTINUE);
  EXPECT_EQ(back->options.fields().at("count").number_value(), 3);
  ASSERT_EQ(back->participants.size(), 1u);
  EXPECT_EQ(back->participants[0].card.name(), "RiskAnalyst");
  EXPECT_EQ(back->participants[0].task, "assess");
  for (const char* bad : {"", "[]", "{}", "{\"request_id\":1}", "not json"}) {
    EXPECT_EQ(DecodeRunRecord(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace agentstream::orchestrator::testing
