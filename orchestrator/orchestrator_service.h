// The gRPC adapter of the orchestrator: agentstream.v1.Orchestrator on the
// callback API.
//
// Run and Attach (and their batched forms RunBatched and AttachBatched) are
// served raw (grpc::ByteBuffer) so that each update, which the RunLog
// serializes once, goes to every follower without being serialized again: a
// message references the log entry's bytes, or copies them when small, and a
// batch is their concatenation (UpdateBatch's wire form; see
// LogEntry::batch_bytes). Each
// stream is a LogFollower with one write in flight; no reactor ever blocks.
// The batched forms differ only in framing: same statuses, same endings.
//
// Status codes: Run answers INVALID_ARGUMENT (empty or oversized message,
// unknown specialist, bad request id), ALREADY_EXISTS, UNAVAILABLE (no
// specialist), RESOURCE_EXHAUSTED "at_capacity: ... retry later" (the
// orchestrator is at --max-runs or --max-total-log-bytes; see
// run_manager.h) before any update; a request over the server's message
// limit is RESOURCE_EXHAUSTED from gRPC itself. Attach answers NOT_FOUND for an
// unknown run, INVALID_ARGUMENT when after_seq is ahead of the run, OK with no
// update when the run ended at after_seq, and OUT_OF_RANGE ("gap: ...") when
// the log no longer holds the update after `after_seq` (see
// RunManager::Attach); Cancel answers NOT_FOUND for an unknown run. Run and
// Attach streams may also end with OUT_OF_RANGE "gap: ..." or
// RESOURCE_EXHAUSTED "slow_consumer: ..." (LogFollower) without ending the run.
//
// Every call acts for a principal (caller.h, docs/SECURITY.md): a run
// belongs to whoever started it, and Attach and Cancel of anyone else's run
// are NOT_FOUND, as for an unknown run.
//
// The run's `x-request-id` is sent as initial metadata on Run, RunBatched,
// Attach and AttachBatched (in a Session, in each stream's `accepted`).
// Thread-safe; the referenced objects must outlive the service.
#ifndef AGENTSTREAM_ORCHESTRATOR_ORCHESTRATOR_SERVICE_H_
#define AGENTSTREAM_ORCHESTRATOR_ORCHESTRATOR_SERVICE_H_

#include <cstdint>

#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "orchestrator/caller.h"
#include "orchestrator/metrics.h"
#include "orchestrator/run_log.h"
#include "orchestrator/run_manager.h"
#include "orchestrator/specialist_registry.h"

namespace agentstream::orchestrator {

using OrchestratorServiceBase =
    agentstream::v1::Orchestrator::WithRawCallbackMethod_Session<
        agentstream::v1::Orchestrator::WithRawCallbackMethod_Run<
            agentstream::v1::Orchestrator::WithRawCallbackMethod_Attach<
                agentstream::v1::Orchestrator::WithRawCallbackMethod_RunBatched<
                    agentstream::v1::Orchestrator::
                        WithRawCallbackMethod_AttachBatched<
                            agentstream::v1::Orchestrator::
                                WithCallbackMethod_Cancel<
                                    agentstream::v1::Orchestrator::
                                        WithCallbackMethod_ListSpecialists<
                                            agentstream::v1::Orchestrator::
                                                Service>>>>>>>;

class OrchestratorService final : public OrchestratorServiceBase {
 public:
  // `metrics` may be null. `follower_max_lag`: see FollowerOptions.
  // `trust`: whose principal metadata is believed (caller.h).
  OrchestratorService(RunManager* manager, const SpecialistRegistry* registry,
                      OrchestratorMetrics* metrics, uint64_t follower_max_lag,
                      TrustOptions trust = {});

  // Orchestrator methods
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Run(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Attach(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* RunBatched(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* AttachBatched(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Cancel(
      grpc::CallbackServerContext* context,
      const agentstream::v1::CancelRequest* request,
      agentstream::v1::CancelResponse* response) override;
  grpc::ServerUnaryReactor* ListSpecialists(
      grpc::CallbackServerContext* context,
      const agentstream::v1::ListSpecialistsRequest* request,
      agentstream::v1::ListSpecialistsResponse* response) override;
  // Many RunBatched and AttachBatched streams over one call
  // (session_stream.h).
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Session(
      grpc::CallbackServerContext* context) override;

 private:
  // Run and RunBatched, Attach and AttachBatched: `options` tell the forms
  // apart.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* StartRun(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
      const FollowerOptions& options);
  grpc::ServerWriteReactor<grpc::ByteBuffer>* StartAttach(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
      const FollowerOptions& options);

  // Who calls (caller.h), from the call's peer and metadata.
  Caller CallerOf(const grpc::CallbackServerContext& context) const;

  RunManager* const manager_;
  const TrustOptions trust_;
  const SpecialistRegistry* const registry_;
  OrchestratorMetrics* const metrics_;
  FollowerOptions follower_options_;  // One update per message.
  FollowerOptions batched_options_;   // Batches of up to kMaxBatchBytes.
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_ORCHESTRATOR_SERVICE_H_
