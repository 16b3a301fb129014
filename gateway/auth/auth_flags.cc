#include "gateway/auth/auth_flags.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace agentstream::gateway::auth {

void RegisterAuthFlags(FlagSet& flags, AuthFlagValues* v) {
  AuthOptions& o = v->options;
  v->mode = std::string(AuthModeName(o.mode));
  v->clock_skew_s = absl::ToInt64Seconds(o.clock_skew);
  flags.String("auth", &v->mode,
               "Authentication of /api/*: none, jwt or token "
               "(docs/SECURITY.md). With it, runs belong to their principal.",
               "AGENTSTREAM_AUTH");
  flags.String("auth-jwt-secret-file", &o.jwt_secret_file,
               "--auth=jwt: HMAC secrets (HS256), one per line.",
               "AGENTSTREAM_AUTH_JWT_SECRET_FILE");
  flags.String("auth-jwt-public-key-file", &o.jwt_public_key_file,
               "--auth=jwt: PEM public keys (RS256, ES256).",
               "AGENTSTREAM_AUTH_JWT_PUBLIC_KEY_FILE");
  flags.String("auth-jwks-file", &o.jwks_file,
               "--auth=jwt: a JSON Web Key Set file; keys picked by `kid`.",
               "AGENTSTREAM_AUTH_JWKS_FILE");
  flags.Repeated("auth-jwt-algorithms", &o.jwt_algorithms,
                 "Accepted `alg` values (default: by the key source).",
                 "AGENTSTREAM_AUTH_JWT_ALGORITHMS");
  flags.String("auth-jwt-issuer", &o.jwt_issuer,
               "The required `iss` (empty: not checked).",
               "AGENTSTREAM_AUTH_JWT_ISSUER");
  flags.String("auth-jwt-audience", &o.jwt_audience,
               "A value `aud` must hold (empty: not checked).",
               "AGENTSTREAM_AUTH_JWT_AUDIENCE");
  flags.Bool("auth-jwt-require-exp", &o.jwt_require_exp,
             "Refuse tokens without `exp`.",
             "AGENTSTREAM_AUTH_JWT_REQUIRE_EXP");
  flags.Int("auth-clock-skew-s", &v->clock_skew_s,
            "Leeway on `exp` and `nbf`, in seconds.",
            "AGENTSTREAM_AUTH_CLOCK_SKEW_S");
  flags.String("auth-token-file", &o.token_file,
               "--auth=token: the file `gateway token add` writes.",
               "AGENTSTREAM_AUTH_TOKEN_FILE");
  flags.String("auth-cookie", &o.cookie_name,
               "The cookie a token may come in (for EventSource).",
               "AGENTSTREAM_AUTH_COOKIE");
  flags.Bool("auth-allow-query-token", &o.allow_query_token,
             "Also read an `access_token` query parameter (never logged).",
             "AGENTSTREAM_AUTH_ALLOW_QUERY_TOKEN");
  flags.String("auth-admin-scope", &o.admin_scope,
               "The scope that sees and cancels every run.",
               "AGENTSTREAM_AUTH_ADMIN_SCOPE");
  flags.String("auth-metrics-scope", &o.metrics_scope,
               "The scope --auth-protect-metrics/-readyz ask for.",
               "AGENTSTREAM_AUTH_METRICS_SCOPE");
  flags.Bool("auth-protect-metrics", &v->protect_metrics,
             "/metrics needs a token with the metrics scope.",
             "AGENTSTREAM_AUTH_PROTECT_METRICS");
  flags.Bool("auth-protect-readyz", &v->protect_readyz,
             "/readyz needs a token with the metrics scope.",
             "AGENTSTREAM_AUTH_PROTECT_READYZ");
}

absl::Status ApplyAuthFlags(AuthFlagValues* v) {
  absl::StatusOr<AuthMode> mode = ParseAuthMode(v->mode);
  if (!mode.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth: ", mode.status().message()));
  }
  v->options.mode = *mode;
  if (v->clock_skew_s < 0 || v->clock_skew_s > 3600) {
    return absl::InvalidArgumentError(
        "--auth-clock-skew-s must be 0..3600 seconds");
  }
  v->options.clock_skew = absl::Seconds(v->clock_skew_s);
  if ((v->protect_metrics || v->protect_readyz) && *mode == AuthMode::kNone) {
    return absl::InvalidArgumentError(
        "--auth-protect-metrics and --auth-protect-readyz need --auth=jwt or "
        "--auth=token");
  }
  return absl::OkStatus();
}

}  // namespace agentstream::gateway::auth
