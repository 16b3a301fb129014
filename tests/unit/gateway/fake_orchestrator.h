// A scripted fake of agentstream.v1.Orchestrator for the gateway's tests: a
// real gRPC server on 127.0.0.1 (port 0) whose Run streams the updates a
// script gives, with delays, then ends with the script's status. It records
// every call: the request, the x-request-id metadata, and whether and when
// the client cancelled. Thread-safe.
#ifndef AGENTSTREAM_TESTS_UNIT_GATEWAY_FAKE_ORCHESTRATOR_H_
#define AGENTSTREAM_TESTS_UNIT_GATEWAY_FAKE_ORCHESTRATOR_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"

namespace agentstream::gateway::testing {

struct ScriptStep {
  absl::Duration delay = absl::ZeroDuration();  // Before this update.
  agentstream::v1::Update update;
};

struct RunScript {
  std::vector<ScriptStep> steps;
  // After the last step, wait this long (cancellable) then end with
  // `final_status`. InfiniteDuration: hold the call open until cancelled.
  absl::Duration final_delay = absl::ZeroDuration();
  grpc::Status final_status = grpc::Status::OK;
};

struct RunCallRecord {
  agentstream::v1::RunRequest request;
  std::string metadata_request_id;  // The x-request-id metadata, if any.
  absl::Time started_at;
  bool ended = false;
  bool cancelled = false;
  absl::Time cancelled_at;  // When the fake saw the cancellation.
  int updates_written = 0;
};

class FakeOrchestrator final : public agentstream::v1::Orchestrator::Service {
 public:
  using ScriptFn =
      std::function<RunScript(const agentstream::v1::RunRequest& request)>;

  FakeOrchestrator();
  ~FakeOrchestrator() override;

  // Starts the server on 127.0.0.1:0; returns the port (0 on failure).
  int Start();
  void Shutdown();
  int port() const { return port_; }
  std::string address() const;

  void SetScript(ScriptFn script);
  std::vector<RunCallRecord> calls() const;
  // Waits until at least `n` Run calls were made.
  bool WaitForCalls(size_t n, absl::Duration timeout) const;
  // Waits until call `index` ended; returns its record.
  std::optional<RunCallRecord> WaitForEnd(size_t index,
                                          absl::Duration timeout) const;

  // Orchestrator methods
  grpc::Status Run(
      grpc::ServerContext* context, const agentstream::v1::RunRequest* request,
      grpc::ServerWriter<agentstream::v1::Update>* writer) override;
  grpc::Status ListSpecialists(
      grpc::ServerContext* context,
      const agentstream::v1::ListSpecialistsRequest* request,
      agentstream::v1::ListSpecialistsResponse* response) override;

 private:
  // Sleeps `d` unless the call is cancelled first; false if cancelled.
  bool SleepUnlessCancelled(grpc::ServerContext* context, absl::Duration d);

  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  ScriptFn script_ ABSL_GUARDED_BY(mu_);
  std::vector<RunCallRecord> calls_ ABSL_GUARDED_BY(mu_);
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
// Progress every `gap` for `count` updates, then complete.
RunScript SlowScript(absl::Duration gap, int count);

}  // namespace agentstream::gateway::testing

#endif  // AGENTSTREAM_TESTS_UNIT_GATEWAY_FAKE_ORCHESTRATOR_H_
