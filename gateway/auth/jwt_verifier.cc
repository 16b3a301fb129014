#include "gateway/auth/jwt_verifier.h"

#include <jwt.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "common/http/ascii.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::auth {
namespace {

using Json = nlohmann::json;
using Result = std::variant<Principal, AuthFailure>;

AuthFailure Invalid(std::string description) {
  return MakeFailure(kInvalidToken, std::move(description));
}

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

// The token's header, decoded by us (libjwt has not seen the token yet).
struct Header {
  std::string alg;
  std::string kid;
};

std::optional<Header> ParseHeader(std::string_view token) {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string raw;
  if (!absl::WebSafeBase64Unescape(std::string(token.substr(0, dot)), &raw)) {
    return std::nullopt;
  }
  const Json h = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (!h.is_object()) return std::nullopt;
  Header out;
  const auto alg = h.find("alg");
  if (alg == h.end() || !alg->is_string()) return std::nullopt;
  out.alg = alg->get<std::string>();
  const auto kid = h.find("kid");
  if (kid != h.end()) {
    if (!kid->is_string() || kid->get<std::string>().size() > kMaxClaimBytes) {
      return std::nullopt;
    }
    out.kid = kid->get<std::string>();
  }
  // RFC 7515 4.1.11: extensions we do not understand must be refused.
  if (h.contains("crit")) return std::nullopt;
  return out;
}

// The shape libjwt needs, checked first so that nothing else reaches it:
// three base64url segments, at most kMaxTokenBytes.
bool WellFormed(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenBytes) return false;
  int dots = 0;
  for (char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '_')) {
      return false;
    }
  }
  return dots == 2;
}

std::optional<double> NumericClaim(const Json& claims, const char* name,
                                   bool* malformed) {
  const auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number()) {
    *malformed = true;
    return std::nullopt;
  }
  return it->get<double>();
}

std::optional<AuthFailure> CheckTimes(const Json& claims,
                                      const AuthOptions& options,
                                      absl::Time now) {
  const double t = absl::ToDoubleSeconds(now - absl::UnixEpoch());
  const double skew = absl::ToDoubleSeconds(options.clock_skew);
  bool malformed = false;
  const std::optional<double> exp = NumericClaim(claims, "exp", &malformed);
  const std::optional<double> nbf = NumericClaim(claims, "nbf", &malformed);
  if (malformed) return Invalid("exp or nbf is not a number");
  if (!exp && options.jwt_require_exp) return Invalid("the token has no exp");
  // RFC 7519 4.1.4: the current time must be before exp.
  if (exp && t >= *exp + skew) return Invalid("the token has expired");
  if (nbf && t + skew < *nbf) return Invalid("the token is not valid yet");
  return std::nullopt;
}

std::optional<AuthFailure> CheckIssuerAudience(const Json& claims,
                                               const AuthOptions& options) {
  if (!options.jwt_issuer.empty()) {
    const auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() ||
        *iss != options.jwt_issuer) {
      return Invalid("the token's issuer is not " + options.jwt_issuer);
    }
  }
  if (!options.jwt_audience.empty()) {
    const auto aud = claims.find("aud");
    bool found = false;
    if (aud != claims.end() && aud->is_string()) {
      found = *aud == options.jwt_audience;
    } else if (aud != claims.end() && aud->is_array() &&
               aud->size() <= kMaxAudiences) {
      for (const Json& a : *aud) {
        if (a.is_string() && a == options.jwt_audience) found = true;
      }
    }
    if (!found) {
      return Invalid("the token is not for audience " + options.jwt_audience);
    }
  }
  return std::nullopt;
}

// `scope` (a space-separated string, RFC 8693 4.2) or `scp` (an array of
// strings, as several issuers write it). Scopes we cannot hold make the
// token invalid rather than silently dropped.
std::optional<std::vector<std::string>> Scopes(const Json& claims) {
  std::vector<std::string> out;
  auto add = [&](std::string_view s) {
    if (s.empty()) return true;
    if (!IsValidScope(s) || out.size() == kMaxScopes) return false;
    out.emplace_back(s);
    return true;
  };
  if (const auto scope = claims.find("scope"); scope != claims.end()) {
    if (!scope->is_string()) return std::nullopt;
    const std::string& s = scope->get_ref<const std::string&>();
    size_t at = 0;
    while (at <= s.size()) {
      const size_t sp = std::min(s.find(' ', at), s.size());
      if (!add(std::string_view(s).substr(at, sp - at))) return std::nullopt;
      at = sp + 1;
    }
  }
  if (const auto scp = claims.find("scp"); scp != claims.end()) {
    if (scp->is_string()) {
      if (!add(scp->get_ref<const std::string&>())) return std::nullopt;
    } else if (scp->is_array()) {
      for (const Json& s : *scp) {
        if (!s.is_string() || !add(s.get_ref<const std::string&>())) {
          return std::nullopt;
        }
      }
    } else {
      return std::nullopt;
    }
  }
  return out;
}

// libjwt verifies the signature with `key`; its claims come back as JSON
// (so the claims we check are exactly the ones it verified).
std::optional<Json> VerifiedClaims(const std::string& token,
                                   const VerificationKey& key,
                                   std::string_view alg) {
  jwt_t* raw = nullptr;
  const int rc =
      jwt_decode(&raw, token.c_str(),
                 reinterpret_cast<const unsigned char*>(key.material.data()),
                 static_cast<int>(key.material.size()));
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  if (rc != 0 || jwt == nullptr) return std::nullopt;
  if (std::string_view(jwt_alg_str(jwt_get_alg(jwt.get()))) != alg) {
    return std::nullopt;
  }
  std::unique_ptr<char, decltype(&std::free)> json(
      jwt_get_grants_json(jwt.get(), nullptr), &std::free);
  if (json == nullptr) return std::nullopt;
  Json claims = Json::parse(json.get(), nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) return std::nullopt;
  return claims;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ResolveJwtAlgorithms(
    const AuthOptions& options) {
  const int sources = !options.jwt_secret_file.empty() +
                      !options.jwt_public_key_file.empty() +
                      !options.jwks_file.empty();
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "--auth=jwt needs exactly one of --auth-jwt-secret-file, "
        "--auth-jwt-public-key-file, --auth-jwks-file");
  }
  const bool hmac = !options.jwt_secret_file.empty();
  // Repeated or comma-separated (the flag takes either form).
  std::vector<std::string> algs;
  for (const std::string& entry : options.jwt_algorithms) {
    for (std::string_view a : http::SplitView(entry, ',')) {
      a = http::StripOws(a);
      if (!a.empty()) algs.emplace_back(a);
    }
  }
  if (algs.empty()) {
    algs = hmac ? std::vector<std::string>{"HS256"}
                : std::vector<std::string>{"RS256", "ES256"};
  }
  for (const std::string& alg : algs) {
    const std::optional<KeyKind> kind = KeyKindForAlgorithm(alg);
    if (!kind) {
      return absl::InvalidArgumentError(
          "--auth-jwt-algorithms: " + alg +
          " is not one of HS256 HS384 HS512 RS256 RS384 RS512 ES256");
    }
    if ((*kind == KeyKind::kHmac) != hmac) {
      return absl::InvalidArgumentError(
          "--auth-jwt-algorithms: " + alg +
          (hmac ? " needs a public key (--auth-jwt-public-key-file or "
                  "--auth-jwks-file)"
                : " needs --auth-jwt-secret-file (never a public key as an "
                  "HMAC secret)"));
    }
  }
  return algs;
}

Result VerifyJwt(std::string_view token, const KeySet& keys,
                 const std::vector<std::string>& algorithms,
                 const AuthOptions& options, absl::Time now,
                 absl::Time* valid_until) {
  if (!WellFormed(token)) return Invalid("the token is not a JWT");
  const std::optional<Header> header = ParseHeader(token);
  if (!header) return Invalid("the token's header is malformed");
  if (std::find(algorithms.begin(), algorithms.end(), header->alg) ==
      algorithms.end()) {
    return Invalid("the token's algorithm is not accepted");
  }
  const std::optional<KeyKind> kind = KeyKindForAlgorithm(header->alg);
  const std::string owned(token);
  std::optional<Json> claims;
  // A kid picks the JWKS key of that kid. Keys without kids (secrets, PEM
  // files) ignore it: each key of the kind is tried (several during a
  // rotation).
  const bool by_kid =
      !header->kid.empty() &&
      std::any_of(keys.keys.begin(), keys.keys.end(),
                  [](const VerificationKey& k) { return !k.kid.empty(); });
  bool kid_known = !by_kid;
  for (const VerificationKey& key : keys.keys) {
    if (key.kind != kind) continue;
    if (!key.alg.empty() && key.alg != header->alg) continue;
    if (by_kid && key.kid != header->kid) continue;
    kid_known = true;
    claims = VerifiedClaims(owned, key, header->alg);
    if (claims) break;
  }
  if (!kid_known) return Invalid("the token's key id is unknown");
  if (!claims) return Invalid("the token's signature does not verify");
  if (auto f = CheckTimes(*claims, options, now)) return *f;
  if (auto f = CheckIssuerAudience(*claims, options)) return *f;
  const auto sub = claims->find("sub");
  if (sub == claims->end() || !sub->is_string() ||
      !IsValidPrincipalName(sub->get_ref<const std::string&>())) {
    return Invalid("the token has no valid sub");
  }
  std::optional<std::vector<std::string>> scopes = Scopes(*claims);
  if (!scopes) return Invalid("the token's scope or scp is malformed");
  if (valid_until != nullptr) {
    const auto exp = claims->find("exp");
    *valid_until = exp == claims->end()
                       ? absl::InfiniteFuture()
                       : absl::UnixEpoch() + absl::Seconds(exp->get<double>()) +
                             options.clock_skew;
  }
  return MakePrincipal(sub->get<std::string>(), std::move(*scopes),
                       options.admin_scope, options.metrics_scope);
}

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(
    const AuthOptions& options, const Clock* clock) {
  absl::StatusOr<std::vector<std::string>> algs = ResolveJwtAlgorithms(options);
  if (!algs.ok()) return algs.status();
  std::string path;
  absl::StatusOr<KeySet> (*parse)(std::string_view) = nullptr;
  if (!options.jwt_secret_file.empty()) {
    path = options.jwt_secret_file;
    parse = &ParseSecretFile;
  } else if (!options.jwt_public_key_file.empty()) {
    path = options.jwt_public_key_file;
    parse = &ParsePublicKeyPem;
  } else {
    path = options.jwks_file;
    parse = &ParseJwks;
  }
  absl::StatusOr<std::unique_ptr<ReloadingFile<KeySet>>> keys =
      ReloadingFile<KeySet>::Open(
          path, kMaxKeyFileBytes,
          [parse](std::string contents)
              -> absl::StatusOr<std::shared_ptr<const KeySet>> {
            absl::StatusOr<KeySet> set = parse(contents);
            if (!set.ok()) return set.status();
            return std::make_shared<const KeySet>(std::move(*set));
          },
          options.reload_interval, clock);
  if (!keys.ok()) return keys.status();
  return std::unique_ptr<JwtVerifier>(
      new JwtVerifier(options, std::move(*algs), std::move(*keys), clock));
}

Result JwtVerifier::Verify(std::string_view token) const {
  std::shared_ptr<const KeySet> keys = keys_->Get();
  const absl::Time now = clock_->Now();
  // The cache is keyed by the token's SHA-256 (not the token: at most 32
  // bytes an entry, and no tokens held in memory).
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  const bool hashed = EVP_Digest(token.data(), token.size(), md, &md_len,
                                 EVP_sha256(), nullptr) == 1;
  const std::string digest(reinterpret_cast<const char*>(md),
                           hashed ? md_len : 0);
  if (hashed) {
    absl::MutexLock lock(&cache_mu_);
    if (cache_keys_ != keys) {
      // New keys: what the old ones verified is verified no more.
      cache_.clear();
      cache_keys_ = keys;
    }
    const auto it = cache_.find(digest);
    if (it != cache_.end()) {
      if (now < it->second.valid_until) return it->second.principal;
      cache_.erase(it);
    }
  }
  absl::Time valid_until;
  Result r = VerifyJwt(token, *keys, algorithms_, options_, now, &valid_until);
  if (hashed && std::holds_alternative<Principal>(r)) {
    absl::MutexLock lock(&cache_mu_);
    if (cache_keys_ == keys) {
      // Bounded simply: a full cache starts over.
      if (cache_.size() >= kMaxCachedTokens) cache_.clear();
      cache_[digest] = CachedToken{std::get<Principal>(r), valid_until};
    }
  }
  return r;
}

}  // namespace agentstream::gateway::auth
