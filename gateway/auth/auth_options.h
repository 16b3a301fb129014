// The gateway's authentication settings (docs/SECURITY.md,
// "Authentication"): one struct whose member initializers are the defaults,
// and the bounds every parser here enforces. The gateway's flags are
// registered from this struct; each comment names its flag.
#ifndef AGENTSTREAM_GATEWAY_AUTH_AUTH_OPTIONS_H_
#define AGENTSTREAM_GATEWAY_AUTH_AUTH_OPTIONS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentstream::gateway::auth {

enum class AuthMode {
  kNone,   // Every request is the anonymous principal (./run.sh on loopback).
  kJwt,    // JSON Web Tokens (jwt_verifier.h).
  kToken,  // Opaque bearer tokens against a file of salted hashes
           // (token_file.h).
};

// "none", "jwt", "token" (the --auth values).
absl::StatusOr<AuthMode> ParseAuthMode(std::string_view name);
std::string_view AuthModeName(AuthMode mode);

struct AuthOptions {
  // --auth: none | jwt | token.
  AuthMode mode = AuthMode::kNone;

  // --auth=jwt takes exactly one key source:
  // --auth-jwt-secret-file: HMAC secrets, one per line (several for
  // rotation; '#' starts a comment line), each at least kMinHmacSecretBytes.
  std::string jwt_secret_file;
  // --auth-jwt-public-key-file: one or more PEM public keys (RSA >= 2048
  // bits, or EC P-256), concatenated.
  std::string jwt_public_key_file;
  // --auth-jwks-file: a JSON Web Key Set (RSA n/e, EC P-256 x/y), keys
  // picked by the token's `kid`.
  std::string jwks_file;
  // --auth-jwt-algorithms: the accepted `alg` values (each entry may also
  // be a comma-separated list). Never taken from the token; `none` is always
  // refused. Empty: HS256 with a secret file, RS256 and ES256 with a public key
  // or JWKS. Known: HS256 HS384 HS512 RS256 RS384 RS512 ES256.
  std::vector<std::string> jwt_algorithms;
  // --auth-jwt-issuer: the required `iss`; empty: `iss` is not checked.
  std::string jwt_issuer;
  // --auth-jwt-audience: a value `aud` (string or array) must hold; empty:
  // `aud` is not checked.
  std::string jwt_audience;
  // --auth-jwt-require-exp: whether a token without `exp` is refused.
  bool jwt_require_exp = true;
  // --auth-clock-skew-s: leeway on `exp` and `nbf`.
  absl::Duration clock_skew = absl::Seconds(60);

  // --auth-token-file: for --auth=token, the file `gateway token add`
  // writes (token_file.h).
  std::string token_file;

  // --auth-cookie: the cookie a token may come in (EventSource cannot set
  // headers).
  std::string cookie_name = "agentstream_token";
  // --auth-allow-query-token: whether an `access_token` query parameter is
  // read (off: URLs end up in logs and histories).
  bool allow_query_token = false;

  // --auth-admin-scope: the scope that sees and cancels every run.
  std::string admin_scope = "agentstream:admin";
  // --auth-metrics-scope: the scope for /metrics and /readyz (admin implies
  // it).
  std::string metrics_scope = "agentstream:metrics";

  // How often key and token files are checked for a change (on use: no
  // thread). Not a flag.
  absl::Duration reload_interval = absl::Seconds(1);
};

// Bounds on what a client or a file can make us hold (one place each).
inline constexpr size_t kMaxTokenBytes = 8 * 1024;
inline constexpr size_t kMaxSubjectBytes = 256;  // `sub`, token names
inline constexpr size_t kMaxScopeBytes = 128;    // one scope
inline constexpr size_t kMaxScopes = 64;         // scopes of one principal
inline constexpr size_t kMaxClaimBytes = 1024;   // iss, one aud, kid
inline constexpr size_t kMaxAudiences = 16;      // entries of an aud array
inline constexpr size_t kMaxKeyFileBytes = 256 * 1024;  // secrets/PEM/JWKS
inline constexpr size_t kMaxKeys = 32;                  // keys of one file
inline constexpr size_t kMinHmacSecretBytes = 32;       // RFC 7518 3.2
inline constexpr int kMinRsaBits = 2048;
inline constexpr size_t kMaxTokenFileBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxTokenFileEntries = 20000;
inline constexpr size_t kMaxCachedTokens = 4096;  // verified JWTs remembered

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_AUTH_OPTIONS_H_
