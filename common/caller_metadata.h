// Who a gateway calls the orchestrator for: the gRPC metadata that carries
// the authenticated principal from the gateway to the orchestrator, which
// believes it only from a trusted peer (orchestrator/caller.h;
// docs/SECURITY.md, "Runs belong to their owner"). One definition of the
// keys for both sides. In a session, each stream's open carries the same
// pairs (SessionOpen.metadata).
#ifndef AGENTSTREAM_COMMON_CALLER_METADATA_H_
#define AGENTSTREAM_COMMON_CALLER_METADATA_H_

#include <string>
#include <utility>
#include <vector>

namespace agentstream {

// The keys (lower case, as gRPC wants).
inline constexpr char kPrincipalMetadata[] = "x-agentstream-principal";
inline constexpr char kAdminMetadata[] = "x-agentstream-admin";
// Where the end user's request came from (the gateway's client address), for
// the audit log.
inline constexpr char kClientAddressMetadata[] = "x-agentstream-client";
// The client's correlation id (its X-Request-Id at the gateway), carried into
// logs. (`x-request-id` metadata is a trusted caller's choice of a new run's
// id: orchestrator/run_manager.h, CreateRun.)
inline constexpr char kCorrelationMetadata[] = "x-correlation-id";

struct OnBehalfOf {
  std::string principal;  // Empty: anonymous (authentication off).
  bool admin = false;     // Sees and cancels every run.
  std::string client_address;
  std::string correlation_id;
};

// The metadata pairs for `who` (absent fields are left out).
inline std::vector<std::pair<std::string, std::string>> CallerMetadata(
    const OnBehalfOf& who) {
  std::vector<std::pair<std::string, std::string>> md;
  if (!who.principal.empty())
    md.emplace_back(kPrincipalMetadata, who.principal);
  if (who.admin) md.emplace_back(kAdminMetadata, "1");
  if (!who.client_address.empty()) {
    md.emplace_back(kClientAddressMetadata, who.client_address);
  }
  if (!who.correlation_id.empty()) {
    md.emplace_back(kCorrelationMetadata, who.correlation_id);
  }
  return md;
}

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_CALLER_METADATA_H_
