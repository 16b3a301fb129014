#include "specialists/sdk/specialist_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/log.h"

namespace agentstream::specialists {
namespace {

constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(20);

std::string RequestIdOf(const grpc::ServerContext& context,
                        const AnalyzeRequest& request) {
  if (!request.request_id().empty()) return request.request_id();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("x-request-id");
  if (it != metadata.end())
    return std::string(it->second.data(), it->second.size());
  return "";
}

const char* OutcomeWord(AnalysisOutcome outcome) {
  switch (outcome) {
    case AnalysisOutcome::kOk:
      return "ok";
    case AnalysisOutcome::kCancelled:
      return "cancelled";
    case AnalysisOutcome::kFailed:
      return "failed";
  }
  return "?";
}

}  // namespace

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
                                     SpecialistMetrics* metrics)
    : specialist_(specialist),
      clock_(clock),
      metrics_(metrics),
      card_(specialist->Card()),
      instance_(std::move(instance)),
      watcher_([this] { WatchCancellations(); }) {}

void SpecialistService::SetInstance(const std::string& instance) {
  absl::MutexLock lock(&mu_);
  instance_ = instance;
}

SpecialistService::~SpecialistService() {
  stop_watcher_.Notify();
  watcher_.join();
}

grpc::Status SpecialistService::Describe(
    grpc::ServerContext* /*context*/,
    const agentstream::v1::DescribeRequest* /*request*/, SpecialistCard* card) {
  *card = card_;
  absl::MutexLock lock(&mu_);
  card->set_instance(instance_);
  return grpc::Status::OK;
}

grpc::Status SpecialistService::Analyze(
    grpc::ServerContext* context, const AnalyzeRequest* request,
    grpc::ServerWriter<agentstream::v1::Update>* writer) {
  if (absl::Status valid = ValidateAnalyzeRequest(*request); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  const std::string request_id = RequestIdOf(*context, *request);
  CancelToken token;
  int64_t id;
  std::string instance;
  {
    absl::MutexLock lock(&mu_);
    instance = instance_;
    if (draining_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "specialist is shutting down");
    }
    id = next_id_++;
    in_flight_[id] = InFlight{context, &token};
  }
  metrics_->AnalysisStarted();
  const absl::Time start = absl::Now();
  AS_LOG(INFO) << "analysis started request_id=" << request_id
               << " specialist=" << card_.name()
               << " task_bytes=" << request->task().size()
               << " question_bytes=" << request->question().size();

  UpdateSink sink(UpdateSink::Stamp{request_id, card_.name(), instance}, clock_,
                  [&](const agentstream::v1::Update& update) {
                    if (token.cancelled() || !writer->Write(update)) {
                      token.Cancel("stream closed");
                      return false;
                    }
                    metrics_->UpdateSent();
                    return true;
                  });

  absl::Status status = specialist_->Analyze(*request, sink, token);

  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(id);
  }
  const absl::Time end = absl::Now();
  AnalysisOutcome outcome =
      status.ok() ? AnalysisOutcome::kOk : AnalysisOutcome::kFailed;
  grpc::Status result = ToGrpcStatus(status);
  if (token.cancelled()) {
    outcome = AnalysisOutcome::kCancelled;
    const int64_t stop_ms =
        absl::ToInt64Milliseconds(end - token.requested_at());
    metrics_->CancelStopped(stop_ms);
    AS_LOG(INFO) << "analysis cancelled request_id=" << request_id
                 << " reason=\"" << token.reason() << "\" stop_ms=" << stop_ms;
    result = token.reason() == "shutdown"
                 ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "specialist shut down before the analysis "
                                "finished")
                 : grpc::Status(
                       grpc::StatusCode::CANCELLED,
                       absl::StrCat("analysis cancelled: ", token.reason()));
  }
  metrics_->AnalysisEnded(outcome);
  AS_LOG(INFO) << "analysis ended request_id=" << request_id
               << " outcome=" << OutcomeWord(outcome)
               << " duration_ms=" << absl::ToInt64Milliseconds(end - start)
               << " updates=" << sink.updates_sent()
               << (status.ok()
                       ? ""
                       : absl::StrCat(" error=\"", status.ToString(), "\""));
  return result;
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
  absl::MutexLock lock(&mu_);
  for (auto& [id, call] : in_flight_) call.token->Cancel(reason);
}

int SpecialistService::active() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(in_flight_.size());
}

void SpecialistService::WatchCancellations() {
  while (!stop_watcher_.WaitForNotificationWithTimeout(kCancelPollInterval)) {
    absl::MutexLock lock(&mu_);
    for (auto& [id, call] : in_flight_) {
      if (!call.token->cancelled() && call.context->IsCancelled()) {
        call.token->Cancel("client cancelled");
      }
    }
  }
}

}  // namespace agentstream::specialists
