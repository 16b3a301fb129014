// A scripted fake of agentstream.v1.Orchestrator for the gateway's tests: a
// real gRPC server on 127.0.0.1 (port 0) whose Run and Attach stream the
// updates a script gives, with delays, then end with the script's status
// (any status: OK, OUT_OF_RANGE "gap:", RESOURCE_EXHAUSTED "slow_consumer:",
// UNAVAILABLE, ...); Cancel answers as a function says. It records every
// call: the request, the x-request-id metadata, and whether and when the
// client cancelled. Thread-safe.
//
// Like the real orchestrator (a callback server that calls
// StartSendInitialMetadata once it accepts a call), the fake sends a call's
// initial metadata at once unless the script is a refusal (no update, no
// delay: the status alone, trailers-only); a sync server would otherwise send
// it only with the first update.
#ifndef AGENTSTREAM_TESTS_UNIT_GATEWAY_FAKE_ORCHESTRATOR_H_
#define AGENTSTREAM_TESTS_UNIT_GATEWAY_FAKE_ORCHESTRATOR_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"

namespace agentstream::gateway::testing {

struct ScriptStep {
  ScriptStep() = default;
  ScriptStep(absl::Duration delay, agentstream::v1::Update update,
             std::shared_ptr<absl::Notification> release = nullptr)
      : delay(delay), update(std::move(update)), release(std::move(release)) {}

  absl::Duration delay = absl::ZeroDuration();  // Before this update.
  agentstream::v1::Update update;
  // When set, the update also waits (cancellably, up to 30 s) for this.
  std::shared_ptr<absl::Notification> release;
};

enum class InitialMetadata {
  kAuto,             // At once, unless the script is a refusal (no step and
                     // no final delay), as the orchestrator does.
  kWithFirstUpdate,  // Only with the first update or the status (a server
                     // that has not answered yet).
};

struct RunScript {
  std::vector<ScriptStep> steps;
  // After the last step, wait this long (cancellable) then end with
  // `final_status`. InfiniteDuration: hold the call open until cancelled.
  absl::Duration final_delay = absl::ZeroDuration();
  grpc::Status final_status = grpc::Status::OK;
  InitialMetadata initial_metadata = InitialMetadata::kAuto;
};

struct RunCallRecord {
  agentstream::v1::RunRequest request;            // Run calls.
  agentstream::v1::AttachRequest attach_request;  // Attach calls.
  std::string metadata_request_id;  // The x-request-id metadata, if any.
  absl::Time started_at;
  bool ended = false;
  bool cancelled = false;
  absl::Time cancelled_at;  // When the fake saw the cancellation.
  int updates_written = 0;  // Kept up to date while the call streams.
  bool metadata_sent_at_once = false;
};

struct CancelAnswer {
  grpc::Status status = grpc::Status::OK;
  bool cancelled = true;
  absl::Duration delay = absl::ZeroDuration();  // Before answering.
};

class FakeOrchestrator final : public agentstream::v1::Orchestrator::Service {
 public:
  using ScriptFn =
      std::function<RunScript(const agentstream::v1::RunRequest& request)>;
  using AttachScriptFn =
      std::function<RunScript(const agentstream::v1::AttachRequest& request)>;
  using CancelFn = std::function<CancelAnswer(const std::string& request_id)>;

  FakeOrchestrator();
  ~FakeOrchestrator() override;

  // Starts the server on 127.0.0.1:0; returns the port (0 on failure).
  int Start();
  void Shutdown();
  int port() const { return port_; }
  std::string address() const;

  void SetScript(ScriptFn script);
  // Every Run call plays `script`.
  void SetScript(RunScript script) {
    SetScript([script](const agentstream::v1::RunRequest&) { return script; });
  }
  // Default: StandardScript(20 ms)'s updates after after_seq, then OK;
  // NOT_FOUND for ids starting with "unknown"; INVALID_ARGUMENT past seq 5.
  void SetAttachScript(AttachScriptFn script);
  // Every Attach call plays `script`.
  void SetAttachScript(RunScript script) {
    SetAttachScript(
        [script](const agentstream::v1::AttachRequest&) { return script; });
  }
  // Default: NOT_FOUND for ids starting with "unknown", cancelled=false for
  // ids starting with "ended", else cancelled=true.
  void SetCancel(CancelFn cancel);
  std::vector<RunCallRecord> calls() const;
  std::vector<RunCallRecord> attach_calls() const;
  std::vector<std::string> cancel_calls() const;
  bool WaitForAttachCalls(size_t n, absl::Duration timeout) const;
  std::optional<RunCallRecord> WaitForAttachEnd(size_t index,
                                                absl::Duration timeout) const;
  // Waits until at least `n` Run calls were made.
  bool WaitForCalls(size_t n, absl::Duration timeout) const;
  // Waits until call `index` ended; returns its record.
  std::optional<RunCallRecord> WaitForEnd(size_t index,
                                          absl::Duration timeout) const;

  // Orchestrator methods
  grpc::Status Run(
      grpc::ServerContext* context, const agentstream::v1::RunRequest* request,
      grpc::ServerWriter<agentstream::v1::Update>* writer) override;
  grpc::Status Attach(
      grpc::ServerContext* context,
      const agentstream::v1::AttachRequest* request,
      grpc::ServerWriter<agentstream::v1::Update>* writer) override;
  // The batched forms play the same scripts, one update per message, and
  // record into the same call lists (a test sees one list whichever form the
  // gateway calls).
  grpc::Status RunBatched(
      grpc::ServerContext* context, const agentstream::v1::RunRequest* request,
      grpc::ServerWriter<agentstream::v1::UpdateBatch>* writer) override;
  grpc::Status AttachBatched(
      grpc::ServerContext* context,
      const agentstream::v1::AttachRequest* request,
      grpc::ServerWriter<agentstream::v1::UpdateBatch>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context,
                      const agentstream::v1::CancelRequest* request,
                      agentstream::v1::CancelResponse* response) override;
  grpc::Status ListSpecialists(
      grpc::ServerContext* context,
      const agentstream::v1::ListSpecialistsRequest* request,
      agentstream::v1::ListSpecialistsResponse* response) override;

 private:
  // Sleeps `d` unless the call is cancelled first; false if cancelled.
  bool SleepUnlessCancelled(grpc::ServerContext* context, absl::Duration d);
  // Waits for `release` unless the call is cancelled first (or 30 s pass);
  // false if not released.
  bool WaitUnlessCancelled(grpc::ServerContext* context,
                           absl::Notification& release);
  // How Play sends: its initial metadata, and one update (false when the
  // stream is broken).
  struct Sender {
    std::function<void()> initial_metadata;
    std::function<bool(const agentstream::v1::Update&)> write;
  };
  template <typename Message>
  static Sender SenderFor(grpc::ServerWriter<Message>* writer);
  // Records a Run (or Attach) call and returns its script and index.
  std::pair<RunScript, size_t> RecordRun(grpc::ServerContext* context,
                                         const agentstream::v1::RunRequest& r);
  std::pair<RunScript, size_t> RecordAttach(
      grpc::ServerContext* context, const agentstream::v1::AttachRequest& r);
  // Plays `script` through `sender`, recording into `(*calls)[index]`.
  grpc::Status Play(grpc::ServerContext* context, const std::string& request_id,
                    RunScript script, const Sender& sender,
                    std::vector<RunCallRecord>* calls, size_t index);
  static std::string MetadataRequestId(grpc::ServerContext* context);

  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  ScriptFn script_ ABSL_GUARDED_BY(mu_);
  std::vector<RunCallRecord> calls_ ABSL_GUARDED_BY(mu_);
  AttachScriptFn attach_script_ ABSL_GUARDED_BY(mu_);
  std::vector<RunCallRecord> attach_calls_ ABSL_GUARDED_BY(mu_);
  CancelFn cancel_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancel_calls_ ABSL_GUARDED_BY(mu_);
};

// Script helpers: updates of each kind for `request_id` with `seq`.
agentstream::v1::Update StatusUpdate(uint64_t seq, const std::string& message);
agentstream::v1::Update ProgressUpdate(uint64_t seq,
                                       const std::string& specialist,
                                       int progress, const std::string& action);
agentstream::v1::Update ErrorUpdate(uint64_t seq, const std::string& code,
                                    const std::string& message);
agentstream::v1::Update TimeoutUpdate(uint64_t seq, const std::string& message);
agentstream::v1::Update CompleteUpdate(uint64_t seq, const std::string& answer);

// The usual script: analyzing, progress, an error, a timeout, complete,
// `gap` apart.
RunScript StandardScript(absl::Duration gap);
// One status update (`seq`, "x") at once, then after `final_delay` the end
// with `final_status` (InfiniteDuration: the call is held open until
// cancelled).
RunScript OneUpdateThen(uint64_t seq, absl::Duration final_delay,
                        grpc::Status final_status = grpc::Status::OK);
// Progress every `gap` for `count` updates, then complete.
RunScript SlowScript(absl::Duration gap, int count);
// The steps of `script` whose seq is after `after_seq` (a replay).
RunScript After(RunScript script, uint64_t after_seq);

}  // namespace agentstream::gateway::testing

#endif  // AGENTSTREAM_TESTS_UNIT_GATEWAY_FAKE_ORCHESTRATOR_H_
