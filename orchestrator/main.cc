// The orchestrator binary: flags, then OrchestratorServer until SIGTERM.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/process_util.h"
#include "common/tls.h"
#include "orchestrator/grpc_specialist_client.h"
#include "orchestrator/orchestrator_server.h"
#include "orchestrator/run_manager.h"
#include "orchestrator/specialist_registry.h"

int main(int argc, char** argv) {
  agentstream::BlockTerminationSignals();
  agentstream::ConfigureServingRuntime();

  std::string host = "127.0.0.1";
  int64_t port = 50051;
  std::string port_file;
  std::vector<std::string> specialists;
  int64_t metrics_port = -1;
  std::string metrics_port_file;
  const agentstream::orchestrator::RunManagerOptions run_defaults;
  int64_t max_log_events = static_cast<int64_t>(run_defaults.max_log_events);
  int64_t max_log_bytes = static_cast<int64_t>(run_defaults.max_log_bytes);
  int64_t max_total_log_bytes =
      static_cast<int64_t>(run_defaults.max_total_log_bytes);
  int64_t max_runs = static_cast<int64_t>(run_defaults.max_runs);
  int64_t log_ttl_ms = absl::ToInt64Milliseconds(run_defaults.log_ttl);
  int64_t tombstone_ttl_ms =
      absl::ToInt64Milliseconds(run_defaults.tombstone_ttl);
  int64_t disconnect_grace_ms = 30000;
  int64_t follower_max_lag = 1024;
  int64_t max_attempts = 3;
  bool specialist_sessions =
      agentstream::orchestrator::GrpcSpecialistClientOptions().sessions;
  int64_t soft_deadline_ms = 60000;
  int64_t hard_deadline_ms = 300000;
  std::vector<std::string> specialist_deadlines;
  std::string log_level = "info";
  std::vector<std::string> trusted_peers =
      agentstream::orchestrator::TrustOptions{}.trusted_peers;
  agentstream::TlsFiles tls;
  const agentstream::orchestrator::OrchestratorServerOptions server_defaults;
  std::string run_store = server_defaults.run_store;
  std::string replica_id = server_defaults.replica_id;
  std::string run_store_prefix = server_defaults.run_store_prefix;
  int64_t run_lease_ms = absl::ToInt64Milliseconds(server_defaults.run_lease);
  int64_t max_connection_age_ms =
      absl::ToInt64Milliseconds(server_defaults.max_connection_age);

  agentstream::FlagSet flags(
      "orchestrator",
      "Plans which specialists a question needs, fans it out to them, merges\n"
      "their streams live and synthesises the answer "
      "(agentstream.v1.Orchestrator over gRPC).");
  flags.String("host", &host, "Address to listen on.", "AGENTSTREAM_HOST");
  flags.Int("port", &port, "gRPC port (0: ephemeral).", "AGENTSTREAM_PORT");
  flags.String("port-file", &port_file,
               "Write the bound gRPC port to this file once listening.",
               "AGENTSTREAM_PORT_FILE");
  flags.Repeated("specialist", &specialists,
                 "A specialist as NAME=ADDRESS (repeatable); ADDRESS is "
                 "host:port, dns:///host:port or ipv4:h:p1,h:p2 (round-robin "
                 "over replicas).",
                 "AGENTSTREAM_SPECIALISTS");
  flags.Repeated(
      "trusted-peers", &trusted_peers,
      "Client certificate names (with --tls-*) whose principal metadata "
      "(x-agentstream-principal, x-agentstream-admin) is believed: the "
      "gateways. '*': every peer (plaintext on loopback or a private "
      "network). Anyone else acts as their certificate's name and sees only "
      "their own runs (docs/SECURITY.md).",
      "AGENTSTREAM_TRUSTED_PEERS");
  flags.Int("metrics-port", &metrics_port,
            "Port of the HTTP /metrics endpoint (-1: off, 0: ephemeral).",
            "AGENTSTREAM_METRICS_PORT");
  flags.String("metrics-port-file", &metrics_port_file,
               "Write the bound metrics port to this file.",
               "AGENTSTREAM_METRICS_PORT_FILE");
  flags.Int("max-log-events", &max_log_events,
            "Updates kept per run for Attach/resume (oldest dropped beyond; "
            "resuming before them is a gap).",
            "AGENTSTREAM_MAX_LOG_EVENTS");
  flags.Int("max-log-bytes", &max_log_bytes,
            "Bytes of updates kept per run (serialized, plus ~180 bytes of "
            "bookkeeping each; oldest dropped beyond). At most "
            "--max-total-log-bytes.",
            "AGENTSTREAM_MAX_LOG_BYTES");
  flags.Int("max-total-log-bytes", &max_total_log_bytes,
            "Bytes all runs' logs (and runs' bookkeeping) may hold together. "
            "A new run needs room for one more full log (--max-log-bytes): "
            "ended runs' logs are dropped for it, earliest ended first "
            "(resuming them is then a gap); if that is not enough it is "
            "refused with RESOURCE_EXHAUSTED at_capacity. When appends take "
            "the total past the bound, ended logs are dropped, then the "
            "oldest updates of the largest live logs (their followers that "
            "still need them get a gap). 0: no bound.",
            "AGENTSTREAM_MAX_TOTAL_LOG_BYTES");
  flags.Int("max-runs", &max_runs,
            "Runs going on at once; a new run beyond is refused with "
            "RESOURCE_EXHAUSTED at_capacity (ended runs do not count). 0: no "
            "bound.",
            "AGENTSTREAM_MAX_RUNS");
  flags.Int("log-ttl-ms", &log_ttl_ms,
            "How long an ended run's log stays attachable, in milliseconds; "
            "then only its last seq is kept (24 h) so that a resume from the "
            "end still ends cleanly and an earlier one is a gap.",
            "AGENTSTREAM_LOG_TTL_MS");
  flags.Int("tombstone-ttl-ms", &tombstone_ttl_ms,
            "How long the last seq of an expired run is kept (so that a "
            "resume from its end ends cleanly), in milliseconds; in the run "
            "store too, where each costs some 330 bytes (docs/SCALING.md).",
            "AGENTSTREAM_TOMBSTONE_TTL_MS");
  flags.Int("disconnect-grace-ms", &disconnect_grace_ms,
            "How long a run lives on after its last client went away before "
            "it is cancelled, unless a client attached meanwhile (0: at once). "
            "Applies to runs with on_disconnect unspecified; CANCEL cancels at "
            "once, CONTINUE never.",
            "AGENTSTREAM_DISCONNECT_GRACE_MS");
  flags.Int("follower-max-lag", &follower_max_lag,
            "Updates a stream may fall behind the run: beyond, superseded "
            "progress updates are skipped for it, and when its non-progress "
            "backlog alone exceeds this it is ended with RESOURCE_EXHAUSTED "
            "slow_consumer (it can attach again). 0: never.",
            "AGENTSTREAM_FOLLOWER_MAX_LAG");
  flags.Bool("specialist-sessions", &specialist_sessions,
             "Open analyses as streams of Specialist.AnalyzeSession calls "
             "(a few per specialist address; docs/CONTRACT.md, \"Specialist "
             "sessions\"), falling back to a call per analysis where a "
             "specialist answers UNIMPLEMENTED.",
             "AGENTSTREAM_SPECIALIST_SESSIONS");
  flags.Int("max-attempts", &max_attempts,
            "Attempts per specialist call when it is unavailable before its "
            "first update (each may reach another replica).",
            "AGENTSTREAM_MAX_ATTEMPTS");
  flags.Int(
      "specialist-soft-deadline-ms", &soft_deadline_ms,
      "After this long a specialist gets a `timeout` update (continuing); "
      "0: never.",
      "AGENTSTREAM_SPECIALIST_SOFT_DEADLINE_MS");
  flags.Int("specialist-hard-deadline-ms", &hard_deadline_ms,
            "After this long a specialist's call is cancelled (`timeout` "
            "abandoned, outcome timed_out); 0: never.",
            "AGENTSTREAM_SPECIALIST_HARD_DEADLINE_MS");
  flags.Repeated("specialist-deadline", &specialist_deadlines,
                 "Deadlines of one specialist kind as NAME=SOFT_MS:HARD_MS "
                 "(repeatable; overrides the two flags above for it; 0 turns "
                 "one off).",
                 "AGENTSTREAM_SPECIALIST_DEADLINE");
  flags.String("run-store", &run_store,
               "Where runs live: memory (this process alone) or "
               "redis://[[USER]:PASSWORD@]HOST:PORT[/DB] (Redis Streams, "
               "shared by every orchestrator replica: any replica serves any "
               "run, and a stopped replica's runs are taken over; "
               "docs/SCALING.md).",
               "AGENTSTREAM_RUN_STORE");
  flags.String("replica-id", &replica_id,
               "This replica's name in the run store (unique per replica; "
               "empty: HOSTNAME-PID).",
               "AGENTSTREAM_REPLICA_ID");
  flags.String("run-store-prefix", &run_store_prefix,
               "Prefix of the run store's Redis keys (one per deployment).",
               "AGENTSTREAM_RUN_STORE_PREFIX");
  flags.Int("run-lease-ms", &run_lease_ms,
            "How long a replica holds a run without renewing its lease; "
            "another replica takes a run over within about this long after "
            "its owner stops (renewed every third of it; at least 300).",
            "AGENTSTREAM_RUN_LEASE_MS");
  flags.Int("max-connection-age-ms", &max_connection_age_ms,
            "Each client connection is asked to go away (GOAWAY) after about "
            "this long, so that clients reaching the replicas by dns:/// "
            "resolve again and use replicas added since; calls in flight "
            "finish on it. 0: never.",
            "AGENTSTREAM_MAX_CONNECTION_AGE_MS");
  agentstream::RegisterTlsFlags(flags, &tls);
  flags.String("log-level", &log_level, "debug, info, warning or error.",
               "AGENTSTREAM_LOG_LEVEL");
  agentstream::ParseFlagsOrExit(flags, argc, argv);
  agentstream::ValidateTlsOrExit(tls);
  agentstream::InitLogging("orchestrator",
                           agentstream::ParseLogLevel(log_level));

  absl::StatusOr<std::vector<agentstream::orchestrator::SpecialistEndpoint>>
      endpoints = agentstream::orchestrator::ParseSpecialistFlags(specialists);
  if (!endpoints.ok()) {
    AS_LOG(ERROR) << endpoints.status().message();
    return 2;
  }
  absl::StatusOr<
      std::map<std::string, agentstream::orchestrator::SpecialistDeadlines>>
      deadlines = agentstream::orchestrator::ParseSpecialistDeadlineFlags(
          specialist_deadlines);
  if (!deadlines.ok()) {
    AS_LOG(ERROR) << deadlines.status().message();
    return 2;
  }
  for (const auto& [name, unused] : *deadlines) {
    bool known = false;
    for (const auto& e : *endpoints) known = known || e.name == name;
    if (!known) {
      AS_LOG(WARNING) << "--specialist-deadline names \"" << name
                      << "\", which no --specialist configures";
    }
  }
  if (port < 0 || port > 65535 || metrics_port < -1 || metrics_port > 65535 ||
      max_log_events < 1 || max_log_bytes < 1 || max_total_log_bytes < 0 ||
      max_runs < 0 || log_ttl_ms < 0 || tombstone_ttl_ms < 1 ||
      disconnect_grace_ms < 0 || follower_max_lag < 0 || max_attempts < 1 ||
      soft_deadline_ms < 0 || hard_deadline_ms < 0 ||
      max_connection_age_ms < 0) {
    AS_LOG(ERROR) << "a port, a size, --max-attempts or a duration is out of "
                     "range";
    return 2;
  }
  if (max_total_log_bytes > 0 && max_log_bytes > max_total_log_bytes) {
    AS_LOG(ERROR) << "--max-log-bytes (" << max_log_bytes
                  << ") is more than --max-total-log-bytes ("
                  << max_total_log_bytes << ")";
    return 2;
  }
  if (endpoints->empty()) {
    AS_LOG(WARNING) << "no --specialist given: every run will be refused";
  }

  agentstream::orchestrator::OrchestratorServerOptions options;
  options.host = host;
  options.port = static_cast<int>(port);
  options.metrics_port = static_cast<int>(metrics_port);
  options.specialists = *std::move(endpoints);
  options.runs.max_log_events = static_cast<size_t>(max_log_events);
  options.runs.max_log_bytes = static_cast<size_t>(max_log_bytes);
  options.runs.max_total_log_bytes = static_cast<size_t>(max_total_log_bytes);
  options.runs.max_runs = static_cast<size_t>(max_runs);
  options.runs.max_attempts = static_cast<int>(max_attempts);
  options.specialist_client.sessions = specialist_sessions;
  options.specialist_client.tls = tls;
  options.runs.deadlines_by_kind = *std::move(deadlines);
  options.follower_max_lag = static_cast<uint64_t>(follower_max_lag);
  options.trust.trusted_peers = trusted_peers;
  options.runs.log_ttl = absl::Milliseconds(log_ttl_ms);
  options.runs.tombstone_ttl = absl::Milliseconds(tombstone_ttl_ms);
  options.runs.disconnect_grace = absl::Milliseconds(disconnect_grace_ms);
  options.runs.soft_deadline = absl::Milliseconds(soft_deadline_ms);
  options.runs.hard_deadline = absl::Milliseconds(hard_deadline_ms);
  options.run_store = run_store;
  options.replica_id = replica_id;
  options.run_store_prefix = run_store_prefix;
  options.run_lease = absl::Milliseconds(run_lease_ms);
  options.max_connection_age = absl::Milliseconds(max_connection_age_ms);

  auto server = agentstream::orchestrator::OrchestratorServer::Start(
      std::move(options), agentstream::Clock::Real());
  if (!server.ok()) {
    AS_LOG(ERROR) << server.status().message();
    return 1;
  }
  absl::Status written =
      agentstream::WritePortFile(port_file, (*server)->port());
  if (written.ok() && (*server)->metrics_port() >= 0) {
    written = agentstream::WritePortFile(metrics_port_file,
                                         (*server)->metrics_port());
  }
  if (!written.ok()) {
    AS_LOG(ERROR) << written.message();
    return 1;
  }

  const int sig = agentstream::WaitForTerminationSignal();
  AS_LOG(INFO) << "signal " << sig << ", shutting down";
  (*server)->Shutdown();
  return 0;
}
