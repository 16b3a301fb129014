// Who a request is (Principal) or why it is nobody (AuthFailure), and the
// RFC 6750 challenge built from the failure. Value types.
#ifndef AGENTSTREAM_GATEWAY_AUTH_PRINCIPAL_H_
#define AGENTSTREAM_GATEWAY_AUTH_PRINCIPAL_H_

#include <string>
#include <string_view>
#include <vector>

namespace agentstream::gateway::auth {

struct Principal {
  // `sub` of a JWT, the entry's name of an opaque token; empty for the
  // anonymous principal of --auth=none. IsValidPrincipalName otherwise.
  std::string name;
  std::vector<std::string> scopes;
  bool admin = false;    // holds the admin scope
  bool metrics = false;  // holds the metrics scope, or admin
};

// Error codes of RFC 6750 section 3.1.
inline constexpr std::string_view kInvalidRequest = "invalid_request";
inline constexpr std::string_view kInvalidToken = "invalid_token";
inline constexpr std::string_view kInsufficientScope = "insufficient_scope";

struct AuthFailure {
  // kInvalidRequest (a malformed credential: 400), kInvalidToken (a token
  // that does not verify: 401), kInsufficientScope (403), or empty: no
  // credential was presented (401 without an error code, RFC 6750 3.1).
  std::string error;
  // Safe to show to the client and to log: never contains the token or
  // any part of it, only fixed texts and configured values.
  std::string description;
  // With kInsufficientScope: the scope that was needed.
  std::string scope;
};

// A failure with that error code and description.
AuthFailure MakeFailure(std::string_view error, std::string description);

// The failure for a principal that lacks `scope` (e.g. /metrics).
AuthFailure InsufficientScope(std::string_view scope);

// 400 for invalid_request, 403 for insufficient_scope, else 401.
int HttpStatusFor(const AuthFailure& failure);

// The WWW-Authenticate value: `Bearer realm="agentstream"`, plus `error`
// and `error_description` (and `scope`) when the failure has an error code.
// Quoted-string values are escaped; bytes outside printable ASCII are
// replaced by '?'.
std::string WwwAuthenticate(const AuthFailure& failure);

// Whether `p` holds `scope` (exact match).
bool HasScope(const Principal& p, std::string_view scope);

// The principal `name` with `scopes`: `admin` when they hold admin_scope,
// `metrics` when they hold metrics_scope or admin_scope (empty scope names
// are never held).
Principal MakePrincipal(std::string name, std::vector<std::string> scopes,
                        std::string_view admin_scope,
                        std::string_view metrics_scope);

// A principal's name: 1..kMaxSubjectBytes of printable ASCII without
// spaces (names are logged, compared as run owners and carried to the
// orchestrator as gRPC metadata, whose values are printable ASCII; OIDC
// subjects, e-mail addresses and "idp|123" forms all fit).
bool IsValidPrincipalName(std::string_view name);

// A scope of RFC 6749 section 3.3 (printable ASCII but space, '"' and
// '\'), without ',' (the token file's separator), 1..kMaxScopeBytes.
bool IsValidScope(std::string_view scope);

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_PRINCIPAL_H_
