// The gRPC adapter: serves one Specialist as `agentstream.v1.Specialist`
// with gRPC's callback API, every form of the stream (Analyze: one Update per
// message; AnalyzeBatched: UpdateBatch, docs/CONTRACT.md "Batched streams";
// AnalyzeSession: many analyses over one call, "Specialist sessions").
//
// Each call validates its request, then runs the analysis:
//  - a blocking Specialist::Analyze on a bounded WorkerPool (limits below;
//    beyond them the call ends with RESOURCE_EXHAUSTED);
//  - an AsyncSpecialist's steps on the SDK's timer thread and on gRPC's
//    threads, so a waiting analysis holds no thread.
// Updates go through the call's StreamQueue: one write in flight; what was
// emitted meanwhile goes in the next write. A full queue holds the producer
// back (a blocking analysis waits in the sink, its CancelToken honoured; an
// asynchronous one is not stepped until there is room).
//
// The call's CancelToken trips when the client cancels the RPC (gRPC's
// OnCancel, at once), when the client's deadline passes (the SDK's timer,
// which then cancels the RPC too: the server runs without gRPC's deadline
// filter), when a write fails, and on CancelAll() (shutdown).
// Everything is counted in SpecialistMetrics; start, end and cancellation
// of each analysis are logged.
//
// Thread-safe. The specialist, clock and metrics must outlive the service.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVICE_H_
#define AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/clock.h"
#include "specialists/sdk/async_specialist.h"
#include "specialists/sdk/metrics.h"
#include "specialists/sdk/specialist.h"
#include "specialists/sdk/stream_queue.h"
#include "specialists/sdk/timer_thread.h"
#include "specialists/sdk/worker_pool.h"

namespace agentstream::specialists {

// The largest accepted `question` or `task`, in bytes.
inline constexpr size_t kMaxRequestTextBytes = 16 * 1024;

// kInvalidArgument when both question and task are empty, or either is
// larger than kMaxRequestTextBytes.
absl::Status ValidateAnalyzeRequest(const AnalyzeRequest& request);

// How many analyses run and queue, and how much each stream may hold. The
// defaults are the flags' (RegisterServerFlags).
struct AnalysisLimits {
  // Blocking analyses (Specialist::Analyze) running at once, each on a pool
  // thread; asynchronous ones need none.
  int64_t worker_threads = 32;
  // Blocking analyses waiting for a thread; beyond: RESOURCE_EXHAUSTED.
  int64_t max_waiting_analyses = 1024;
  StreamLimits stream;
};

class SpecialistService final
    : public agentstream::v1::Specialist::CallbackService {
 public:
  // `instance` is this replica's "hostname:port", stamped on every update
  // and on the card.
  SpecialistService(Specialist* specialist, std::string instance,
                    const Clock* clock, SpecialistMetrics* metrics,
                    AnalysisLimits limits = {});
  ~SpecialistService() override;

  // agentstream::v1::Specialist::CallbackService methods
  grpc::ServerUnaryReactor* Describe(
      grpc::CallbackServerContext* context,
      const agentstream::v1::DescribeRequest* request,
      SpecialistCard* card) override;
  grpc::ServerWriteReactor<agentstream::v1::Update>* Analyze(
      grpc::CallbackServerContext* context,
      const AnalyzeRequest* request) override;
  grpc::ServerWriteReactor<agentstream::v1::UpdateBatch>* AnalyzeBatched(
      grpc::CallbackServerContext* context,
      const AnalyzeRequest* request) override;
  // Many analyses over one call (analyze_session.h).
  grpc::ServerBidiReactor<agentstream::v1::AnalyzeSessionRequest,
                          agentstream::v1::SessionMessage>*
  AnalyzeSession(grpc::CallbackServerContext* context) override;

  // Sets the instance once the bound port is known.
  void SetInstance(const std::string& instance);

  // New Analyze calls are refused with UNAVAILABLE from now on.
  void StartDraining();
  // Waits until no call is in flight; false on timeout.
  bool WaitUntilIdle(absl::Duration timeout);
  // Trips the token of every in-flight analysis.
  void CancelAll(const std::string& reason);
  // Calls in flight (an analysis running or its stream still draining).
  int active() const;
  // Threads of the blocking pool alive now (for tests).
  int64_t worker_threads() const { return pool_.threads(); }
  // Blocking analyses waiting for a pool thread now (for the metrics).
  int64_t analyses_waiting() const { return pool_.waiting(); }

  class Call;  // One Analyze or AnalyzeBatched call (specialist_service.cc).

 private:
  template <typename Message>
  grpc::ServerWriteReactor<Message>* StartCall(
      grpc::CallbackServerContext* context, const AnalyzeRequest* request);
  void Unregister(int64_t id);

  Specialist* const specialist_;
  AsyncSpecialist* const async_;  // specialist_, when asynchronous.
  const Clock* const clock_;
  SpecialistMetrics* const metrics_;
  const AnalysisLimits limits_;
  const SpecialistCard card_;  // Without `instance`.

  mutable absl::Mutex mu_;
  // The card's name and this replica's instance, shared by every call's
  // sink (each call would otherwise hold a copy for as long as it lives).
  std::shared_ptr<const UpdateSink::Origin> origin_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, Call*> in_flight_ ABSL_GUARDED_BY(mu_);

  // Declared last: destroyed first, while everything they call into lives.
  WorkerPool pool_;
  TimerThread timers_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVICE_H_
