// The fixture of the run engine's tests: a RunManager over in-memory fake
// specialists (DataAnalyst, RiskAnalyst, ComplianceExpert, Synthetic) and a
// fake clock; and a LogFollower sink that records what it is sent.
#ifndef AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_RUN_FIXTURE_H_
#define AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_RUN_FIXTURE_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "common/update_json.h"
#include "gtest/gtest.h"
#include "orchestrator/run.h"
#include "orchestrator/run_log.h"
#include "orchestrator/run_manager.h"
#include "orchestrator/specialist_registry.h"
#include "tests/unit/orchestrator/fake_specialist.h"

namespace agentstream::orchestrator::testing {

inline constexpr absl::Duration kWait = absl::Seconds(5);
// testing::Test has a Run() of its own.
using RunPtr = std::shared_ptr<::agentstream::orchestrator::Run>;
using agentstream::v1::Update;

// Records what a LogFollower sends (the seqs) and how it ended. A write
// completes only when the test says: TakePending() then the follower's
// OnWriteDone(), as the transport would (DrainAll does both until nothing
// is in flight).
class FollowerSink final : public LogFollower::Sink {
 public:
  void Send(absl::Span<const std::shared_ptr<const LogEntry>> entries,
            bool /*more_follows*/) override {
    absl::MutexLock lock(&mu_);
    for (const auto& entry : entries) seqs_.push_back(entry->seq);
    pending_ = true;
  }
  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    status_ = status;
  }
  // Takes the write in flight, if any, for the caller to complete.
  bool TakePending() {
    absl::MutexLock lock(&mu_);
    bool p = pending_;
    pending_ = false;
    return p;
  }
  std::vector<uint64_t> seqs() {
    absl::MutexLock lock(&mu_);
    return seqs_;
  }
  bool ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }
  absl::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> seqs_ ABSL_GUARDED_BY(mu_);
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// Completes `follower`'s writes to `sink` until none is in flight.
inline void DrainAll(FollowerSink& sink, LogFollower& follower) {
  while (sink.TakePending()) follower.OnWriteDone(true);
}

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override { Configure(RunManagerOptions()); }
  // Runs a test left going hold their specialist calls (and the calls their
  // runs): end them as an orchestrator shutting down does.
  void TearDown() override {
    if (manager_ != nullptr) manager_->CancelAll("test over");
  }

  void Configure(RunManagerOptions options) {
    fakes_.clear();
    for (auto card :
         {MakeCard("DataAnalyst", {"transactions", "totals"}),
          MakeCard("RiskAnalyst", {"risk"}),
          MakeCard("ComplianceExpert", {"aml", "compliance"}),
          MakeCard("Synthetic", {"synthetic"}, /*explicit_only=*/true)}) {
      fakes_[card.name()] =
          std::make_shared<FakeSpecialistClient>(card, "addr-" + card.name());
    }
    std::vector<SpecialistEndpoint> endpoints;
    for (const char* name :
         {"DataAnalyst", "RiskAnalyst", "ComplianceExpert", "Synthetic"}) {
      endpoints.push_back({name, std::string("addr-") + name});
    }
    manager_.reset();
    registry_ = std::make_unique<SpecialistRegistry>(
        endpoints,
        [this](const std::string& address) {
          return fakes_.at(address.substr(5));
        },
        SpecialistRegistry::Options());
    registry_->RefreshOnce(/*all=*/true);
    manager_ = std::make_unique<RunManager>(options, registry_.get(), &clock_,
                                            &metrics_);
  }

  // Configure() with the default options but a disconnect grace of `grace`.
  void ConfigureGrace(absl::Duration grace) {
    RunManagerOptions options;
    options.disconnect_grace = grace;
    Configure(options);
  }

  absl::StatusOr<RunPtr> StartRun(const std::string& message,
                                  std::vector<std::string> forced = {}) {
    agentstream::v1::RunRequest request;
    request.set_message(message);
    for (auto& f : forced) request.add_specialists(f);
    auto run = manager_->CreateRun(request, "");
    if (run.ok()) (*run)->Start();
    return run;
  }

  // `call` ends as a ComplianceExpert that found nothing does.
  static void FinishWithNoFindings(FakeAnalyzeCall& call) {
    call.Emit(PartialOf({{"findings", nlohmann::json::array()}}));
    call.Finish(absl::OkStatus());
  }

  // Moves the fake clock on by `by`, then sweeps as the sweeper does.
  void AdvanceAndSweep(absl::Duration by) {
    clock_.Advance(by);
    manager_->Sweep();
  }

  FakeSpecialistClient& fake(const std::string& name) { return *fakes_[name]; }
  std::shared_ptr<FakeAnalyzeCall> CallOf(const std::string& name,
                                          size_t i = 0) {
    return fakes_[name]->WaitForCall(i, kWait);
  }

  static std::vector<Update> LogOf(
      const ::agentstream::orchestrator::Run& run) {
    std::vector<Update> out;
    for (uint64_t seq = run.log()->first_seq() - 1;; ++seq) {
      RunLog::Next next = run.log()->ReadAfter(seq);
      if (next.entry == nullptr) break;
      out.push_back(next.entry->Parse());
    }
    return out;
  }

  // The first `error` update in `log`, or log.end().
  static std::vector<Update>::const_iterator FirstError(
      const std::vector<Update>& log) {
    return std::find_if(log.begin(), log.end(),
                        [](const Update& u) { return u.has_error(); });
  }

  // "type" or "type:Specialist" for each update.
  static std::vector<std::string> Kinds(const std::vector<Update>& updates) {
    std::vector<std::string> out;
    for (const Update& u : updates) {
      out.push_back(u.specialist().empty()
                        ? UpdateType(u)
                        : UpdateType(u) + ":" + u.specialist());
    }
    return out;
  }

  FakeClock clock_;
  OrchestratorMetrics metrics_;
  std::map<std::string, std::shared_ptr<FakeSpecialistClient>> fakes_;
  std::unique_ptr<SpecialistRegistry> registry_;
  std::unique_ptr<RunManager> manager_;
};

}  // namespace agentstream::orchestrator::testing

#endif  // AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_RUN_FIXTURE_H_
