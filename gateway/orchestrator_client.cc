#include "gateway/orchestrator_client.h"

#include <grpcpp/grpcpp.h>

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "common/grpc_status.h"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Orchestrator;
using agentstream::v1::Update;

// The reactor of one Run call. It is owned by GrpcRunStream and outlives
// OnDone: the owner's destructor cancels the call and waits for OnDone.
class RunReactor final : public grpc::ClientReadReactor<Update> {
 public:
  RunReactor(Orchestrator::Stub* stub, const RunParams& params, size_t capacity)
      : capacity_(capacity) {
    request_.set_request_id(params.request_id);
    request_.set_message(params.message);
    for (const auto& s : params.specialists) request_.add_specialists(s);
    *request_.mutable_options() = params.options;
    context_.AddMetadata("x-request-id", params.request_id);
    stub->async()->Run(&context_, &request_, this);
    StartRead(&incoming_);
    StartCall();
  }

  // ClientReadReactor methods
  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream ended; OnDone follows.
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(incoming_));
      incoming_.Clear();
      read_more = queue_.size() < capacity_;
      read_paused_ = !read_more;
    }
    // Outside the lock: gRPC may run a reaction inline.
    if (read_more) StartRead(&incoming_);
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = FromGrpcStatus(status);
    done_ = true;
  }

  RunStream::Next Wait(absl::Duration timeout, std::vector<Update>* out) {
    bool resume = false;
    RunStream::Next result = RunStream::Next::kTimeout;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || done_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
      if (!queue_.empty()) {
        for (auto& u : queue_) out->push_back(std::move(u));
        queue_.clear();
        resume = read_paused_ && !done_;
        read_paused_ = false;
        result = RunStream::Next::kUpdates;
      } else if (done_) {
        result = RunStream::Next::kFinished;
      }
    }
    if (resume) StartRead(&incoming_);
    return result;
  }

  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  void Cancel() { context_.TryCancel(); }
  bool WaitFinished(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }

 private:
  const size_t capacity_;
  grpc::ClientContext context_;
  agentstream::v1::RunRequest request_;
  Update incoming_;  // Written by gRPC between StartRead and OnReadDone.

  mutable absl::Mutex mu_;
  std::deque<Update> queue_ ABSL_GUARDED_BY(mu_);
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

class GrpcRunStream final : public RunStream {
 public:
  GrpcRunStream(Orchestrator::Stub* stub, const RunParams& params,
                size_t capacity)
      : reactor_(std::make_unique<RunReactor>(stub, params, capacity)) {}
  ~GrpcRunStream() override {
    if (!reactor_->WaitFinished(absl::ZeroDuration())) {
      reactor_->Cancel();
      // gRPC always calls OnDone after a cancel; the reactor must live on
      // until then.
      reactor_->WaitFinished(absl::InfiniteDuration());
    }
  }

  Next Wait(absl::Duration timeout, std::vector<Update>* out) override {
    return reactor_->Wait(timeout, out);
  }
  absl::Status status() const override { return reactor_->status(); }
  void Cancel() override { reactor_->Cancel(); }
  bool WaitFinished(absl::Duration timeout) override {
    return reactor_->WaitFinished(timeout);
  }

 private:
  const std::unique_ptr<RunReactor> reactor_;
};

class GrpcOrchestratorClient final : public OrchestratorClient {
 public:
  GrpcOrchestratorClient(std::shared_ptr<grpc::Channel> channel,
                         GrpcOrchestratorClientOptions options)
      : stub_(Orchestrator::NewStub(channel)), options_(options) {}

  std::unique_ptr<RunStream> StartRun(const RunParams& params) override {
    return std::make_unique<GrpcRunStream>(stub_.get(), params,
                                           options_.queue_capacity);
  }

  absl::StatusOr<agentstream::v1::ListSpecialistsResponse> ListSpecialists(
      absl::Duration timeout, const std::string& request_id) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    if (!request_id.empty()) context.AddMetadata("x-request-id", request_id);
    agentstream::v1::ListSpecialistsResponse response;
    grpc::Status status = stub_->ListSpecialists(
        &context, agentstream::v1::ListSpecialistsRequest(), &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

 private:
  const std::unique_ptr<Orchestrator::Stub> stub_;
  const GrpcOrchestratorClientOptions options_;
};

}  // namespace

std::unique_ptr<OrchestratorClient> NewGrpcOrchestratorClient(
    std::shared_ptr<grpc::Channel> channel,
    GrpcOrchestratorClientOptions options) {
  return std::make_unique<GrpcOrchestratorClient>(std::move(channel), options);
}

std::shared_ptr<grpc::Channel> NewOrchestratorChannel(
    const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

}  // namespace agentstream::gateway
