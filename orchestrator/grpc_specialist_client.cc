#include "orchestrator/grpc_specialist_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_callback.h>

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::AnalyzeRequest;
using agentstream::v1::Update;

// One Analyze stream. Owns itself (via self_) until OnDone; the handle keeps
// a reference so that Cancel() after OnDone is harmless.
class AnalyzeReactor final
    : public grpc::ClientReadReactor<Update>,
      public std::enable_shared_from_this<AnalyzeReactor> {
 public:
  explicit AnalyzeReactor(std::shared_ptr<AnalyzeObserver> observer)
      : observer_(std::move(observer)) {}

  void Begin(agentstream::v1::Specialist::Stub* stub,
             const AnalyzeRequest& request) {
    self_ = shared_from_this();
    request_ = request;
    if (!request.request_id().empty()) {
      context_.AddMetadata("x-request-id", request.request_id());
    }
    stub->async()->Analyze(&context_, &request_, this);
    StartRead(&update_);
    StartCall();
  }

  void Cancel() {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
    }
    // ClientContext::TryCancel is thread-safe and a no-op on a finished call.
    context_.TryCancel();
  }

  // grpc::ClientReadReactor methods
  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream ended; OnDone follows.
    observer_->OnUpdate(std::move(update_));
    update_.Clear();
    StartRead(&update_);
  }
  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    std::shared_ptr<AnalyzeObserver> observer = std::move(observer_);
    std::shared_ptr<AnalyzeReactor> self = std::move(self_);
    observer->OnDone(FromGrpcStatus(status));
    // `self` may be the last reference: the reactor is destroyed here, after
    // gRPC's last use of it.
  }

 private:
  grpc::ClientContext context_;
  AnalyzeRequest request_;
  Update update_;
  std::shared_ptr<AnalyzeObserver> observer_;
  std::shared_ptr<AnalyzeReactor> self_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

class GrpcAnalyzeCall final : public AnalyzeCall {
 public:
  explicit GrpcAnalyzeCall(std::shared_ptr<AnalyzeReactor> reactor)
      : reactor_(std::move(reactor)) {}
  void Cancel() override { reactor_->Cancel(); }

 private:
  const std::shared_ptr<AnalyzeReactor> reactor_;
};

}  // namespace

std::shared_ptr<grpc::Channel> CreateSpecialistChannel(
    const std::string& address) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
  // Re-resolve DNS at most once a second (gRPC's default: 30 s), so that a
  // replica added later (docker compose --scale, Kubernetes) gets calls
  // soon after a connection ages out (--max-connection-age-ms).
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  // Reconnect quickly to a specialist that was restarted.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

GrpcSpecialistClient::GrpcSpecialistClient(std::string address)
    : address_(std::move(address)),
      channel_(CreateSpecialistChannel(address_)),
      stub_(agentstream::v1::Specialist::NewStub(channel_)) {}

absl::StatusOr<agentstream::v1::SpecialistCard> GrpcSpecialistClient::Describe(
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  agentstream::v1::SpecialistCard card;
  grpc::Status status =
      stub_->Describe(&context, agentstream::v1::DescribeRequest(), &card);
  if (!status.ok()) return FromGrpcStatus(status);
  return card;
}

std::unique_ptr<AnalyzeCall> GrpcSpecialistClient::Analyze(
    const AnalyzeRequest& request, std::shared_ptr<AnalyzeObserver> observer) {
  auto reactor = std::make_shared<AnalyzeReactor>(std::move(observer));
  reactor->Begin(stub_.get(), request);
  return std::make_unique<GrpcAnalyzeCall>(std::move(reactor));
}

}  // namespace agentstream::orchestrator
