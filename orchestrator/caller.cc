#include "orchestrator/caller.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace agentstream::orchestrator {
namespace {

bool Trusted(const TrustOptions& trust, std::string_view peer_identity) {
  return std::any_of(trust.trusted_peers.begin(), trust.trusted_peers.end(),
                     [&](const std::string& name) {
                       return name == "*" ||
                              (!peer_identity.empty() && name == peer_identity);
                     });
}

std::string Bounded(std::string s) {
  if (s.size() > kMaxPrincipalBytes) s.resize(kMaxPrincipalBytes);
  return s;
}

}  // namespace

Caller ResolveCaller(const TrustOptions& trust, std::string_view peer_identity,
                     std::string_view peer_address,
                     const MetadataLookup& metadata) {
  Caller caller;
  caller.peer_identity = std::string(peer_identity);
  caller.peer_address = std::string(peer_address);
  caller.correlation_id = Bounded(metadata(kCorrelationMetadata));
  caller.trusted = Trusted(trust, peer_identity);
  if (caller.trusted) {
    caller.principal = Bounded(metadata(kPrincipalMetadata));
    caller.admin = metadata(kAdminMetadata) == "1";
    caller.client_address = Bounded(metadata(kClientAddressMetadata));
  } else {
    caller.principal = peer_identity.empty()
                           ? ""
                           : Bounded("peer:" + std::string(peer_identity));
  }
  return caller;
}

bool MayAccess(const Caller& caller, std::string_view owner) {
  return caller.admin || caller.principal == owner;
}

uint64_t OwnerKey(std::string_view owner) { return absl::HashOf(owner); }

bool MayAccessKey(const Caller& caller, uint64_t owner_key) {
  return caller.admin || OwnerKey(caller.principal) == owner_key;
}

}  // namespace agentstream::orchestrator
