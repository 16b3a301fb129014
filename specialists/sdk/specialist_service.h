// The gRPC adapter: serves one Specialist as `agentstream.v1.Specialist`
// with the sync API (Analyze runs author code that blocks).
//
// For each Analyze call it validates the request, stamps updates through an
// UpdateSink, and trips the call's CancelToken when the client cancels
// (polled every 20 ms by a watcher thread, so observed within 100 ms), when
// a write fails, or on CancelAll() (shutdown). It counts everything in
// SpecialistMetrics and logs start, end and cancellation of each analysis.
//
// Thread-safe. The specialist, clock and metrics must outlive the service.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVICE_H_
#define AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/clock.h"
#include "specialists/sdk/cancel_token.h"
#include "specialists/sdk/metrics.h"
#include "specialists/sdk/specialist.h"

namespace agentstream::specialists {

// The largest accepted `question` or `task`, in bytes.
inline constexpr size_t kMaxRequestTextBytes = 16 * 1024;

// kInvalidArgument when both question and task are empty, or either is
// larger than kMaxRequestTextBytes.
absl::Status ValidateAnalyzeRequest(const AnalyzeRequest& request);

class SpecialistService final : public agentstream::v1::Specialist::Service {
 public:
  // `instance` is this replica's "hostname:port", stamped on every update
  // and on the card.
  SpecialistService(Specialist* specialist, std::string instance,
                    const Clock* clock, SpecialistMetrics* metrics);
  ~SpecialistService() override;

  // agentstream::v1::Specialist::Service methods
  grpc::Status Describe(grpc::ServerContext* context,
                        const agentstream::v1::DescribeRequest* request,
                        SpecialistCard* card) override;
  grpc::Status Analyze(
      grpc::ServerContext* context, const AnalyzeRequest* request,
      grpc::ServerWriter<agentstream::v1::Update>* writer) override;

  // Sets the instance once the bound port is known.
  void SetInstance(const std::string& instance);

  // New Analyze calls are refused with UNAVAILABLE from now on.
  void StartDraining();
  // Waits until no analysis is in flight; false on timeout.
  bool WaitUntilIdle(absl::Duration timeout);
  // Trips the token of every in-flight analysis.
  void CancelAll(const std::string& reason);
  int active() const;

 private:
  struct InFlight {
    grpc::ServerContext* context;
    CancelToken* token;
  };
  void WatchCancellations();

  Specialist* const specialist_;
  const Clock* const clock_;
  SpecialistMetrics* const metrics_;
  const SpecialistCard card_;  // Without `instance`.

  mutable absl::Mutex mu_;
  std::string instance_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_watcher_;
  std::thread watcher_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVICE_H_
