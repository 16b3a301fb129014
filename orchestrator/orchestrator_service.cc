#include "orchestrator/orchestrator_service.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/tls.h"
#include "orchestrator/run_log.h"
#include "orchestrator/session_stream.h"

namespace agentstream::orchestrator {
namespace {

bool ParseByteBuffer(const grpc::ByteBuffer& buffer,
                     google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return message->ParseFromString(bytes);
}

void ReleaseEntry(void* user_data) {
  delete static_cast<std::shared_ptr<const LogEntry>*>(user_data);
}

// A buffer over `bytes` of `entry`, keeping the entry (and its charge) alive;
// no copy.
grpc::ByteBuffer BufferOf(const std::shared_ptr<const LogEntry>& entry,
                          std::string_view bytes) {
  auto* ref = new std::shared_ptr<const LogEntry>(entry);
  grpc::Slice slice(const_cast<char*>(bytes.data()), bytes.size(),
                    &ReleaseEntry, ref);
  return grpc::ByteBuffer(&slice, 1);
}

// Several entries' batch_bytes() copied into one buffer (one allocation,
// where a slice per entry would cost gRPC an allocation and a reference
// each). While gRPC holds it, the copy is charged where the entries are, so
// a large batch in flight counts against --max-total-log-bytes as the
// entries it copies would (docs/ORCHESTRATOR.md, "A follower's memory").
struct BatchCopy {
  BatchCopy(std::shared_ptr<RunMemory> m, size_t size)
      : memory(std::move(m)), bytes(size, '\0') {
    if (memory != nullptr) memory->Charge(bytes.size());
  }
  ~BatchCopy() {
    if (memory != nullptr) memory->Release(bytes.size());
  }
  const std::shared_ptr<RunMemory> memory;
  std::string bytes;
};

void ReleaseBatchCopy(void* user_data) {
  delete static_cast<BatchCopy*>(user_data);
}

// A write this small is copied into one gRPC slice (one allocation, where
// referencing an entry costs a reference and gRPC's refcount allocation);
// such a copy is not charged: at most this much per follower, like gRPC's
// own buffers (docs/ORCHESTRATOR.md, "A follower's memory").
constexpr size_t kUnchargedCopyBytes = 4096;

// The message for `entries`: one update's bytes(), or (`batched`) an
// UpdateBatch, the concatenation of their batch_bytes(): nothing is encoded
// again.
grpc::ByteBuffer MessageOf(
    absl::Span<const std::shared_ptr<const LogEntry>> entries, bool batched,
    const std::shared_ptr<RunMemory>& memory) {
  auto bytes_of = [batched](const LogEntry& e) {
    return batched ? e.batch_bytes() : e.bytes();
  };
  size_t size = 0;
  for (const auto& e : entries) size += bytes_of(*e).size();
  if (size <= kUnchargedCopyBytes) {
    grpc::Slice slice(size);
    auto* out = const_cast<uint8_t*>(slice.begin());
    for (const auto& e : entries) {
      const std::string_view b = bytes_of(*e);
      std::memcpy(out, b.data(), b.size());
      out += b.size();
    }
    return grpc::ByteBuffer(&slice, 1);
  }
  if (entries.size() == 1) return BufferOf(entries[0], bytes_of(*entries[0]));
  auto* copy = new BatchCopy(memory, size);
  char* out = copy->bytes.data();
  for (const auto& e : entries) {
    const std::string_view b = bytes_of(*e);
    std::memcpy(out, b.data(), b.size());
    out += b.size();
  }
  grpc::Slice slice(copy->bytes.data(), copy->bytes.size(), &ReleaseBatchCopy,
                    copy);
  return grpc::ByteBuffer(&slice, 1);
}

std::string MetadataValue(const grpc::CallbackServerContext& context,
                          std::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// A stream that ends at once (with an error, or OK and no message).
class FailedStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit FailedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One Run, Attach, RunBatched or AttachBatched stream: a LogFollower writing
// into this reactor (batches when FollowerOptions::max_batch_bytes is set).
class FollowStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           public LogFollower::Sink {
 public:
  FollowStream(std::shared_ptr<FollowedRun> run, uint64_t after_seq,
               RunManager* manager, FollowerOptions options)
      : run_(std::move(run)),
        manager_(manager),
        metrics_(options.metrics),
        batched_(options.max_batch_bytes > 0),
        follows_(!options.replay_only) {
    // A replay-only read is no follower: it neither keeps an orphaned run
    // alive nor, when it ends, leaves it.
    if (follows_) run_->AddFollower();
    if (metrics_ != nullptr) metrics_->FollowerAdded();
    follower_ =
        std::make_shared<LogFollower>(run_->log(), after_seq, this, options);
  }

  void Begin() { follower_->Start(); }

  // LogFollower::Sink methods
  void Send(absl::Span<const std::shared_ptr<const LogEntry>> entries,
            bool more_follows) override {
    buffer_ = MessageOf(entries, batched_, run_->log()->memory());
    if (metrics_ != nullptr) {
      // The hop to the gateway's stream, for the whole write at once.
      metrics::HopBatch hop(metrics_->hop_to_write(), metrics::WallNanos());
      for (const auto& e : entries) hop.Add(e->emitted_at);
      metrics_->UpdatesSent(static_cast<int64_t>(entries.size()),
                            static_cast<int64_t>(buffer_.Length()));
    }
    // With the buffer hint, chttp2 keeps the message in the stream's buffer
    // (up to its write buffer size, 64 KiB) and completes the write at once;
    // the next write without the hint (the last entry available) or the
    // trailers flush them all in one go. So the hint is only ever set when
    // another Send is sure to follow.
    grpc::WriteOptions options;
    if (more_follows) options.set_buffer_hint();
    StartWrite(&buffer_, options);
  }
  void End(const absl::Status& status) override {
    cut_off_.store(status.code() == absl::StatusCode::kResourceExhausted);
    Finish(ToGrpcStatus(status));
  }

  // grpc::ServerWriteReactor methods
  void OnWriteDone(bool ok) override { follower_->OnWriteDone(ok); }
  void OnCancel() override { follower_->Cancel(); }
  void OnDone() override {
    follower_->Stop();
    if (metrics_ != nullptr) metrics_->FollowerRemoved();
    if (follows_) manager_->ReleaseFollower(run_, cut_off_.load());
    delete this;
  }

 private:
  const std::shared_ptr<FollowedRun> run_;
  RunManager* const manager_;
  OrchestratorMetrics* const metrics_;
  const bool batched_;  // UpdateBatch messages, else one Update each.
  const bool follows_;  // Not replay_only.
  std::shared_ptr<LogFollower> follower_;
  grpc::ByteBuffer buffer_;
  // Ended as slow_consumer: the client is expected back.
  std::atomic<bool> cut_off_{false};
};

}  // namespace

OrchestratorService::OrchestratorService(RunManager* manager,
                                         const SpecialistRegistry* registry,
                                         OrchestratorMetrics* metrics,
                                         uint64_t follower_max_lag,
                                         TrustOptions trust)
    : manager_(manager),
      trust_(std::move(trust)),
      registry_(registry),
      metrics_(metrics) {
  follower_options_.max_lag = follower_max_lag;
  follower_options_.metrics = metrics;
  batched_options_ = follower_options_;
  batched_options_.max_batch_bytes = FollowerOptions::kMaxBatchBytes;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::Run(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return StartRun(context, request, follower_options_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::RunBatched(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return StartRun(context, request, batched_options_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::Attach(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return StartAttach(context, request, follower_options_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::AttachBatched(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return StartAttach(context, request, batched_options_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::StartRun(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    const FollowerOptions& options) {
  agentstream::v1::RunRequest run_request;
  if (!ParseByteBuffer(*request, &run_request)) {
    return new FailedStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "malformed RunRequest"));
  }
  absl::StatusOr<std::shared_ptr<orchestrator::Run>> run = manager_->CreateRun(
      run_request, MetadataValue(*context, "x-request-id"), CallerOf(*context));
  if (!run.ok()) {
    AS_LOG(INFO) << "Run refused: " << run.status().ToString();
    return new FailedStream(ToGrpcStatus(run.status()));
  }
  context->AddInitialMetadata("x-request-id", (*run)->request_id());
  auto* stream = new FollowStream(*run, 0, manager_, options);
  stream->StartSendInitialMetadata();
  stream->Begin();
  (*run)->Start();
  return stream;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::StartAttach(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    const FollowerOptions& options) {
  agentstream::v1::AttachRequest attach;
  if (!ParseByteBuffer(*request, &attach)) {
    return new FailedStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "malformed AttachRequest"));
  }
  absl::StatusOr<std::shared_ptr<FollowedRun>> run = manager_->Attach(
      attach.request_id(), attach.after_seq(), CallerOf(*context));
  if (!run.ok()) return new FailedStream(ToGrpcStatus(run.status()));
  if (*run == nullptr) {
    // The run ended at after_seq: nothing more to send.
    return new FailedStream(grpc::Status::OK);
  }
  context->AddInitialMetadata("x-request-id", (*run)->request_id());
  FollowerOptions follow = options;
  follow.replay_only = attach.replay_only();
  auto* stream = new FollowStream(*run, attach.after_seq(), manager_, follow);
  stream->StartSendInitialMetadata();
  stream->Begin();
  return stream;
}

grpc::ServerUnaryReactor* OrchestratorService::Cancel(
    grpc::CallbackServerContext* context,
    const agentstream::v1::CancelRequest* request,
    agentstream::v1::CancelResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<bool> cancelled =
      manager_->Cancel(request->request_id(), CallerOf(*context));
  if (!cancelled.ok()) {
    reactor->Finish(ToGrpcStatus(cancelled.status()));
  } else {
    response->set_cancelled(*cancelled);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

Caller OrchestratorService::CallerOf(
    const grpc::CallbackServerContext& context) const {
  return ResolveCaller(
      trust_, PeerIdentity(context), context.peer(),
      [&context](std::string_view key) { return MetadataValue(context, key); });
}

grpc::ServerUnaryReactor* OrchestratorService::ListSpecialists(
    grpc::CallbackServerContext* context,
    const agentstream::v1::ListSpecialistsRequest* /*request*/,
    agentstream::v1::ListSpecialistsResponse* response) {
  *response = registry_->List();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
OrchestratorService::Session(grpc::CallbackServerContext* context) {
  // Each stream acts for the principal its open names, believed as the
  // session's peer is trusted.
  CallerResolver resolve =
      [trust = trust_, identity = PeerIdentity(*context),
       peer = context->peer()](const MetadataLookup& metadata) {
        return ResolveCaller(trust, identity, peer, metadata);
      };
  auto* session = new SessionStream(manager_, metrics_, batched_options_,
                                    std::move(resolve));
  session->Begin();
  return session;
}

}  // namespace agentstream::orchestrator
