// Test-only fakes of the orchestrator's SpecialistClient: scripted in memory,
// driven by the test (Emit/Finish) or by a thread the test starts.
#ifndef AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_FAKE_SPECIALIST_H_
#define AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_FAKE_SPECIALIST_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/specialist.pb.h"
#include "agentstream/v1/update.pb.h"
#include "nlohmann/json.hpp"
#include "orchestrator/specialist_client.h"

namespace agentstream::orchestrator::testing {

// One Analyze call made to a fake. Thread-safe; Emit/Finish from any thread.
class FakeAnalyzeCall final {
 public:
  FakeAnalyzeCall(agentstream::v1::AnalyzeRequest request,
                  std::shared_ptr<AnalyzeObserver> observer,
                  bool finish_on_cancel);

  const agentstream::v1::AnalyzeRequest& request() const { return request_; }
  // Delivers an update; ignored after Finish.
  void Emit(const agentstream::v1::Update& update);
  // Delivers OnDone once; later calls are ignored.
  void Finish(const absl::Status& status);
  void Cancel();

  bool cancelled() const;
  bool finished() const;
  bool WaitCancelled(absl::Duration timeout) const;

 private:
  const agentstream::v1::AnalyzeRequest request_;
  const bool finish_on_cancel_;
  mutable absl::Mutex mu_;
  std::shared_ptr<AnalyzeObserver> observer_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

class FakeSpecialistClient final : public SpecialistClient {
 public:
  explicit FakeSpecialistClient(agentstream::v1::SpecialistCard card,
                                std::string address = "fake:0");

  // Describe fails with `status` while it is not OK.
  void SetDescribeStatus(absl::Status status);
  // Called synchronously inside Analyze (e.g. to fail at once or start a
  // thread that emits).
  void SetOnAnalyze(std::function<void(std::shared_ptr<FakeAnalyzeCall>)> f);
  // Whether Cancel() delivers OnDone(CANCELLED) like gRPC does (default).
  void set_finish_on_cancel(bool v);

  size_t call_count() const;
  // The index-th call (0-based), waiting up to `timeout`; null on timeout.
  std::shared_ptr<FakeAnalyzeCall> WaitForCall(size_t index,
                                               absl::Duration timeout) const;

  // SpecialistClient methods
  absl::StatusOr<agentstream::v1::SpecialistCard> Describe(
      absl::Duration timeout) override;
  std::unique_ptr<AnalyzeCall> Analyze(
      const agentstream::v1::AnalyzeRequest& request,
      std::shared_ptr<AnalyzeObserver> observer) override;
  std::string address() const override { return address_; }

 private:
  const agentstream::v1::SpecialistCard card_;
  const std::string address_;
  mutable absl::Mutex mu_;
  absl::Status describe_status_ ABSL_GUARDED_BY(mu_);
  bool finish_on_cancel_ ABSL_GUARDED_BY(mu_) = true;
  std::function<void(std::shared_ptr<FakeAnalyzeCall>)> on_analyze_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<FakeAnalyzeCall>> calls_ ABSL_GUARDED_BY(mu_);
};

// Card and update builders.
agentstream::v1::SpecialistCard MakeCard(const std::string& name,
                                         std::vector<std::string> keywords,
                                         bool explicit_only = false);
agentstream::v1::Update ProgressOf(uint32_t progress,
                                   const std::string& action = "working");
agentstream::v1::Update PartialOf(const nlohmann::json& result);

}  // namespace agentstream::orchestrator::testing

#endif  // AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_FAKE_SPECIALIST_H_
