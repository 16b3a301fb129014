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

// The reactor of one Run or Attach call. It is owned by GrpcRunStream and
// outlives OnDone: the owner's destructor cancels the call and waits for
// OnDone. Both calls stream Updates; the reactor keeps the request alive for
// the call's life.
class StreamReactor final : public grpc::ClientReadReactor<Update> {
 public:
  StreamReactor(Orchestrator::Stub* stub, const RunParams& params,
                const GrpcOrchestratorClientOptions& bounds)
      : capacity_(bounds.queue_capacity), max_bytes_(bounds.queue_max_bytes) {
    run_request_.set_request_id(params.request_id);
    run_request_.set_message(params.message);
    for (const auto& s : params.specialists) run_request_.add_specialists(s);
    *run_request_.mutable_options() = params.options;
    run_request_.set_on_disconnect(params.on_disconnect);
    context_.AddMetadata("x-request-id", params.request_id);
    stub->async()->Run(&context_, &run_request_, this);
    Begin();
  }
  StreamReactor(Orchestrator::Stub* stub, const std::string& request_id,
                uint64_t after_seq, const GrpcOrchestratorClientOptions& bounds)
      : capacity_(bounds.queue_capacity), max_bytes_(bounds.queue_max_bytes) {
    attach_request_.set_request_id(request_id);
    attach_request_.set_after_seq(after_seq);
    context_.AddMetadata("x-request-id", request_id);
    stub->async()->Attach(&context_, &attach_request_, this);
    Begin();
  }

  // ClientReadReactor methods
  void OnReadInitialMetadataDone(bool ok) override {
    // Not ok for a trailers-only answer (a refusal) or a failed call; OnDone
    // follows then.
    if (!ok) return;
    absl::MutexLock lock(&mu_);
    accepted_ = true;
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream ended; OnDone follows.
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      accepted_ = true;  // An update implies the metadata came before it.
      queue_bytes_ += incoming_.ByteSizeLong();
      queue_.push_back(std::move(incoming_));
      incoming_.Clear();
      read_more = queue_.size() < capacity_ && queue_bytes_ < max_bytes_;
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

  RunStream::Opening WaitOpening(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return accepted_ || done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&answered), timeout);
    if (accepted_) return RunStream::Opening::kAccepted;
    return done_ ? RunStream::Opening::kFinished : RunStream::Opening::kTimeout;
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
        queue_bytes_ = 0;
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
  void Begin() {
    StartRead(&incoming_);
    StartCall();
  }

  const size_t capacity_;
  const size_t max_bytes_;
  grpc::ClientContext context_;
  agentstream::v1::RunRequest run_request_;
  agentstream::v1::AttachRequest attach_request_;
  Update incoming_;  // Written by gRPC between StartRead and OnReadDone.

  mutable absl::Mutex mu_;
  std::deque<Update> queue_ ABSL_GUARDED_BY(mu_);
  size_t queue_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

class GrpcRunStream final : public RunStream {
 public:
  explicit GrpcRunStream(std::unique_ptr<StreamReactor> reactor)
      : reactor_(std::move(reactor)) {}
  ~GrpcRunStream() override {
    if (!reactor_->WaitFinished(absl::ZeroDuration())) {
      reactor_->Cancel();
      // gRPC always calls OnDone after a cancel; the reactor must live on
      // until then.
      reactor_->WaitFinished(absl::InfiniteDuration());
    }
  }

  Opening WaitOpening(absl::Duration timeout) override {
    return reactor_->WaitOpening(timeout);
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
  const std::unique_ptr<StreamReactor> reactor_;
};

class GrpcOrchestratorClient final : public OrchestratorClient {
 public:
  GrpcOrchestratorClient(std::shared_ptr<grpc::Channel> channel,
                         GrpcOrchestratorClientOptions options)
      : stub_(Orchestrator::NewStub(channel)), options_(options) {}

  std::unique_ptr<RunStream> StartRun(const RunParams& params) override {
    return std::make_unique<GrpcRunStream>(
        std::make_unique<StreamReactor>(stub_.get(), params, options_));
  }

  std::unique_ptr<RunStream> StartAttach(const std::string& request_id,
                                         uint64_t after_seq) override {
    return std::make_unique<GrpcRunStream>(std::make_unique<StreamReactor>(
        stub_.get(), request_id, after_seq, options_));
  }

  absl::StatusOr<bool> Cancel(const std::string& request_id,
                              absl::Duration timeout) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context.AddMetadata("x-request-id", request_id);
    agentstream::v1::CancelRequest request;
    request.set_request_id(request_id);
    agentstream::v1::CancelResponse response;
    grpc::Status status = stub_->Cancel(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response.cancelled();
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
