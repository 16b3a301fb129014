#include "gateway/auth/authenticator.h"

#include <utility>

namespace agentstream::gateway::auth {

absl::StatusOr<AuthMode> ParseAuthMode(std::string_view name) {
  if (name == "none") return AuthMode::kNone;
  if (name == "jwt") return AuthMode::kJwt;
  if (name == "token") return AuthMode::kToken;
  return absl::InvalidArgumentError("--auth: want none, jwt or token, not " +
                                    std::string(name.substr(0, 32)));
}

std::string_view AuthModeName(AuthMode mode) {
  switch (mode) {
    case AuthMode::kNone:
      return "none";
    case AuthMode::kJwt:
      return "jwt";
    case AuthMode::kToken:
      return "token";
  }
  return "none";
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    const AuthOptions& options, const Clock* clock) {
  if (options.clock_skew < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--auth-clock-skew-s must be >= 0");
  }
  if (!options.admin_scope.empty() && !IsValidScope(options.admin_scope)) {
    return absl::InvalidArgumentError("--auth-admin-scope is not a scope");
  }
  if (!options.metrics_scope.empty() && !IsValidScope(options.metrics_scope)) {
    return absl::InvalidArgumentError("--auth-metrics-scope is not a scope");
  }
  auto auth = std::unique_ptr<Authenticator>(new Authenticator(options));
  switch (options.mode) {
    case AuthMode::kNone:
      break;
    case AuthMode::kJwt: {
      absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
          JwtVerifier::Create(options, clock);
      if (!v.ok()) return v.status();
      auth->jwt_ = std::move(*v);
      break;
    }
    case AuthMode::kToken: {
      absl::StatusOr<std::unique_ptr<TokenFileVerifier>> v =
          TokenFileVerifier::Create(options, clock);
      if (!v.ok()) return v.status();
      auth->tokens_ = std::move(*v);
      break;
    }
  }
  return auth;
}

AuthResult Authenticator::Authenticate(const CredentialInput& input) const {
  AuthResult out;
  if (options_.mode == AuthMode::kNone) {
    out.principal = Principal{};
    return out;
  }
  std::variant<Credential, AuthFailure> c = ExtractCredential(input, options_);
  if (auto* f = std::get_if<AuthFailure>(&c)) {
    out.failure = std::move(*f);
    return out;
  }
  Credential& credential = std::get<Credential>(c);
  if (credential.source == CredentialSource::kNone) {
    out.failure = MakeFailure("", "no bearer token was given");
    return out;
  }
  return AuthenticateToken(credential.token, credential.source);
}

AuthResult Authenticator::AuthenticateToken(std::string_view token,
                                            CredentialSource source) const {
  AuthResult out;
  out.source = source;
  if (options_.mode == AuthMode::kNone) {
    out.principal = Principal{};
    return out;
  }
  std::variant<Principal, AuthFailure> r =
      jwt_ != nullptr ? jwt_->Verify(token) : tokens_->Verify(token);
  if (auto* p = std::get_if<Principal>(&r)) {
    out.principal = std::move(*p);
  } else {
    out.failure = std::move(std::get<AuthFailure>(r));
  }
  return out;
}

}  // namespace agentstream::gateway::auth
