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
  // Points the gateway at this orchestrator address instead of starting one.
  std::string orchestrator_address_override;
};

class Topology final {
 public:
  static absl::StatusOr<std::unique_ptr<Topology>> Start(
      TopologyOptions options);
  ~Topology();

  int gateway_port() const { return gateway_port_; }
  int orchestrator_port() const { return orchestrator_port_; }
  // Specialist kind (binary name) -> gRPC port / metrics port.
  int specialist_port(const std::string& kind) const;
  int specialist_metrics_port(const std::string& kind) const;
  int orchestrator_metrics_port() const { return orchestrator_metrics_port_; }
  const std::string& db_path() const { return db_path_; }
  const std::string& dir() const { return dir_; }
  Subprocess* process(const std::string& name);
  // Every process's log, for failure messages.
  std::string Logs() const;

 private:
  Topology() = default;
  absl::StatusOr<int> StartProcess(const std::string& name,
                                   const std::string& binary,
                                   std::vector<std::string> args,
                                   int* metrics_port);

  std::string dir_;
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

// Maps binary names to card names: "risk_analyst" -> "RiskAnalyst".
std::string CardNameOf(const std::string& kind);

// GET http://127.0.0.1:port/metrics and returns the value of the first
// sample whose name (with labels) starts with `series`; NaN if absent.
double ScrapeMetric(int port, const std::string& series);
std::string ScrapeMetrics(int port);

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_TOPOLOGY_H_
