// The specialists this orchestrator knows: configured by `--specialist
// NAME=ADDRESS`, described at start and re-described in the background, so
// that the order in which processes start does not matter.
//
// Thread-safe. The background thread is owned by the registry and joined by
// Stop() (or the destructor).
#ifndef AGENTSTREAM_ORCHESTRATOR_SPECIALIST_REGISTRY_H_
#define AGENTSTREAM_ORCHESTRATOR_SPECIALIST_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "agentstream/v1/specialist.pb.h"
#include "orchestrator/specialist_client.h"

namespace agentstream::orchestrator {

struct SpecialistEndpoint {
  std::string name;     // As in the card: "RiskAnalyst".
  std::string address;  // "127.0.0.1:50062" or "dns:///risk-analyst:50051".
};

// Parses `NAME=ADDRESS` values (each may itself hold several, comma-
// separated, as the environment variable does). A comma-separated part
// without `=` continues the previous address, so that a multi-address gRPC
// target works: `Name=ipv4:127.0.0.1:1,127.0.0.1:2`. kInvalidArgument naming
// the bad value, or a name given twice.
absl::StatusOr<std::vector<SpecialistEndpoint>> ParseSpecialistFlags(
    const std::vector<std::string>& values);

using SpecialistClientFactory = std::function<std::shared_ptr<SpecialistClient>(
    const std::string& address)>;

class SpecialistRegistry final {
 public:
  struct Options {
    absl::Duration describe_timeout = absl::Seconds(2);
    // How often specialists not yet reachable are tried again.
    absl::Duration retry_interval = absl::Seconds(1);
    // How often reachable ones are described again (cards may change).
    absl::Duration refresh_interval = absl::Seconds(15);
  };

  SpecialistRegistry(std::vector<SpecialistEndpoint> endpoints,
                     SpecialistClientFactory factory, Options options);
  ~SpecialistRegistry();

  // Describes every specialist once (in parallel, bounded by
  // describe_timeout), then keeps retrying in a background thread.
  void Start();
  void Stop();

  // Describes the specialists not yet available (or all, if `all`), in
  // parallel; returns when every Describe has answered or timed out.
  void RefreshOnce(bool all);

  // Cards for the planner, in configuration order. A specialist not yet
  // described appears as a bare card marked explicit_only, so that it is
  // used only when named (and then fails visibly if still unreachable).
  std::vector<agentstream::v1::SpecialistCard> PlanningCards() const;
  // Null for an unknown name.
  std::shared_ptr<SpecialistClient> Client(const std::string& name) const;
  agentstream::v1::ListSpecialistsResponse List() const;
  size_t available_count() const;

 private:
  struct Entry {
    SpecialistEndpoint endpoint;
    std::shared_ptr<SpecialistClient> client;
    agentstream::v1::SpecialistCard card;
    bool available = false;
  };
  void Loop();

  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_SPECIALIST_REGISTRY_H_
