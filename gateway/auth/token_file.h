// --auth=token: opaque bearer tokens checked against a file of salted
// hashes (docs/SECURITY.md, "Issuing tokens"). The file never holds a
// token.
//
// A token is "ast_<id>_<secret>": <id> 16 lowercase hex digits (64 random
// bits, the lookup key, not secret), <secret> 64 lowercase hex digits (256
// bits from OpenSSL's CSPRNG). Each line of the file is
//
//   <id> <name> <scopes> <salt> <hash>
//
// <name> the principal's name ([A-Za-z0-9._@:+-], 1..kMaxSubjectBytes),
// <scopes> comma-separated or "-" for none, <salt> 32 hex digits (16
// random bytes), <hash> 64 hex digits, SHA-256(salt || secret) over the raw
// bytes. One round of SHA-256 is enough because the secret is 256 random
// bits, not a password: there is nothing to guess. Fields are separated by
// spaces or tabs; blank lines and lines starting with '#' are skipped. Ids
// are unique; names may repeat (rotation: add an entry for the same name,
// move clients to it, delete the old line).
#ifndef AGENTSTREAM_GATEWAY_AUTH_TOKEN_FILE_H_
#define AGENTSTREAM_GATEWAY_AUTH_TOKEN_FILE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "gateway/auth/auth_options.h"
#include "gateway/auth/principal.h"
#include "gateway/auth/reloading_file.h"

namespace agentstream::gateway::auth {

inline constexpr std::string_view kOpaqueTokenPrefix = "ast_";
inline constexpr size_t kTokenIdBytes = 8;
inline constexpr size_t kTokenSecretBytes = 32;
inline constexpr size_t kTokenSaltBytes = 16;

struct TokenEntry {
  std::string id;  // hex, as in the token
  std::string name;
  std::vector<std::string> scopes;
  std::string salt;  // raw bytes
  std::string hash;  // raw SHA-256
  size_t line = 0;   // in the file, for messages
};

struct TokenTable {
  absl::flat_hash_map<std::string, TokenEntry> by_id;
};

// The whole file, or kInvalidArgument listing the malformed lines ("line
// N: why", the first ten) and duplicate ids.
absl::StatusOr<TokenTable> ParseTokenFile(std::string_view contents);

// Whether `name` may name a token's principal.
bool IsValidTokenName(std::string_view name);

// A token's parts: the id (hex) and the secret (raw bytes), or nullopt when
// `token` is not of the ast_ form.
struct OpaqueToken {
  std::string id;
  std::string secret;
};
std::optional<OpaqueToken> ParseOpaqueToken(std::string_view token);

// A fresh token and the file line that verifies it.
struct NewToken {
  std::string token;
  std::string line;  // with its '\n'
};
absl::StatusOr<NewToken> MakeToken(std::string_view name,
                                   const std::vector<std::string>& scopes);

// Looks the token's id up (O(1)) and compares SHA-256(salt || secret) in
// constant time (CRYPTO_memcmp). Failures are invalid_token and never
// quote the token.
std::variant<Principal, AuthFailure> VerifyOpaqueToken(
    std::string_view token, const TokenTable& table,
    const AuthOptions& options);

// The configured file, re-read when it changes. Thread-safe.
class TokenFileVerifier final {
 public:
  static absl::StatusOr<std::unique_ptr<TokenFileVerifier>> Create(
      const AuthOptions& options, const Clock* clock);

  std::variant<Principal, AuthFailure> Verify(std::string_view token) const;

  uint64_t file_loads() const { return table_->loads(); }

 private:
  TokenFileVerifier(const AuthOptions& options,
                    std::unique_ptr<ReloadingFile<TokenTable>> table)
      : options_(options), table_(std::move(table)) {}

  const AuthOptions options_;
  const std::unique_ptr<ReloadingFile<TokenTable>> table_;
};

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_TOKEN_FILE_H_
