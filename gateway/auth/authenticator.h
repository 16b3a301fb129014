// The gateway's authentication (docs/SECURITY.md, "Authentication"): from
// a request's credential to a Principal or an AuthFailure, for the mode
// AuthOptions::mode names. The HTTP layer hands in the headers and query
// (credentials.h), answers failures with HttpStatusFor() and
// WwwAuthenticate() (principal.h), and checks scopes (admin, metrics) on
// the principal.
#ifndef AGENTSTREAM_GATEWAY_AUTH_AUTHENTICATOR_H_
#define AGENTSTREAM_GATEWAY_AUTH_AUTHENTICATOR_H_

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "gateway/auth/auth_options.h"
#include "gateway/auth/credentials.h"
#include "gateway/auth/jwt_verifier.h"
#include "gateway/auth/principal.h"
#include "gateway/auth/token_file.h"

namespace agentstream::gateway::auth {

struct AuthResult {
  std::optional<Principal> principal;  // set on success
  AuthFailure failure;                 // meaningful when !principal
  // Where the credential came from (kNone when there was none, and always
  // for --auth=none). For logs: never log the token.
  CredentialSource source = CredentialSource::kNone;

  bool ok() const { return principal.has_value(); }
};

// Thread-safe: Authenticate() is called concurrently from the HTTP threads.
// Per request: the credential's extraction, then for --auth=token one hash
// lookup and one SHA-256, for --auth=jwt one SHA-256 and a cache lookup
// (a token seen before), else one signature check per candidate key (one
// with a kid). Key and token files are re-checked at most every
// AuthOptions::reload_interval, on use.
class Authenticator final {
 public:
  // Validates `options` for its mode and loads its files: an error (naming
  // the flag or the file and line) when they are missing or malformed.
  // `clock` must outlive the authenticator.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(
      const AuthOptions& options, const Clock* clock = Clock::Real());

  // --auth=none: the anonymous principal (empty name, no scopes, neither
  // admin nor metrics) for every request, whatever it carries. Otherwise:
  // no credential -> failure with an empty error; a malformed one ->
  // invalid_request; one that does not verify -> invalid_token.
  AuthResult Authenticate(const CredentialInput& input) const;

  // The same for a bare token (already extracted).
  AuthResult AuthenticateToken(std::string_view token,
                               CredentialSource source) const;

  AuthMode mode() const { return options_.mode; }
  const AuthOptions& options() const { return options_; }

 private:
  explicit Authenticator(const AuthOptions& options) : options_(options) {}

  const AuthOptions options_;
  std::unique_ptr<JwtVerifier> jwt_;           // --auth=jwt
  std::unique_ptr<TokenFileVerifier> tokens_;  // --auth=token
};

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_AUTHENTICATOR_H_
