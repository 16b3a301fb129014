#include "orchestrator/grpc_specialist_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_callback.h>
#include <grpcpp/support/slice.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "orchestrator/session_wire.h"
#include "orchestrator/specialist_session.h"

namespace agentstream::orchestrator {

struct GrpcSpecialistClient::Endpoint {
  explicit Endpoint(const std::shared_ptr<grpc::Channel>& channel)
      : channel(channel),
        analyze("/agentstream.v1.Specialist/Analyze",
                grpc::internal::RpcMethod::SERVER_STREAMING, channel),
        analyze_batched("/agentstream.v1.Specialist/AnalyzeBatched",
                        grpc::internal::RpcMethod::SERVER_STREAMING, channel) {}

  const std::shared_ptr<grpc::Channel> channel;
  const grpc::internal::RpcMethod analyze;
  const grpc::internal::RpcMethod analyze_batched;
  // The endpoint answered AnalyzeBatched with UNIMPLEMENTED: use Analyze.
  std::atomic<bool> analyze_only{false};
};

namespace {

using agentstream::v1::AnalyzeRequest;
using Endpoint = GrpcSpecialistClient::Endpoint;

// One Analyze call: AnalyzeBatched, or Analyze (from the start when the
// endpoint is known to lack AnalyzeBatched, or after it answered
// UNIMPLEMENTED before any message). Owns itself (via self_) until OnDone;
// the handle keeps a reference so that Cancel() after OnDone is harmless.
class AnalyzeReactor final
    : public grpc::ClientReadReactor<grpc::ByteBuffer>,
      public std::enable_shared_from_this<AnalyzeReactor> {
 public:
  AnalyzeReactor(std::shared_ptr<Endpoint> endpoint,
                 std::shared_ptr<AnalyzeObserver> observer)
      : endpoint_(std::move(endpoint)), observer_(std::move(observer)) {}

  void Begin(const AnalyzeRequest& request) {
    self_ = shared_from_this();
    request_id_ = request.request_id();
    // Serialized once, for either method.
    std::string bytes = request.SerializeAsString();
    grpc::Slice slice(std::move(bytes));
    request_ = grpc::ByteBuffer(&slice, 1);
    StartAttempt(!endpoint_->analyze_only.load(std::memory_order_relaxed));
  }

  void Cancel() {
    std::shared_ptr<grpc::ClientContext> context;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      cancelled_ = true;
      context = context_;
    }
    // Thread-safe, a no-op on a finished call, and remembered by a context
    // whose call has not started yet. Not under mu_: gRPC may run callbacks
    // of this call inline.
    if (context != nullptr) context->TryCancel();
  }

  // grpc::ClientReadReactor methods
  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream ended; OnDone follows.
    got_message_ = true;
    grpc::Slice slice;
    bool good = buffer_.TrySingleSlice(&slice).ok() ||
                buffer_.DumpToSingleSlice(&slice).ok();
    if (good) {
      const std::string_view bytes(reinterpret_cast<const char*>(slice.begin()),
                                   slice.size());
      if (batched_) {
        updates_.clear();
        good = ForEachBatchedUpdate(bytes, [this](std::string_view update) {
          updates_.push_back(update);
          return true;
        });
        good = good && observer_->OnSerializedUpdates(updates_);
      } else {
        good = observer_->OnSerializedUpdates({&bytes, 1});
      }
    }
    buffer_.Clear();
    if (!good) {
      // Not an Update (or UpdateBatch): the call fails as a parse failure of
      // gRPC's own would.
      malformed_ = true;
      Cancel();
      return;
    }
    StartRead(&buffer_);
  }

  void OnDone(const grpc::Status& status) override {
    bool fall_back = false;
    {
      absl::MutexLock lock(&mu_);
      fall_back = batched_ && !got_message_ && !cancelled_ &&
                  status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
      if (!fall_back) done_ = true;
    }
    if (fall_back) {
      // A specialist without AnalyzeBatched: Analyze, now and from now on.
      endpoint_->analyze_only.store(true, std::memory_order_relaxed);
      StartAttempt(false);
      return;
    }
    std::shared_ptr<AnalyzeObserver> observer = std::move(observer_);
    std::shared_ptr<AnalyzeReactor> self = std::move(self_);
    observer->OnDone(malformed_ ? absl::InternalError(
                                      "the specialist sent a malformed update")
                                : FromGrpcStatus(status));
    // `self` may be the last reference: the reactor is destroyed here, after
    // gRPC's last use of it.
  }

 private:
  // Starts AnalyzeBatched (`batched`) or Analyze on a fresh context.
  void StartAttempt(bool batched) {
    std::shared_ptr<grpc::ClientContext> context =
        std::make_shared<grpc::ClientContext>();
    std::shared_ptr<grpc::ClientContext> previous;
    {
      absl::MutexLock lock(&mu_);
      batched_ = batched;
      // The first attempt's context holds its call (and the call's arena,
      // some 20 KiB) until it goes: let it go now, or once a Cancel that
      // holds it is done.
      previous = std::move(context_);
      context_ = context;
      if (cancelled_) context->TryCancel();  // Between two attempts.
    }
    previous.reset();
    if (!request_id_.empty()) context->AddMetadata("x-request-id", request_id_);
    grpc::internal::ClientCallbackReaderFactory<grpc::ByteBuffer>::Create(
        endpoint_->channel.get(),
        batched ? endpoint_->analyze_batched : endpoint_->analyze,
        context.get(), &request_, this);
    StartRead(&buffer_);
    StartCall();
  }

  const std::shared_ptr<Endpoint> endpoint_;
  std::string request_id_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer buffer_;
  // The updates of the batch being read (views into buffer_'s slice).
  absl::InlinedVector<std::string_view, 8> updates_;
  // Touched only by gRPC's callbacks of this call, one at a time.
  bool got_message_ = false;
  bool malformed_ = false;
  std::shared_ptr<AnalyzeObserver> observer_;
  std::shared_ptr<AnalyzeReactor> self_;
  absl::Mutex mu_;
  // The current attempt's context (AnalyzeBatched, then maybe Analyze).
  std::shared_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  bool batched_ = false;  // The current attempt's method; set before it.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
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

// The handle of an analysis that ended before it started.
class NoCall final : public AnalyzeCall {
 public:
  void Cancel() override {}
};

}  // namespace

std::shared_ptr<grpc::Channel> CreateSpecialistChannel(
    const std::string& address, const TlsFiles& tls) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
  // No gRPC retries: the run retries an unavailable specialist itself
  // (RunOptions::max_attempts), and gRPC's retry layer costs every call
  // some 5 KiB for as long as it lasts (an idle run's call lasts long).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Re-resolve DNS at most once a second (gRPC's default: 30 s), so that a
  // replica added later (docker compose --scale, Kubernetes) gets calls
  // soon after a connection ages out (--max-connection-age-ms).
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  // Reconnect quickly to a specialist that was restarted.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(address, MakeChannelCredentials(tls), args);
}

namespace {

// Today's per-call analysis (AnalyzeBatched, then Analyze).
std::unique_ptr<AnalyzeCall> AnalyzeAsItsOwnCall(
    std::shared_ptr<Endpoint> endpoint, const AnalyzeRequest& request,
    std::shared_ptr<AnalyzeObserver> observer) {
  auto reactor = std::make_shared<AnalyzeReactor>(std::move(endpoint),
                                                  std::move(observer));
  reactor->Begin(request);
  return std::make_unique<GrpcAnalyzeCall>(std::move(reactor));
}

}  // namespace

GrpcSpecialistClient::GrpcSpecialistClient(std::string address,
                                           GrpcSpecialistClientOptions options)
    : address_(std::move(address)),
      channel_(CreateSpecialistChannel(address_, options.tls)),
      stub_(agentstream::v1::Specialist::NewStub(channel_)),
      endpoint_(std::make_shared<Endpoint>(channel_)) {
  if (options.sessions) {
    // The fallback holds the endpoint (and its channel) weakly, so that
    // the sessions never hold the channel (specialist_session.h).
    std::weak_ptr<Endpoint> weak = endpoint_;
    sessions_ = std::make_unique<SpecialistSessions>(
        channel_,
        [weak](const AnalyzeRequest& request,
               std::shared_ptr<AnalyzeObserver> observer) {
          std::shared_ptr<Endpoint> endpoint = weak.lock();
          if (endpoint == nullptr) {
            observer->OnDone(absl::CancelledError("the client is gone"));
            return std::unique_ptr<AnalyzeCall>(std::make_unique<NoCall>());
          }
          return AnalyzeAsItsOwnCall(std::move(endpoint), request,
                                     std::move(observer));
        },
        options.clock);
  }
}

GrpcSpecialistClient::~GrpcSpecialistClient() = default;

bool GrpcSpecialistClient::uses_sessions() const {
  return sessions_ != nullptr && sessions_->supported();
}

uint64_t GrpcSpecialistClient::session_calls_started() const {
  return sessions_ == nullptr ? 0 : sessions_->calls_started();
}

bool GrpcSpecialistClient::uses_analyze() const {
  return endpoint_->analyze_only.load(std::memory_order_relaxed);
}

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
  if (sessions_ != nullptr) {
    return sessions_->Analyze(request, std::move(observer));
  }
  return AnalyzeAsItsOwnCall(endpoint_, request, std::move(observer));
}

}  // namespace agentstream::orchestrator
