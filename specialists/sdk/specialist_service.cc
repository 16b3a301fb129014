#include "specialists/sdk/specialist_service.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "specialists/sdk/analyze_session.h"
#include "specialists/sdk/specialist_call.h"

namespace agentstream::specialists {

using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;

absl::Status ValidateAnalyzeRequest(const AnalyzeRequest& request) {
  if (request.task().empty() && request.question().empty()) {
    return absl::InvalidArgumentError("both question and task are empty");
  }
  if (request.task().size() > kMaxRequestTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("task is ", request.task().size(), " bytes; the limit is ",
                     kMaxRequestTextBytes));
  }
  if (request.question().size() > kMaxRequestTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("question is ", request.question().size(),
                     " bytes; the limit is ", kMaxRequestTextBytes));
  }
  return absl::OkStatus();
}

SpecialistService::SpecialistService(Specialist* specialist,
                                     std::string instance, const Clock* clock,
                                     SpecialistMetrics* metrics,
                                     AnalysisLimits limits)
    : specialist_(specialist),
      async_(dynamic_cast<AsyncSpecialist*>(specialist)),
      clock_(clock),
      metrics_(metrics),
      limits_(limits),
      card_(specialist->Card()),
      origin_(std::make_shared<const UpdateSink::Origin>(
          UpdateSink::Origin{card_.name(), std::move(instance)})),
      pool_(limits.worker_threads, limits.max_waiting_analyses) {}

SpecialistService::~SpecialistService() = default;

void SpecialistService::SetInstance(const std::string& instance) {
  auto origin = std::make_shared<const UpdateSink::Origin>(
      UpdateSink::Origin{card_.name(), instance});
  absl::MutexLock lock(&mu_);
  origin_ = std::move(origin);
}

grpc::ServerUnaryReactor* SpecialistService::Describe(
    grpc::CallbackServerContext* context,
    const agentstream::v1::DescribeRequest* /*request*/, SpecialistCard* card) {
  *card = card_;
  {
    absl::MutexLock lock(&mu_);
    card->set_instance(origin_->instance);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<Update>* SpecialistService::Analyze(
    grpc::CallbackServerContext* context, const AnalyzeRequest* request) {
  return StartCall<Update>(context, request);
}

grpc::ServerWriteReactor<UpdateBatch>* SpecialistService::AnalyzeBatched(
    grpc::CallbackServerContext* context, const AnalyzeRequest* request) {
  return StartCall<UpdateBatch>(context, request);
}

grpc::ServerBidiReactor<agentstream::v1::AnalyzeSessionRequest,
                        agentstream::v1::SessionMessage>*
SpecialistService::AnalyzeSession(grpc::CallbackServerContext* context) {
  return StartAnalyzeSession(this, context);
}

void SpecialistService::Unregister(int64_t id) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(id);
}

void SpecialistService::StartDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool SpecialistService::WaitUntilIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_.empty();
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void SpecialistService::CancelAll(const std::string& reason) {
  std::vector<Call*> calls;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, call] : in_flight_) {
      call->Ref();
      calls.push_back(call);
    }
  }
  // Outside mu_: ending a call unregisters it.
  for (Call* call : calls) {
    call->Cancel(reason);
    call->Unref();
  }
}

int SpecialistService::active() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(in_flight_.size());
}

}  // namespace agentstream::specialists
