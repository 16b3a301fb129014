#include "specialists/sdk/specialist_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/metrics_endpoint.h"
#include "common/log.h"
#include "common/process_util.h"
#include "specialists/sdk/specialist_service.h"

namespace agentstream::specialists {

struct SpecialistServer::Impl {
  ServerOptions options;
  std::unique_ptr<Specialist> specialist;
  std::unique_ptr<SpecialistMetrics> metrics;
  std::unique_ptr<SpecialistService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string instance;
  std::unique_ptr<http::MetricsEndpoint> http;
  int metrics_port = -1;
  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;

  absl::Status StartMetrics();
  void DoShutdown();
};

absl::Status SpecialistServer::Impl::StartMetrics() {
  if (options.metrics_port < 0) return absl::OkStatus();
  SpecialistMetrics* m = metrics.get();
  // The endpoint stops before the service goes (members end in reverse).
  const SpecialistService* s = service.get();
  auto endpoint = http::MetricsEndpoint::Start(
      options.host, static_cast<int>(options.metrics_port), [m, s] {
        m->SetAnalysesWaiting(s->analyses_waiting());
        return m->RenderPrometheus();
      });
  if (!endpoint.ok()) return endpoint.status();
  http = *std::move(endpoint);
  metrics_port = http->port();
  return WritePortFile(options.metrics_port_file, metrics_port);
}

void SpecialistServer::Impl::DoShutdown() {
  {
    absl::MutexLock lock(&shutdown_mu);
    if (shut_down) return;
    shut_down = true;
  }
  const int in_flight = service->active();
  AS_LOG(INFO) << "shutting down: draining " << in_flight
               << " analyses for up to " << options.drain_timeout_ms << " ms";
  service->StartDraining();
  if (auto* health = server->GetHealthCheckService(); health != nullptr) {
    health->Shutdown();
  }
  const absl::Duration drain = absl::Milliseconds(options.drain_timeout_ms);
  // New analyses are refused (UNAVAILABLE, so clients retry elsewhere) while
  // the ones in flight finish; then the server stops. Server::Shutdown is
  // called only once nothing runs: with a deadline it would also wait for
  // idle client connections to go away.
  if (!service->WaitUntilIdle(drain)) {
    AS_LOG(WARNING) << "drain timeout: cancelling " << service->active()
                    << " analyses";
    service->CancelAll("shutdown");
    if (!service->WaitUntilIdle(absl::Seconds(5))) {
      AS_LOG(WARNING) << service->active()
                      << " analyses ignore cancellation; stopping anyway";
    }
  }
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(100));
  if (http != nullptr) http->Stop();
  AS_LOG(INFO) << "shut down";
}

SpecialistServer::SpecialistServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

SpecialistServer::~SpecialistServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<SpecialistServer>> SpecialistServer::Start(
    std::unique_ptr<Specialist> specialist, ServerOptions options) {
  const AnalysisLimits& limits = options.limits;
  if (limits.worker_threads < 1 || limits.max_waiting_analyses < 0 ||
      limits.stream.max_bytes < 1 || limits.stream.max_updates < 1) {
    return absl::InvalidArgumentError(
        "--worker-threads, --stream-queue-bytes and --stream-queue-updates "
        "must be >= 1, --max-waiting-analyses >= 0");
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->specialist = std::move(specialist);
  const SpecialistCard card = impl->specialist->Card();
  impl->metrics = std::make_unique<SpecialistMetrics>(card.name());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address =
      absl::StrCat(impl->options.host.find(':') != std::string::npos
                       ? absl::StrCat("[", impl->options.host, "]")
                       : impl->options.host,
                   ":", impl->options.port);
  int bound_port = 0;
  builder.AddListeningPort(address, *credentials, &bound_port);
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_AGE_MS,
      static_cast<int>(impl->options.max_connection_age_ms));
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
      static_cast<int>(impl->options.max_connection_age_grace_ms));
  // Requests and updates go uncompressed (docs/SPECIALISTS.md, "Memory per
  // call"): every filter on the server's stack holds per-call state for as
  // long as the call lives, and a live run's call lives for minutes. Only
  // identity is accepted, so a compressed request is refused (UNIMPLEMENTED)
  // rather than decompressed without the filter's size check.
  // Deadlines are enforced by the SDK's timer thread, for the calls that
  // have one (specialist_service.cc), not by gRPC's filter in every call.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 0);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION, 0);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
  builder.AddChannelArgument(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET,
                             1 << GRPC_COMPRESS_NONE);
  // The instance name needs the bound port, known only once started.
  impl->service = std::make_unique<SpecialistService>(
      impl->specialist.get(), "", impl->options.clock, impl->metrics.get(),
      impl->options.limits);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  impl->port = bound_port;
  impl->instance = absl::StrCat(Hostname(), ":", impl->port);
  impl->service->SetInstance(impl->instance);
  if (absl::Status s = impl->StartMetrics(); !s.ok()) {
    impl->DoShutdown();
    return s;
  }
  if (absl::Status s = WritePortFile(impl->options.port_file, impl->port);
      !s.ok()) {
    impl->DoShutdown();
    return s;
  }
  AS_LOG(INFO) << card.name() << " listening on " << impl->options.host << ":"
               << impl->port << " (instance " << impl->instance << ")"
               << (impl->metrics_port > 0
                       ? absl::StrCat(", metrics on :", impl->metrics_port)
                       : "");
  return std::unique_ptr<SpecialistServer>(
      new SpecialistServer(std::move(impl)));
}

int SpecialistServer::port() const { return impl_->port; }
int SpecialistServer::metrics_port() const { return impl_->metrics_port; }
const SpecialistMetrics& SpecialistServer::metrics() const {
  return *impl_->metrics;
}
std::string SpecialistServer::instance() const { return impl_->instance; }
void SpecialistServer::Shutdown() { impl_->DoShutdown(); }

void RegisterServerFlags(FlagSet& flags, ServerOptions* options,
                         std::string* log_level) {
  flags.String("host", &options->host, "Address to listen on.",
               "AGENTSTREAM_HOST");
  flags.Int("port", &options->port, "gRPC port; 0 picks an ephemeral port.",
            "AGENTSTREAM_PORT");
  flags.String("port-file", &options->port_file,
               "Write the bound gRPC port to this file once listening.",
               "AGENTSTREAM_PORT_FILE");
  flags.Int("metrics-port", &options->metrics_port,
            "HTTP port for GET /metrics (Prometheus text); -1 turns it off, "
            "0 picks an ephemeral port.",
            "AGENTSTREAM_METRICS_PORT");
  flags.String("metrics-port-file", &options->metrics_port_file,
               "Write the bound metrics port to this file.",
               "AGENTSTREAM_METRICS_PORT_FILE");
  flags.Int("drain-timeout-ms", &options->drain_timeout_ms,
            "On SIGTERM, how long in-flight analyses may finish before they "
            "are cancelled.",
            "AGENTSTREAM_DRAIN_TIMEOUT_MS");
  flags.Int("max-connection-age-ms", &options->max_connection_age_ms,
            "Close client connections after this age so round-robin clients "
            "re-resolve.",
            "AGENTSTREAM_MAX_CONNECTION_AGE_MS");
  flags.Int("max-connection-age-grace-ms",
            &options->max_connection_age_grace_ms,
            "Time calls in flight get to finish on an aged connection.",
            "AGENTSTREAM_MAX_CONNECTION_AGE_GRACE_MS");
  flags.Int("worker-threads", &options->limits.worker_threads,
            "Blocking analyses running at once, each on a pool thread "
            "(asynchronous ones, such as Synthetic's, need none).",
            "AGENTSTREAM_WORKER_THREADS");
  flags.Int("max-waiting-analyses", &options->limits.max_waiting_analyses,
            "Blocking analyses that may wait for a thread; beyond, new calls "
            "get RESOURCE_EXHAUSTED.",
            "AGENTSTREAM_MAX_WAITING_ANALYSES");
  flags.Int("stream-queue-bytes", &options->limits.stream.max_bytes,
            "Per call: bytes of updates emitted but not yet taken by gRPC "
            "before the analysis is held back; also the largest batch.",
            "AGENTSTREAM_STREAM_QUEUE_BYTES");
  flags.Int("stream-queue-updates", &options->limits.stream.max_updates,
            "Per call: updates emitted but not yet taken by gRPC before the "
            "analysis is held back.",
            "AGENTSTREAM_STREAM_QUEUE_UPDATES");
  RegisterTlsFlags(flags, &options->tls);
  flags.String("log-level", log_level, "debug, info, warning or error.",
               "AGENTSTREAM_LOG_LEVEL");
}

int RunSpecialistMain(int argc, char** argv, const SpecialistMain& main) {
  BlockTerminationSignals();
  ConfigureServingRuntime();
  ServerOptions options;
  std::string log_level = "info";
  FlagSet flags(main.program, main.usage);
  RegisterServerFlags(flags, &options, &log_level);
  if (main.register_flags) main.register_flags(flags);
  ParseFlagsOrExit(flags, argc, argv);
  ValidateTlsOrExit(options.tls);
  InitLogging(main.program, ParseLogLevel(log_level));

  absl::StatusOr<std::unique_ptr<Specialist>> specialist = main.create();
  if (!specialist.ok()) {
    AS_LOG(ERROR) << "cannot start: " << specialist.status();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<SpecialistServer>> server =
      SpecialistServer::Start(*std::move(specialist), options);
  if (!server.ok()) {
    AS_LOG(ERROR) << "cannot start: " << server.status();
    return 1;
  }
  const int sig = WaitForTerminationSignal();
  AS_LOG(INFO) << "signal " << sig << " received";
  (*server)->Shutdown();
  return 0;
}

int RunSpecialistServer(std::unique_ptr<Specialist> specialist, int argc,
                        char** argv) {
  // Held by the factory, which is called exactly once.
  auto held =
      std::make_shared<std::unique_ptr<Specialist>>(std::move(specialist));
  SpecialistMain main;
  main.program = argc > 0 ? argv[0] : "specialist";
  if (size_t slash = main.program.rfind('/'); slash != std::string::npos) {
    main.program = main.program.substr(slash + 1);
  }
  main.usage = absl::StrCat("Serves the ", (*held)->Card().name(),
                            " specialist over gRPC (agentstream.v1).");
  main.create = [held]() -> absl::StatusOr<std::unique_ptr<Specialist>> {
    return std::move(*held);
  };
  return RunSpecialistMain(argc, argv, main);
}

}  // namespace agentstream::specialists
