// Who is calling the orchestrator, and which runs they may see
// (docs/SECURITY.md, "Runs belong to their owner").
//
// A run belongs to the principal that started it. The principal comes from
// the call's metadata (`x-agentstream-principal`, `x-agentstream-admin`),
// but only when the calling peer is trusted: a gateway that authenticated
// the user. Which peers are trusted is `--trusted-peers`: the names of
// client certificates (mTLS, docs/SECURITY.md "Service-to-service TLS"), or
// `*` (the default) for every peer, which is what a plaintext orchestrator on
// loopback or a private network has to do. An untrusted peer is its own
// principal: `peer:<certificate name>`, or the anonymous principal (empty)
// without a certificate; it is never an administrator and cannot choose the
// id of a new run (its request id becomes the run's correlation id).
//
// Everyone, trusted or not, sees only their own runs, unless an
// administrator: anyone else's run is answered as an unknown one would be
// (NOT_FOUND), so nothing tells whether it exists.
#ifndef AGENTSTREAM_ORCHESTRATOR_CALLER_H_
#define AGENTSTREAM_ORCHESTRATOR_CALLER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/caller_metadata.h"

namespace agentstream::orchestrator {

// The longest principal kept (longer ones are refused by the gateway; here
// they are cut, so that a log line stays bounded).
inline constexpr size_t kMaxPrincipalBytes = 256;

struct TrustOptions {
  // Certificate names whose principal metadata is believed; "*": every peer.
  std::vector<std::string> trusted_peers = {"*"};
};

struct Caller {
  // The run owner this caller acts as; empty: anonymous.
  std::string principal;
  // Sees and cancels every run.
  bool admin = false;
  // A trusted peer: may set the principal and choose a new run's id.
  bool trusted = false;
  // The peer's certificate name (empty: plaintext) and address, and the end
  // user's address as the gateway reports it: for the audit log.
  std::string peer_identity;
  std::string peer_address;
  std::string client_address;
  // The caller's correlation id (x-request-id), if any.
  std::string correlation_id;
};

// A trusted anonymous caller: the orchestrator's own calls and tests.
inline Caller LocalCaller() {
  Caller caller;
  caller.trusted = true;
  return caller;
}

// Reads metadata by key (empty when absent).
using MetadataLookup = std::function<std::string(std::string_view key)>;

// Resolves the caller of each stream of a session from its open's metadata.
using CallerResolver = std::function<Caller(const MetadataLookup& metadata)>;

// The caller of one call (or of one stream of a session: its open's
// metadata). `peer_identity`: the verified client certificate's name, empty
// when plaintext.
Caller ResolveCaller(const TrustOptions& trust, std::string_view peer_identity,
                     std::string_view peer_address,
                     const MetadataLookup& metadata);

// Whether `caller` may see and cancel a run owned by `owner`.
bool MayAccess(const Caller& caller, std::string_view owner);

// A fixed-size key of an owner, for what is kept of ended runs (tombstones).
uint64_t OwnerKey(std::string_view owner);
// MayAccess for a run of which only its owner's key is left.
bool MayAccessKey(const Caller& caller, uint64_t owner_key);

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_CALLER_H_
