// The keys a JWT may be verified with (docs/SECURITY.md, "Authentication"),
// parsed from the three file forms of --auth=jwt. Pure functions over the
// files' contents; the files are read and re-read by reloading_file.h.
#ifndef AGENTSTREAM_GATEWAY_AUTH_JWT_KEYS_H_
#define AGENTSTREAM_GATEWAY_AUTH_JWT_KEYS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace agentstream::gateway::auth {

enum class KeyKind { kHmac, kRsa, kEcP256 };

struct VerificationKey {
  KeyKind kind = KeyKind::kHmac;
  std::string kid;  // JWKS only; empty: none
  std::string alg;  // JWKS `alg` when given: the only algorithm it serves
  // The HMAC secret's bytes, or the public key as PEM SubjectPublicKeyInfo
  // (what libjwt takes).
  std::string material;
};

struct KeySet {
  std::vector<VerificationKey> keys;  // 1..kMaxKeys
};

// The algorithms we verify and the key kind each needs (never "none").
std::optional<KeyKind> KeyKindForAlgorithm(std::string_view alg);

// --auth-jwt-secret-file: one secret per line (the line's bytes without
// the line break and trailing spaces), at least kMinHmacSecretBytes;
// blank lines and lines starting with '#' are skipped. Errors name lines.
absl::StatusOr<KeySet> ParseSecretFile(std::string_view contents);

// --auth-jwt-public-key-file: one or more "-----BEGIN PUBLIC KEY-----"
// blocks (RSA of at least kMinRsaBits, or EC P-256). Private keys and
// other blocks are refused.
absl::StatusOr<KeySet> ParsePublicKeyPem(std::string_view contents);

// --auth-jwks-file: {"keys": [...]} (RFC 7517). RSA keys need `n` and `e`,
// EC keys `crv` "P-256", `x` and `y` (32 bytes each, a point on the
// curve). Keys with `use` other than "sig", or another `kty`, are skipped;
// `kid`s must be unique. An error when no key is usable.
absl::StatusOr<KeySet> ParseJwks(std::string_view contents);

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_JWT_KEYS_H_
