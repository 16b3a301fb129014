// The whole orchestrator process minus flag parsing: registry, run manager,
// gRPC server (Orchestrator, health, reflection), metrics endpoint and the
// periodic sweep. Used by main.cc and by in-process tests.
#ifndef AGENTSTREAM_ORCHESTRATOR_ORCHESTRATOR_SERVER_H_
#define AGENTSTREAM_ORCHESTRATOR_ORCHESTRATOR_SERVER_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/http/metrics_endpoint.h"
#include "orchestrator/caller.h"
#include "orchestrator/grpc_specialist_client.h"
#include "orchestrator/metrics.h"
#include "orchestrator/orchestrator_service.h"
#include "orchestrator/run_manager.h"
#include "orchestrator/run_store.h"
#include "orchestrator/specialist_registry.h"

namespace agentstream::orchestrator {

struct OrchestratorServerOptions {
  std::string host = "127.0.0.1";
  int port = 50051;       // 0: ephemeral.
  int metrics_port = -1;  // -1: off, 0: ephemeral.
  std::vector<SpecialistEndpoint> specialists;
  RunManagerOptions runs;
  // Backlog past which a follower's superseded progress updates are skipped
  // and, counting non-progress updates, it is cut off (0: never).
  uint64_t follower_max_lag = 1024;
  // The largest request message the gRPC server reads; a larger one is
  // answered RESOURCE_EXHAUSTED by gRPC before the service sees it. A
  // RunRequest is a question of at most 16 KiB (planner.h) plus options; the
  // gateway sends at most 256 KiB of JSON.
  int max_request_bytes = 1 << 20;
  SpecialistRegistry::Options registry;
  // Null: GrpcSpecialistClient, with these options.
  SpecialistClientFactory client_factory;
  // Its `tls` also makes the server's credentials: the orchestrator is
  // one identity to the gateway and to the specialists (common/tls.h).
  GrpcSpecialistClientOptions specialist_client;
  // At most this long between sweeps (deadlines, grace, TTLs); shorter when
  // one of those is short (a tenth of the shortest, at least 10 ms). Between
  // those, the sweeper also wakes when the next pending one is due.
  absl::Duration sweep_interval = absl::Seconds(1);
  // Whose principal metadata is believed (caller.h; --trusted-peers).
  TrustOptions trust;
  // Where runs live (run_store.h): "memory" (this process alone) or
  // "redis://HOST:PORT[/DB]" (shared by every replica; docs/SCALING.md).
  std::string run_store = "memory";
  // With a Redis store: this replica's name in it (empty: HOSTNAME-PID),
  // the keys' prefix and the lease.
  std::string replica_id;
  std::string run_store_prefix = "agentstream";
  absl::Duration run_lease = absl::Seconds(3);
  // Each client connection is told to go away (GOAWAY) after about this
  // long (zero: never): a client reaching the replicas through dns:///
  // resolves again, so that replicas added since are used. Calls in flight
  // keep their connection until they end (no grace limit: the gateway's
  // sessions move to a new call on their own, session_client.h).
  absl::Duration max_connection_age = absl::Seconds(30);
};

class OrchestratorServer final {
 public:
  // Describes the specialists (bounded by the registry's timeout), then
  // listens. kUnavailable when a port cannot be bound; kInvalidArgument for
  // TLS files that are incomplete or unreadable.
  static absl::StatusOr<std::unique_ptr<OrchestratorServer>> Start(
      OrchestratorServerOptions options, const Clock* clock);
  ~OrchestratorServer();

  int port() const { return port_; }
  int metrics_port() const;
  // Cancels the runs still going (their streams end with `complete`), then
  // stops the servers within `grace`. With a shared run store, the runs are
  // handed over instead: their leases are released for another replica to
  // take them over, and their streams here end with UNAVAILABLE
  // "run_moved: ..." (attach again).
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  RunManager& manager() { return *manager_; }
  OrchestratorMetrics& metrics() { return metrics_; }

 private:
  OrchestratorServer() = default;
  void SweepLoop();

  OrchestratorMetrics metrics_;
  std::unique_ptr<SpecialistRegistry> registry_;
  std::unique_ptr<RunStore> store_;
  std::unique_ptr<RunManager> manager_;
  std::unique_ptr<OrchestratorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<http::MetricsEndpoint> metrics_server_;
  int port_ = 0;
  absl::Duration sweep_interval_;
  const Clock* clock_ = nullptr;
  std::thread sweeper_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_ORCHESTRATOR_SERVER_H_
