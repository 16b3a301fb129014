#include "orchestrator/orchestrator_service.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/grpc_status.h"
#include "common/log.h"
#include "orchestrator/run_log.h"

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

// A buffer over the entry's bytes, keeping the entry alive; no copy.
grpc::ByteBuffer BufferOf(std::shared_ptr<const LogEntry> entry) {
  auto* ref = new std::shared_ptr<const LogEntry>(std::move(entry));
  const std::string& bytes = (*ref)->bytes;
  grpc::Slice slice(const_cast<char*>(bytes.data()), bytes.size(),
                    &ReleaseEntry, ref);
  return grpc::ByteBuffer(&slice, 1);
}

std::string MetadataValue(const grpc::CallbackServerContext& context,
                          const char* key) {
  const auto& md = context.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// A stream that ends at once (with an error, or OK and no message).
class FailedStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit FailedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One Run or Attach stream: a LogFollower writing into this reactor.
class FollowStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           public LogFollower::Sink {
 public:
  FollowStream(std::shared_ptr<Run> run, uint64_t after_seq,
               RunManager* manager, FollowerOptions options)
      : run_(std::move(run)), manager_(manager), metrics_(options.metrics) {
    run_->AddFollower();
    if (metrics_ != nullptr) metrics_->FollowerAdded();
    follower_ =
        std::make_shared<LogFollower>(run_->log(), after_seq, this, options);
  }

  void Begin() { follower_->Start(); }

  // LogFollower::Sink methods
  void Send(std::shared_ptr<const LogEntry> entry, bool more_follows) override {
    buffer_ = BufferOf(std::move(entry));
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
    manager_->ReleaseFollower(run_, cut_off_.load());
    delete this;
  }

 private:
  const std::shared_ptr<Run> run_;
  RunManager* const manager_;
  OrchestratorMetrics* const metrics_;
  std::shared_ptr<LogFollower> follower_;
  grpc::ByteBuffer buffer_;
  // Ended as slow_consumer: the client is expected back.
  std::atomic<bool> cut_off_{false};
};

}  // namespace

OrchestratorService::OrchestratorService(RunManager* manager,
                                         const SpecialistRegistry* registry,
                                         OrchestratorMetrics* metrics,
                                         uint64_t follower_max_lag)
    : manager_(manager), registry_(registry), metrics_(metrics) {
  follower_options_.max_lag = follower_max_lag;
  follower_options_.metrics = metrics;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::Run(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  agentstream::v1::RunRequest run_request;
  if (!ParseByteBuffer(*request, &run_request)) {
    return new FailedStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "malformed RunRequest"));
  }
  absl::StatusOr<std::shared_ptr<orchestrator::Run>> run =
      manager_->CreateRun(run_request, MetadataValue(*context, "x-request-id"));
  if (!run.ok()) {
    AS_LOG(INFO) << "Run refused: " << run.status().ToString();
    return new FailedStream(ToGrpcStatus(run.status()));
  }
  context->AddInitialMetadata("x-request-id", (*run)->request_id());
  auto* stream = new FollowStream(*run, 0, manager_, follower_options_);
  stream->StartSendInitialMetadata();
  stream->Begin();
  (*run)->Start();
  return stream;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* OrchestratorService::Attach(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  agentstream::v1::AttachRequest attach;
  if (!ParseByteBuffer(*request, &attach)) {
    return new FailedStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "malformed AttachRequest"));
  }
  absl::StatusOr<std::shared_ptr<orchestrator::Run>> run =
      manager_->Attach(attach.request_id(), attach.after_seq());
  if (!run.ok()) return new FailedStream(ToGrpcStatus(run.status()));
  if (*run == nullptr) {
    // The run ended at after_seq: nothing more to send.
    return new FailedStream(grpc::Status::OK);
  }
  context->AddInitialMetadata("x-request-id", (*run)->request_id());
  auto* stream =
      new FollowStream(*run, attach.after_seq(), manager_, follower_options_);
  stream->StartSendInitialMetadata();
  stream->Begin();
  return stream;
}

grpc::ServerUnaryReactor* OrchestratorService::Cancel(
    grpc::CallbackServerContext* context,
    const agentstream::v1::CancelRequest* request,
    agentstream::v1::CancelResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<bool> cancelled = manager_->Cancel(request->request_id());
  if (!cancelled.ok()) {
    reactor->Finish(ToGrpcStatus(cancelled.status()));
  } else {
    response->set_cancelled(*cancelled);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
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

}  // namespace agentstream::orchestrator
