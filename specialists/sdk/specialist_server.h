// Hosts a Specialist as a gRPC server: `agentstream.v1.Specialist` (Analyze
// and AnalyzeBatched, on gRPC's callback API: specialist_service.h), health,
// reflection, Prometheus metrics over HTTP, graceful shutdown.
//
// Two ways in:
//  - SpecialistServer::Start(): in-process (tests, embedding).
//  - RunSpecialistMain(): a whole main(): standard flags plus the
//    specialist's own, signals, port files, logging.
//
// Graceful shutdown (SIGTERM/SIGINT, or Shutdown()): stop accepting calls
// (health turns NOT_SERVING), let in-flight analyses finish for up to
// --drain-timeout-ms, then trip their CancelTokens; their streams end with
// UNAVAILABLE ("shut down before the analysis finished"), never a broken
// connection.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVER_H_
#define AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/flags.h"
#include "common/tls.h"
#include "specialists/sdk/metrics.h"
#include "specialists/sdk/specialist.h"
#include "specialists/sdk/specialist_service.h"

namespace agentstream::specialists {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int64_t port = 0;  // 0: ephemeral.
  std::string port_file;
  int64_t metrics_port = -1;  // -1: no metrics endpoint; 0: ephemeral.
  std::string metrics_port_file;
  int64_t drain_timeout_ms = 5000;
  // Servers cap connection age so round-robin clients re-resolve DNS and
  // new replicas get traffic; calls in flight get the grace to finish.
  int64_t max_connection_age_ms = 30000;
  int64_t max_connection_age_grace_ms = 60000;
  // Worker threads, waiting analyses, per-stream queue bounds.
  AnalysisLimits limits;
  // mTLS (common/tls.h): none of the files means plaintext.
  TlsFiles tls;
  const Clock* clock = Clock::Real();
};

class SpecialistServer final {
 public:
  // Binds, starts serving and writes the port files. kUnavailable when a
  // port cannot be bound; kInvalidArgument for limits out of range.
  static absl::StatusOr<std::unique_ptr<SpecialistServer>> Start(
      std::unique_ptr<Specialist> specialist, ServerOptions options);
  ~SpecialistServer();  // Shutdown().

  int port() const;
  int metrics_port() const;  // -1 when off.
  const SpecialistMetrics& metrics() const;
  // "hostname:port", as stamped on updates and the card.
  std::string instance() const;

  // Graceful shutdown as above. Idempotent; blocks until done.
  void Shutdown();

 private:
  struct Impl;
  explicit SpecialistServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Registers the standard flags of every specialist binary (--host, --port,
// --port-file, --metrics-port, --metrics-port-file, --drain-timeout-ms,
// --max-connection-age-ms, --max-connection-age-grace-ms, --worker-threads,
// --max-waiting-analyses, --stream-queue-bytes, --stream-queue-updates,
// --tls-cert, --tls-key, --tls-ca; environment AGENTSTREAM_<FLAG>). `log_level`
// receives --log-level.
void RegisterServerFlags(FlagSet& flags, ServerOptions* options,
                         std::string* log_level);

struct SpecialistMain {
  std::string program;  // e.g. "risk_analyst"
  std::string usage;    // One paragraph for --help.
  // Registers the specialist's own flags (may be empty).
  std::function<void(FlagSet&)> register_flags;
  // Builds the specialist once flags are parsed (e.g. opens its database).
  std::function<absl::StatusOr<std::unique_ptr<Specialist>>()> create;
};

// A complete main(): blocks termination signals, parses flags (exits 0 on
// --help, 2 on bad flags), creates the specialist (exits 1 on error), serves
// until SIGTERM/SIGINT, shuts down gracefully. Returns the exit code.
int RunSpecialistMain(int argc, char** argv, const SpecialistMain& main);

// The shortest main for a specialist without flags of its own.
int RunSpecialistServer(std::unique_ptr<Specialist> specialist, int argc,
                        char** argv);

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_SERVER_H_
