// --auth=jwt: JSON Web Tokens (RFC 7519) verified with libjwt against the
// configured keys, then their claims checked (docs/SECURITY.md,
// "Authentication").
//
// Why libjwt (Debian's libjwt-dev 1.10.2) and not libcpp-jwt-dev: it
// verified HS256, RS256 and ES256 tokens made by Python's jwt and refused
// tampered ones (checked before choosing, and by jwt_verifier_test.cc), it
// is C over the OpenSSL we link anyway, and it does not throw. Like most
// JWT libraries it takes the algorithm from the token's header, so the
// checks that make that safe are ours, before libjwt sees the token: the
// header's `alg` must be one of the configured algorithms (never `none`),
// only keys of that algorithm's kind are tried (an HMAC secret never comes
// from a public key: the key-confusion attack), and libjwt's answer must
// name the same algorithm.
#ifndef AGENTSTREAM_GATEWAY_AUTH_JWT_VERIFIER_H_
#define AGENTSTREAM_GATEWAY_AUTH_JWT_VERIFIER_H_

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gateway/auth/auth_options.h"
#include "gateway/auth/jwt_keys.h"
#include "gateway/auth/principal.h"
#include "gateway/auth/reloading_file.h"

namespace agentstream::gateway::auth {

// The accepted algorithms for `options`: AuthOptions::jwt_algorithms, or
// the defaults for its key source. An error when none or more than one key
// source is set, an algorithm is unknown or `none`, or one needs a key kind
// the source cannot hold (HS* with a public key, RS*/ES256 with secrets).
absl::StatusOr<std::vector<std::string>> ResolveJwtAlgorithms(
    const AuthOptions& options);

// Verifies `token` (signature with `keys`, then the claims at `now`), with
// `algorithms` from ResolveJwtAlgorithms. Claims: `exp` (required unless
// jwt_require_exp is off) and `nbf` with clock_skew of leeway, `iss` ==
// jwt_issuer and `aud` holding jwt_audience when those are set, `sub` a
// valid principal name; scopes from `scope` (space-separated) or `scp`
// (array of strings). Failures are invalid_token with a description that
// never quotes the token. On success, `*valid_until` (when not null) is
// when the token stops being valid (`exp` plus the skew; InfiniteFuture
// without `exp`). Pure and thread-safe.
std::variant<Principal, AuthFailure> VerifyJwt(
    std::string_view token, const KeySet& keys,
    const std::vector<std::string>& algorithms, const AuthOptions& options,
    absl::Time now, absl::Time* valid_until = nullptr);

// The configured key file, re-read when it changes, and VerifyJwt.
// Verified tokens are cached (up to kMaxCachedTokens, keyed by their
// SHA-256) until their `exp` plus the skew or until the keys change: a
// signature check with libjwt costs hundreds of microseconds for RS256 and
// ES256 (it parses the PEM key on every call), a cache hit about one.
// Thread-safe.
class JwtVerifier final {
 public:
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(
      const AuthOptions& options, const Clock* clock);

  std::variant<Principal, AuthFailure> Verify(std::string_view token) const;

  // Successful loads of the key file (tests).
  uint64_t key_loads() const { return keys_->loads(); }

 private:
  JwtVerifier(const AuthOptions& options, std::vector<std::string> algorithms,
              std::unique_ptr<ReloadingFile<KeySet>> keys, const Clock* clock)
      : options_(options),
        algorithms_(std::move(algorithms)),
        keys_(std::move(keys)),
        clock_(clock) {}

  struct CachedToken {
    Principal principal;
    absl::Time valid_until;
  };

  const AuthOptions options_;
  const std::vector<std::string> algorithms_;
  const std::unique_ptr<ReloadingFile<KeySet>> keys_;
  const Clock* const clock_;
  mutable absl::Mutex cache_mu_;
  // The keys the cached tokens were verified with (held, so that a new key
  // set can never be mistaken for it).
  mutable std::shared_ptr<const KeySet> cache_keys_ ABSL_GUARDED_BY(cache_mu_);
  mutable absl::flat_hash_map<std::string, CachedToken> cache_
      ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_JWT_VERIFIER_H_
