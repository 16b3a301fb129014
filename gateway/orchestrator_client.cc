#include "gateway/orchestrator_client.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "common/grpc_status.h"
#include "gateway/call_counter.h"
#include "gateway/session_client.h"
#include "gateway/stream_inbox.h"

namespace agentstream::gateway {

agentstream::v1::AttachRequest AttachFrom(const std::string& request_id,
                                          uint64_t after_seq) {
  agentstream::v1::AttachRequest attach;
  attach.set_request_id(request_id);
  attach.set_after_seq(after_seq);
  return attach;
}
namespace {

using agentstream::v1::Orchestrator;
using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;

// The reactor of one Run or Attach call (or their batched forms: `Message`
// is Update or UpdateBatch). It owns itself from the call's start until
// OnDone, so that its owner (GrpcRunStream) can let go of a call at any time
// and from any thread (a gRPC callback, the HTTP event loop) without waiting
// for gRPC: the owner cancels, and the reactor frees itself when gRPC is done
// with it. Both calls stream updates; the reactor keeps the request alive for
// the call's life.
template <typename Message>
class StreamReactor final : public grpc::ClientReadReactor<Message>,
                            public StreamInbox {
 public:
  using Base = grpc::ClientReadReactor<Message>;

  static std::shared_ptr<StreamReactor> Run(
      Orchestrator::Stub* stub, const RunParams& params,
      const GrpcOrchestratorClientOptions& bounds, CallCounter& counter,
      std::shared_ptr<UpstreamCounters> counters) {
    auto r = std::shared_ptr<StreamReactor>(
        new StreamReactor(bounds, counter, std::move(counters)));
    r->run_request_.set_request_id(params.request_id);
    r->run_request_.set_message(params.message);
    for (const auto& s : params.specialists) {
      r->run_request_.add_specialists(s);
    }
    *r->run_request_.mutable_options() = params.options;
    r->run_request_.set_on_disconnect(params.on_disconnect);
    r->context_.AddMetadata("x-request-id", params.request_id);
    for (const auto& [key, value] : CallerMetadata(params.on_behalf_of)) {
      r->context_.AddMetadata(key, value);
    }
    if constexpr (std::is_same_v<Message, UpdateBatch>) {
      stub->async()->RunBatched(&r->context_, &r->run_request_, r.get());
    } else {
      stub->async()->Run(&r->context_, &r->run_request_, r.get());
    }
    r->Begin(r);
    return r;
  }
  static std::shared_ptr<StreamReactor> Attach(
      Orchestrator::Stub* stub, const agentstream::v1::AttachRequest& attach,
      const OnBehalfOf& who, const GrpcOrchestratorClientOptions& bounds,
      CallCounter& counter, std::shared_ptr<UpstreamCounters> counters) {
    auto r = std::shared_ptr<StreamReactor>(
        new StreamReactor(bounds, counter, std::move(counters)));
    r->attach_request_ = attach;
    r->context_.AddMetadata("x-request-id", attach.request_id());
    for (const auto& [key, value] : CallerMetadata(who)) {
      r->context_.AddMetadata(key, value);
    }
    if constexpr (std::is_same_v<Message, UpdateBatch>) {
      stub->async()->AttachBatched(&r->context_, &r->attach_request_, r.get());
    } else {
      stub->async()->Attach(&r->context_, &r->attach_request_, r.get());
    }
    r->Begin(r);
    return r;
  }

  // ClientReadReactor methods
  void OnReadInitialMetadataDone(bool ok) override {
    // Not ok for a trailers-only answer (a refusal) or a failed call; OnDone
    // follows then.
    if (!ok) return;
    std::function<void()> listener;
    {
      absl::MutexLock lock(&mu_);
      accepted_ = true;
      listener = listener_;
    }
    if (listener) listener();
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream ended: no read follows, from anywhere; OnDone follows
      // once the hold is gone.
      DropHold();
      return;
    }
    bool read_more = false;
    std::function<void()> listener;
    {
      absl::MutexLock lock(&mu_);
      accepted_ = true;  // An update implies the metadata came before it.
      const size_t bytes_before = queue_bytes_;
      const size_t updates_before = queue_.size();
      if constexpr (std::is_same_v<Message, UpdateBatch>) {
        for (Update& u : *incoming_.mutable_updates()) {
          QueueLocked(std::move(u));
        }
      } else {
        QueueLocked(std::move(incoming_));
      }
      incoming_.Clear();
      CountedLocked(static_cast<int64_t>(queue_.size() - updates_before),
                    static_cast<int64_t>(queue_bytes_ - bytes_before));
      read_more = queue_.size() < capacity_ && queue_bytes_ < max_bytes_;
      read_paused_ = !read_more;
      listener = listener_;
    }
    // Outside the lock: gRPC may run a reaction inline, and the listener
    // takes the queue through Wait().
    if (read_more) Base::StartRead(&incoming_);
    if (listener) listener();
  }
  void OnDone(const grpc::Status& status) override {
    std::function<void()> listener;
    std::shared_ptr<StreamReactor> self;
    {
      absl::MutexLock lock(&mu_);
      status_ = FromGrpcStatus(status);
      done_ = true;
      listener = std::move(listener_);
      listener_ = nullptr;
      self = std::move(self_);
    }
    if (listener) listener();
    // `self` may be the last reference: the reactor is destroyed here.
  }

  RunStream::Next Wait(absl::Duration timeout, std::vector<Update>* out) {
    bool resume = false;
    RunStream::Next result;
    {
      absl::MutexLock lock(&mu_);
      result = TakeLocked(timeout, out);
      if (result == RunStream::Next::kUpdates) {
        resume = read_paused_ && !done_ && hold_;
        read_paused_ = false;
      }
    }
    if (resume) Base::StartRead(&incoming_);
    return result;
  }

  void Cancel() { context_.TryCancel(); }
  // The owner lets go: no more listener calls; the call is cancelled unless
  // it already ended.
  void Release() {
    bool done;
    {
      absl::MutexLock lock(&mu_);
      listener_ = nullptr;
      done = done_;
    }
    if (!done) Cancel();
    // No read is started from outside a reaction any more.
    DropHold();
  }

 private:
  StreamReactor(const GrpcOrchestratorClientOptions& bounds,
                CallCounter& counter,
                std::shared_ptr<UpstreamCounters> counters)
      : StreamInbox(std::move(counters)),
        call_(counter),
        capacity_(bounds.queue_capacity),
        max_bytes_(bounds.queue_max_bytes) {}
  void Begin(const std::shared_ptr<StreamReactor>& self) {
    {
      absl::MutexLock lock(&mu_);
      self_ = self;
      hold_ = true;
    }
    // Wait() starts a paused read from the owner's thread, outside any
    // reaction: the hold keeps gRPC from finishing the call (and freeing it)
    // while that may still happen. It goes when the stream's reads end or
    // the owner lets go.
    Base::AddHold();
    Base::StartRead(&incoming_);
    Base::StartCall();
  }
  void DropHold() {
    {
      absl::MutexLock lock(&mu_);
      if (!hold_) return;
      hold_ = false;
    }
    Base::RemoveHold();
  }

  // First, so that it is destroyed last: the call counts as ended only once
  // the context (and gRPC's call with it) is gone.
  const CallCounter::Token call_;
  const size_t capacity_;
  const size_t max_bytes_;
  grpc::ClientContext context_;
  agentstream::v1::RunRequest run_request_;
  agentstream::v1::AttachRequest attach_request_;
  Message incoming_;  // Written by gRPC between StartRead and OnReadDone.

  std::shared_ptr<StreamReactor> self_ ABSL_GUARDED_BY(mu_);
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Message>
class GrpcRunStream final : public RunStream {
 public:
  explicit GrpcRunStream(std::shared_ptr<StreamReactor<Message>> reactor)
      : reactor_(std::move(reactor)) {}
  // Never waits: the reactor lives on by itself until gRPC is done with it.
  ~GrpcRunStream() override { reactor_->Release(); }

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
  void SetListener(std::function<void()> listener) override {
    reactor_->SetListener(std::move(listener));
  }

 private:
  const std::shared_ptr<StreamReactor<Message>> reactor_;
};

class GrpcOrchestratorClient final : public OrchestratorClient {
 public:
  GrpcOrchestratorClient(std::shared_ptr<grpc::Channel> channel,
                         GrpcOrchestratorClientOptions options)
      : stub_(Orchestrator::NewStub(channel)),
        options_(options),
        sessions_(stub_.get(), calls_, options.queue_max_bytes,
                  options.session_max_age, counters_) {}
  ~GrpcOrchestratorClient() override {
    sessions_.Shutdown();
    // Streams let go of their calls without waiting (a cancelled call ends
    // within milliseconds); the stub must outlive them.
    calls_.WaitAllEnded(absl::Seconds(10));
  }

  std::unique_ptr<RunStream> StartRun(const RunParams& params) override {
    if (options_.session && sessions_.supported()) {
      agentstream::v1::SessionOpen open;
      agentstream::v1::RunRequest& r = *open.mutable_run();
      r.set_request_id(params.request_id);
      r.set_message(params.message);
      for (const auto& s : params.specialists) r.add_specialists(s);
      *r.mutable_options() = params.options;
      r.set_on_disconnect(params.on_disconnect);
      for (const auto& [key, value] : CallerMetadata(params.on_behalf_of)) {
        (*open.mutable_metadata())[key] = value;
      }
      return sessions_.Open(std::move(open),
                            [this, params] { return StartRunCall(params); });
    }
    return StartRunCall(params);
  }

  std::unique_ptr<RunStream> StartAttach(
      const agentstream::v1::AttachRequest& attach,
      const OnBehalfOf& who) override {
    if (options_.session && sessions_.supported()) {
      agentstream::v1::SessionOpen open;
      *open.mutable_attach() = attach;
      for (const auto& [key, value] : CallerMetadata(who)) {
        (*open.mutable_metadata())[key] = value;
      }
      return sessions_.Open(std::move(open), [this, attach, who] {
        return StartAttachCall(attach, who);
      });
    }
    return StartAttachCall(attach, who);
  }

 private:
  std::unique_ptr<RunStream> StartRunCall(const RunParams& params) {
    if (options_.batched) {
      return std::make_unique<GrpcRunStream<UpdateBatch>>(
          StreamReactor<UpdateBatch>::Run(stub_.get(), params, options_, calls_,
                                          counters_));
    }
    return std::make_unique<GrpcRunStream<Update>>(StreamReactor<Update>::Run(
        stub_.get(), params, options_, calls_, counters_));
  }

  std::unique_ptr<RunStream> StartAttachCall(
      const agentstream::v1::AttachRequest& attach, const OnBehalfOf& who) {
    if (options_.batched) {
      return std::make_unique<GrpcRunStream<UpdateBatch>>(
          StreamReactor<UpdateBatch>::Attach(stub_.get(), attach, who, options_,
                                             calls_, counters_));
    }
    return std::make_unique<GrpcRunStream<Update>>(
        StreamReactor<Update>::Attach(stub_.get(), attach, who, options_,
                                      calls_, counters_));
  }

  std::shared_ptr<const UpstreamCounters> upstream_counters() const override {
    return counters_;
  }

 public:
  absl::StatusOr<bool> Cancel(const std::string& request_id,
                              absl::Duration timeout,
                              const OnBehalfOf& who) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context.AddMetadata("x-request-id", request_id);
    for (const auto& [key, value] : CallerMetadata(who)) {
      context.AddMetadata(key, value);
    }
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
  const std::shared_ptr<UpstreamCounters> counters_ =
      std::make_shared<UpstreamCounters>();
  CallCounter calls_;
  // After calls_, which it counts its calls in.
  SessionPool sessions_;
};

}  // namespace

std::unique_ptr<OrchestratorClient> NewGrpcOrchestratorClient(
    std::shared_ptr<grpc::Channel> channel,
    GrpcOrchestratorClientOptions options) {
  return std::make_unique<GrpcOrchestratorClient>(std::move(channel), options);
}

std::shared_ptr<grpc::Channel> NewOrchestratorChannel(
    const std::string& address, const TlsFiles& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // No gRPC retries: a run that cannot start is answered 503 + Retry-After
  // and a stream cut mid-way is an `unavailable` error the client resumes
  // from (docs/GATEWAY.md); gRPC's retry layer would cost every open stream
  // some 5 KiB for as long as it lasts.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Round robin over every address the target resolves to: with several
  // orchestrator replicas (dns:///orchestrator:50051 with a shared run
  // store, docs/SCALING.md) each call may go to any of them.
  args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  // A connection that goes (an orchestrator's --max-connection-age-ms, a
  // replica stopped) makes round robin ask for the name again; gRPC spaces
  // those lookups 30 s apart by default, which would keep a replica added
  // meanwhile unused that long.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  return grpc::CreateCustomChannel(address, MakeChannelCredentials(tls), args);
}

}  // namespace agentstream::gateway
