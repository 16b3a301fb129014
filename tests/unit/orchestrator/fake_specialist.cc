#include "tests/unit/orchestrator/fake_specialist.h"

#include <utility>

#include "common/update_json.h"

namespace agentstream::orchestrator::testing {

using agentstream::v1::SpecialistCard;
using agentstream::v1::Update;

FakeAnalyzeCall::FakeAnalyzeCall(agentstream::v1::AnalyzeRequest request,
                                 std::shared_ptr<AnalyzeObserver> observer,
                                 bool finish_on_cancel)
    : request_(std::move(request)),
      finish_on_cancel_(finish_on_cancel),
      observer_(std::move(observer)) {}

void FakeAnalyzeCall::Emit(const Update& update) {
  // Held across the callback: one call's callbacks never overlap, as the
  // AnalyzeObserver contract promises.
  absl::MutexLock lock(&mu_);
  if (observer_ != nullptr) observer_->OnUpdate(update);  // A copy.
}

void FakeAnalyzeCall::Finish(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (observer_ == nullptr) return;
  std::shared_ptr<AnalyzeObserver> observer = std::move(observer_);
  observer_ = nullptr;
  observer->OnDone(status);
}

void FakeAnalyzeCall::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  if (finish_on_cancel_) Finish(absl::CancelledError("cancelled by client"));
}

bool FakeAnalyzeCall::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool FakeAnalyzeCall::finished() const {
  absl::MutexLock lock(&mu_);
  return observer_ == nullptr;
}

bool FakeAnalyzeCall::WaitCancelled(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto is_cancelled = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return cancelled_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&is_cancelled), timeout);
}

namespace {

class FakeCallHandle final : public AnalyzeCall {
 public:
  explicit FakeCallHandle(std::shared_ptr<FakeAnalyzeCall> call)
      : call_(std::move(call)) {}
  void Cancel() override { call_->Cancel(); }

 private:
  const std::shared_ptr<FakeAnalyzeCall> call_;
};

}  // namespace

FakeSpecialistClient::FakeSpecialistClient(SpecialistCard card,
                                           std::string address)
    : card_(std::move(card)), address_(std::move(address)) {}

void FakeSpecialistClient::SetDescribeStatus(absl::Status status) {
  absl::MutexLock lock(&mu_);
  describe_status_ = std::move(status);
}

void FakeSpecialistClient::SetOnAnalyze(
    std::function<void(std::shared_ptr<FakeAnalyzeCall>)> f) {
  absl::MutexLock lock(&mu_);
  on_analyze_ = std::move(f);
}

void FakeSpecialistClient::set_finish_on_cancel(bool v) {
  absl::MutexLock lock(&mu_);
  finish_on_cancel_ = v;
}

size_t FakeSpecialistClient::call_count() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

std::shared_ptr<FakeAnalyzeCall> FakeSpecialistClient::WaitForCall(
    size_t index, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto ready = [this, index]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return calls_.size() > index;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return nullptr;
  return calls_[index];
}

absl::StatusOr<SpecialistCard> FakeSpecialistClient::Describe(
    absl::Duration /*timeout*/) {
  absl::MutexLock lock(&mu_);
  if (!describe_status_.ok()) return describe_status_;
  return card_;
}

std::unique_ptr<AnalyzeCall> FakeSpecialistClient::Analyze(
    const agentstream::v1::AnalyzeRequest& request,
    std::shared_ptr<AnalyzeObserver> observer) {
  std::function<void(std::shared_ptr<FakeAnalyzeCall>)> on_analyze;
  std::shared_ptr<FakeAnalyzeCall> call;
  {
    absl::MutexLock lock(&mu_);
    call = std::make_shared<FakeAnalyzeCall>(request, std::move(observer),
                                             finish_on_cancel_);
    calls_.push_back(call);
    on_analyze = on_analyze_;
  }
  if (on_analyze) on_analyze(call);
  return std::make_unique<FakeCallHandle>(call);
}

SpecialistCard MakeCard(const std::string& name,
                        std::vector<std::string> keywords, bool explicit_only) {
  SpecialistCard card;
  card.set_name(name);
  card.set_display_name(name + " (display)");
  card.set_icon("*");
  for (std::string& k : keywords) card.add_keywords(std::move(k));
  card.set_explicit_only(explicit_only);
  card.set_instance(name + "-1");
  return card;
}

Update ProgressOf(uint32_t progress, const std::string& action) {
  Update u;
  u.mutable_progress()->set_progress(progress);
  u.mutable_progress()->set_current_action(action);
  return u;
}

Update PartialOf(const nlohmann::json& result) {
  Update u;
  *u.mutable_partial_result()->mutable_result() = JsonToStruct(result);
  return u;
}

}  // namespace agentstream::orchestrator::testing
