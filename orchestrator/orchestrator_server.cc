#include "orchestrator/orchestrator_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "orchestrator/grpc_specialist_client.h"
#include "orchestrator/store/redis_run_store.h"

namespace agentstream::orchestrator {
namespace {

// The sweep applies deadlines, the grace period and TTLs: it runs often
// enough for the shortest of them to be met within a tenth of it (at most
// every `configured`, at least every 10 ms).
absl::Duration SweepIntervalFor(const OrchestratorServerOptions& options) {
  absl::Duration interval = options.sweep_interval;
  auto consider = [&interval](absl::Duration d) {
    if (d > absl::ZeroDuration()) {
      interval = std::min(interval, std::max(d / 10, absl::Milliseconds(10)));
    }
  };
  consider(options.runs.soft_deadline);
  consider(options.runs.hard_deadline);
  consider(options.runs.disconnect_grace);
  consider(options.runs.log_ttl);
  for (const auto& [name, deadlines] : options.runs.deadlines_by_kind) {
    consider(deadlines.soft);
    consider(deadlines.hard);
  }
  return interval;
}

std::string DefaultReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "orchestrator");
  }
  return absl::StrCat(host, "-", getpid());
}

// The store `options.run_store` names; kInvalidArgument for a bad one.
absl::StatusOr<std::unique_ptr<RunStore>> MakeRunStore(
    const OrchestratorServerOptions& options, OrchestratorMetrics* metrics) {
  if (options.run_store.empty() || options.run_store == "memory") {
    return std::make_unique<LocalRunStore>();
  }
  absl::StatusOr<store::RedisAddress> address =
      store::ParseRedisUrl(options.run_store);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--run-store wants memory or redis://HOST:PORT: ",
                     address.status().message()));
  }
  if (options.run_lease < absl::Milliseconds(300)) {
    return absl::InvalidArgumentError("--run-lease-ms is at least 300");
  }
  store::RedisRunStoreOptions redis;
  redis.address = *address;
  redis.replica_id =
      options.replica_id.empty() ? DefaultReplicaId() : options.replica_id;
  redis.key_prefix = options.run_store_prefix;
  redis.lease = options.run_lease;
  redis.max_log_events = options.runs.max_log_events;
  redis.max_log_bytes = options.runs.max_log_bytes;
  redis.log_ttl = options.runs.log_ttl;
  redis.tombstone_ttl = options.runs.tombstone_ttl;
  redis.metrics = metrics;
  AS_LOG(INFO) << "run store " << store::RedisUrlForDisplay(*address)
               << " (prefix " << redis.key_prefix << "), replica "
               << redis.replica_id << ", lease "
               << absl::FormatDuration(redis.lease);
  return std::make_unique<store::RedisRunStore>(std::move(redis));
}

}  // namespace

absl::StatusOr<std::unique_ptr<OrchestratorServer>> OrchestratorServer::Start(
    OrchestratorServerOptions options, const Clock* clock) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.specialist_client.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<OrchestratorServer> self(new OrchestratorServer());
  SpecialistClientFactory factory = options.client_factory;
  if (!factory) {
    factory = [client = options.specialist_client](const std::string& address) {
      return std::make_shared<GrpcSpecialistClient>(address, client);
    };
  }
  self->registry_ = std::make_unique<SpecialistRegistry>(
      options.specialists, std::move(factory), options.registry);
  self->registry_->Start();
  absl::StatusOr<std::unique_ptr<RunStore>> store =
      MakeRunStore(options, &self->metrics_);
  if (!store.ok()) return store.status();
  self->store_ = *std::move(store);
  self->manager_ =
      std::make_unique<RunManager>(options.runs, self->registry_.get(), clock,
                                   &self->metrics_, self->store_.get());
  self->store_->Start(self->manager_.get());
  self->service_ = std::make_unique<OrchestratorService>(
      self->manager_.get(), self->registry_.get(), &self->metrics_,
      options.follower_max_lag, options.trust);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(
      options.host.find(':') != std::string::npos ? "[" + options.host + "]"
                                                  : options.host,
      ":", options.port);
  builder.AddListeningPort(address, *credentials, &self->port_);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  if (options.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(std::min<int64_t>(
            absl::ToInt64Milliseconds(options.max_connection_age),
            std::numeric_limits<int>::max())));
  }
  builder.RegisterService(self->service_.get());
  self->server_ = builder.BuildAndStart();
  if (self->server_ == nullptr || self->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }

  if (options.metrics_port >= 0) {
    OrchestratorMetrics* metrics = &self->metrics_;
    absl::StatusOr<std::unique_ptr<http::MetricsEndpoint>> http =
        http::MetricsEndpoint::Start(options.host, options.metrics_port,
                                     [metrics] { return metrics->Render(); });
    if (!http.ok()) return http.status();
    self->metrics_server_ = *std::move(http);
  }

  self->sweep_interval_ = SweepIntervalFor(options);
  self->clock_ = clock;
  OrchestratorServer* raw = self.get();
  self->sweeper_ = std::thread([raw] { raw->SweepLoop(); });
  AS_LOG(INFO) << "orchestrator listening on " << options.host << ":"
               << self->port_ << " with " << options.specialists.size()
               << " specialists configured, "
               << self->registry_->available_count() << " available";
  return self;
}

OrchestratorServer::~OrchestratorServer() { Shutdown(absl::Seconds(1)); }

int OrchestratorServer::metrics_port() const {
  return metrics_server_ == nullptr ? -1 : metrics_server_->port();
}

void OrchestratorServer::SweepLoop() {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]()
                      ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  absl::Duration wait = sweep_interval_;
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping), wait)) {
    mu_.Unlock();
    // Wake when the next deadline (or grace, or TTL) is due, not up to a
    // whole interval after it; the interval still bounds the wait, for
    // runs started meanwhile.
    const absl::Time next = manager_->Sweep();
    wait = std::clamp(next - clock_->Now(), absl::Milliseconds(1),
                      sweep_interval_);
    mu_.Lock();
  }
}

void OrchestratorServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();
  if (store_ != nullptr && store_->shared()) {
    // Handed over: the store releases the leases (another replica takes
    // the runs over) and writes no more; then the runs stop here.
    store_->Stop();
    if (manager_ != nullptr) {
      manager_->AbandonAll(absl::UnavailableError(
          "run_moved: this orchestrator replica is stopping; the run "
          "continues on another; attach again"));
    }
  } else if (manager_ != nullptr) {
    manager_->CancelAll("the orchestrator is stopping");
  }
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  if (metrics_server_ != nullptr) metrics_server_->Stop();
  if (registry_ != nullptr) registry_->Stop();
  if (store_ != nullptr) store_->Stop();
}

}  // namespace agentstream::orchestrator
