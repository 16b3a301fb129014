// Starts the whole system as real processes on loopback for integration
// tests and benchmarks: the four built-in specialists, the orchestrator and
// the gateway, each on an ephemeral port learnt from its --port-file, each
// with its metrics endpoint. Everything is stopped by PID in the destructor.
#ifndef AGENTSTREAM_TESTS_TESTING_TOPOLOGY_H_
#define AGENTSTREAM_TESTS_TESTING_TOPOLOGY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/subprocess.h"

namespace agentstream::testing {

struct TopologyOptions {
  // Kinds to start: binary names, e.g. {"data_analyst", "synthetic"}.
  std::vector<std::string> specialists = {"data_analyst", "risk_analyst",
                                          "compliance_expert", "synthetic"};
  // The database every specialist shares; generated at first start. Empty:
  // a fresh one under the topology's directory.
  std::string db_path;
  bool start_gateway = true;
  std::vector<std::string> extra_specialist_args;
  std::vector<std::string> extra_orchestrator_args;
  std::vector<std::string> extra_gateway_args;
  // With the gateway's authentication on: the bearer token the readiness
  // check (GET /api/specialists) sends.
  std::string gateway_token;
  // Points the gateway at this orchestrator address instead of starting one.
  std::string orchestrator_address_override;
  // Processes per specialist kind (default 1). Replicas are named "<kind>",
  // "<kind>#2", ...; the orchestrator gets one --specialist flag per kind
  // listing every replica (`Name=ipv4:127.0.0.1:P1,127.0.0.1:P2`, which gRPC
  // balances round robin).
  std::map<std::string, int> replicas;
  // Orchestrator replicas (default 1), named "orchestrator",
  // "orchestrator#2", ...; the gateway reaches them round robin
  // (`ipv4:127.0.0.1:P1,127.0.0.1:P2`). More than one needs a shared store.
  int orchestrator_replicas = 1;
  // Starts a redis-server (RedisServer: loopback, a free port, AOF on) and
  // gives every orchestrator `--run-store=redis://...` and
  // `--replica-id=<its name>`.
  bool redis = false;
  // Its AOF (off: a restarted Redis has lost everything).
  bool redis_appendonly = true;
  // Replica i of the orchestrator listens on orchestrator_hosts[i] (a
  // loopback address: "127.0.0.2", ...), all of them on one port, the
  // first replica's: as replicas behind one DNS name do. Empty: each on
  // 127.0.0.1, a port of its own.
  std::vector<std::string> orchestrator_hosts;
  // The gateway's --orchestrator, "{port}" replaced by that shared port
  // (e.g. "dns://127.0.0.1:5353/orchestrators.test:{port}", a DnsServer).
  // Empty: the replicas' addresses.
  std::string gateway_orchestrator_target;
};

class Topology final {
 public:
  static absl::StatusOr<std::unique_ptr<Topology>> Start(
      TopologyOptions options);
  ~Topology();

  int gateway_port() const { return gateway_port_; }
  // Stops the gateway by PID (SIGTERM, then SIGKILL after 5 s) and starts a
  // new one with the same flags; returns its port (also gateway_port()).
  absl::StatusOr<int> RestartGateway();
  // Starts another gateway, `name` ("gateway#2"), with the first one's
  // flags but reaching only `orchestrator_address`; returns its port.
  absl::StatusOr<int> StartGateway(const std::string& name,
                                   const std::string& orchestrator_address);
  // Sends `signal` to the process `name` ("gateway", "orchestrator",
  // "synthetic", "synthetic#2", ...) and waits up to `timeout` for it to
  // exit. NotFound for an unknown name; DeadlineExceeded if it lives on.
  absl::Status StopProcess(const std::string& name, int signal,
                           absl::Duration timeout = absl::Seconds(10));
  int orchestrator_port() const { return orchestrator_port_; }
  // Starts one more orchestrator replica ("orchestrator#N") with the
  // others' flags, listening on `host` (options.orchestrator_hosts: on the
  // shared port); the gateway learns of it only through its target.
  absl::Status AddOrchestrator(const std::string& host);
  // Replica `i` (0-based) of the orchestrator: its process name, gRPC port
  // and metrics port.
  int orchestrator_count() const {
    return static_cast<int>(orchestrator_names_.size());
  }
  const std::string& orchestrator_name(int i) const {
    return orchestrator_names_[i];
  }
  int orchestrator_port(int i) const {
    return ports_.at(orchestrator_names_[i]);
  }
  int orchestrator_metrics_port(int i) const {
    return metrics_ports_.at(orchestrator_names_[i]);
  }
  // The Redis server (options.redis), else null.
  RedisServer* redis() { return redis_.get(); }
  // Process name ("synthetic", "synthetic#2") -> gRPC port / metrics port.
  int specialist_port(const std::string& kind) const;
  int specialist_metrics_port(const std::string& kind) const;
  int orchestrator_metrics_port() const { return orchestrator_metrics_port_; }
  const std::string& db_path() const { return db_path_; }
  const std::string& dir() const { return dir_.path(); }
  Subprocess* process(const std::string& name);
  // Every process's log, for failure messages.
  std::string Logs() const;

 private:
  Topology() = default;
  // `host` empty: the binary's default (127.0.0.1); `port` 0: ephemeral.
  absl::StatusOr<int> StartProcess(const std::string& name,
                                   const std::string& binary,
                                   std::vector<std::string> args,
                                   int* metrics_port,
                                   const std::string& host = "", int port = 0);
  absl::StatusOr<int> StartOrchestrator(const std::string& host, int port);

  ScopedTempDir dir_;
  // Destroyed after the processes (declared before them).
  std::unique_ptr<RedisServer> redis_;
  std::vector<std::string> orchestrator_names_;
  std::vector<std::string> orchestrator_args_;  // Every replica's flags.
  bool orchestrator_redis_ = false;             // --replica-id each.
  std::vector<std::string> gateway_args_;
  std::string db_path_;
  std::map<std::string, std::unique_ptr<Subprocess>> processes_;
  // Stop order: gateway, orchestrator, specialists.
  std::vector<std::string> start_order_;
  std::map<std::string, int> ports_;
  std::map<std::string, int> metrics_ports_;
  int gateway_port_ = 0;
  int orchestrator_port_ = 0;
  int orchestrator_metrics_port_ = 0;
};

// A database path shared by every test of the build tree (generated by the
// first specialist that starts; same seed, same data), so that each test
// process does not generate its own.
std::string SharedTestDatabase();

// Maps binary names to card names: "risk_analyst" -> "RiskAnalyst".
std::string CardNameOf(const std::string& kind);

// GET http://127.0.0.1:port/metrics: the Prometheus text. Unavailable when
// nothing answers or the answer is not 200: never an empty text that reads
// as "no metrics".
absl::StatusOr<std::string> ScrapeMetrics(int port);

// One sample of the metrics at `port`. `series` is a metric name, or a name
// with its labels exactly as the exporter renders them
// (`name{a="x",b="y"}`). A bare name matches the one sample of that name
// whatever its labels (several samples: InvalidArgument, give the labels).
// Absent samples: a labelled series whose family is declared (`# TYPE name`)
// reads 0, because that is how a labelled counter never incremented looks
// (the orchestrator and the gateway render a label value once it has been
// counted: orchestrator/metrics.cc, gateway/metrics.cc); anything else absent
// (the family undeclared, a bare name without a sample) is NotFound. An
// endpoint that cannot be read is Unavailable, never 0.
absl::StatusOr<double> ScrapeMetric(int port, const std::string& series);

// ScrapeMetric for test bodies and wait predicates: a metric that cannot be
// read is a test failure (ADD_FAILURE, with why), and the value is NaN, which
// no comparison accepts as 0 or as any other figure.
double MetricOrFail(int port, const std::string& series);

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_TOPOLOGY_H_
