#include "gateway/auth/token_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <string>
#include <utility>

#include "gateway/auth/lines.h"

namespace agentstream::gateway::auth {
namespace {

constexpr size_t kMaxReportedErrors = 10;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Lowercase hex of exactly `bytes` bytes.
std::optional<std::string> FromHex(std::string_view hex, size_t bytes) {
  if (hex.size() != 2 * bytes) return std::nullopt;
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::string Sha256(std::string_view salt, std::string_view secret) {
  std::string input;
  input.reserve(salt.size() + secret.size());
  input.append(salt).append(secret);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), md, &len, EVP_sha256(), nullptr) !=
      1) {
    return "";
  }
  OPENSSL_cleanse(input.data(), input.size());
  return std::string(reinterpret_cast<char*>(md), len);
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    return absl::InternalError("the CSPRNG (RAND_bytes) failed");
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < line.size()) {
    const size_t start = line.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    const size_t end = std::min(line.find_first_of(" \t", start), line.size());
    out.push_back(line.substr(start, end - start));
    at = end;
  }
  return out;
}

// One non-comment line, or why it is malformed.
std::variant<TokenEntry, std::string> ParseLine(std::string_view line) {
  const std::vector<std::string_view> f = Fields(line);
  if (f.size() != 5) {
    return "want 5 fields (id name scopes salt hash), got " +
           std::to_string(f.size());
  }
  TokenEntry e;
  if (!FromHex(f[0], kTokenIdBytes)) {
    return std::string("the id is not 16 lowercase hex digits");
  }
  e.id = std::string(f[0]);
  if (!IsValidTokenName(f[1])) return std::string("the name is not valid");
  e.name = std::string(f[1]);
  if (f[2] != "-") {
    size_t at = 0;
    while (at <= f[2].size()) {
      const size_t comma = std::min(f[2].find(',', at), f[2].size());
      const std::string_view scope = f[2].substr(at, comma - at);
      if (!IsValidScope(scope)) return std::string("a scope is not valid");
      if (e.scopes.size() == kMaxScopes) return std::string("too many scopes");
      e.scopes.emplace_back(scope);
      at = comma + 1;
    }
  }
  std::optional<std::string> salt = FromHex(f[3], kTokenSaltBytes);
  if (!salt) return std::string("the salt is not 32 lowercase hex digits");
  std::optional<std::string> hash = FromHex(f[4], 32);
  if (!hash) return std::string("the hash is not 64 lowercase hex digits");
  e.salt = std::move(*salt);
  e.hash = std::move(*hash);
  return e;
}

AuthFailure Invalid(std::string description) {
  return MakeFailure(kInvalidToken, std::move(description));
}

}  // namespace

bool IsValidTokenName(std::string_view name) {
  if (name.empty() || name.size() > kMaxSubjectBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '@' || c == ':' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<TokenTable> ParseTokenFile(std::string_view contents) {
  TokenTable table;
  std::string errors;
  size_t error_count = 0;
  auto report = [&](size_t line_no, const std::string& why) {
    if (error_count++ < kMaxReportedErrors) {
      errors += (errors.empty() ? "" : "; ") + std::string("line ") +
                std::to_string(line_no) + ": " + why;
    }
  };
  size_t line_no = 0;
  while (!contents.empty()) {
    ++line_no;
    std::string_view line = TakeLine(&contents);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    std::variant<TokenEntry, std::string> parsed = ParseLine(line);
    if (auto* why = std::get_if<std::string>(&parsed)) {
      report(line_no, *why);
      continue;
    }
    TokenEntry& e = std::get<TokenEntry>(parsed);
    e.line = line_no;
    if (table.by_id.size() == kMaxTokenFileEntries) {
      report(line_no,
             "more than " + std::to_string(kMaxTokenFileEntries) + " entries");
      break;
    }
    const std::string id = e.id;
    auto [it, inserted] = table.by_id.emplace(id, std::move(e));
    if (!inserted) {
      report(line_no, "id " + id + " is already on line " +
                          std::to_string(it->second.line));
    }
  }
  if (error_count > 0) {
    if (error_count > kMaxReportedErrors) {
      errors +=
          "; and " + std::to_string(error_count - kMaxReportedErrors) + " more";
    }
    return absl::InvalidArgumentError("malformed token file: " + errors);
  }
  return table;
}

std::optional<OpaqueToken> ParseOpaqueToken(std::string_view token) {
  if (token.substr(0, kOpaqueTokenPrefix.size()) != kOpaqueTokenPrefix) {
    return std::nullopt;
  }
  token.remove_prefix(kOpaqueTokenPrefix.size());
  const size_t id_hex = 2 * kTokenIdBytes;
  if (token.size() != id_hex + 1 + 2 * kTokenSecretBytes ||
      token[id_hex] != '_') {
    return std::nullopt;
  }
  const std::string_view id = token.substr(0, id_hex);
  std::optional<std::string> secret =
      FromHex(token.substr(id_hex + 1), kTokenSecretBytes);
  if (!FromHex(id, kTokenIdBytes) || !secret) return std::nullopt;
  return OpaqueToken{.id = std::string(id), .secret = std::move(*secret)};
}

absl::StatusOr<NewToken> MakeToken(std::string_view name,
                                   const std::vector<std::string>& scopes) {
  if (!IsValidTokenName(name)) {
    return absl::InvalidArgumentError("a token name is 1.." +
                                      std::to_string(kMaxSubjectBytes) +
                                      " of [A-Za-z0-9._@:+-]");
  }
  if (scopes.size() > kMaxScopes) {
    return absl::InvalidArgumentError("too many scopes");
  }
  std::string scope_field;
  for (const std::string& s : scopes) {
    if (!IsValidScope(s)) {
      return absl::InvalidArgumentError(
          "a scope is printable ASCII without spaces, quotes, backslashes "
          "or commas");
    }
    scope_field += (scope_field.empty() ? "" : ",") + s;
  }
  if (scope_field.empty()) scope_field = "-";
  absl::StatusOr<std::string> id = RandomBytes(kTokenIdBytes);
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> secret = RandomBytes(kTokenSecretBytes);
  if (!secret.ok()) return secret.status();
  absl::StatusOr<std::string> salt = RandomBytes(kTokenSaltBytes);
  if (!salt.ok()) return salt.status();
  const std::string hash = Sha256(*salt, *secret);
  if (hash.empty()) return absl::InternalError("SHA-256 failed");
  NewToken out;
  out.token =
      std::string(kOpaqueTokenPrefix) + ToHex(*id) + "_" + ToHex(*secret);
  out.line = ToHex(*id) + " " + std::string(name) + " " + scope_field + " " +
             ToHex(*salt) + " " + ToHex(hash) + "\n";
  OPENSSL_cleanse(secret->data(), secret->size());
  return out;
}

std::variant<Principal, AuthFailure> VerifyOpaqueToken(
    std::string_view token, const TokenTable& table,
    const AuthOptions& options) {
  std::optional<OpaqueToken> parsed = ParseOpaqueToken(token);
  if (!parsed) return Invalid("the token is not of the ast_ form");
  const auto it = table.by_id.find(parsed->id);
  if (it == table.by_id.end()) return Invalid("the token is unknown");
  const TokenEntry& e = it->second;
  const std::string hash = Sha256(e.salt, parsed->secret);
  OPENSSL_cleanse(parsed->secret.data(), parsed->secret.size());
  if (hash.size() != e.hash.size() ||
      CRYPTO_memcmp(hash.data(), e.hash.data(), hash.size()) != 0) {
    return Invalid("the token is unknown");
  }
  return MakePrincipal(e.name, e.scopes, options.admin_scope,
                       options.metrics_scope);
}

absl::StatusOr<std::unique_ptr<TokenFileVerifier>> TokenFileVerifier::Create(
    const AuthOptions& options, const Clock* clock) {
  if (options.token_file.empty()) {
    return absl::InvalidArgumentError("--auth=token needs --auth-token-file");
  }
  absl::StatusOr<std::unique_ptr<ReloadingFile<TokenTable>>> table =
      ReloadingFile<TokenTable>::Open(
          options.token_file, kMaxTokenFileBytes,
          [](std::string contents)
              -> absl::StatusOr<std::shared_ptr<const TokenTable>> {
            absl::StatusOr<TokenTable> t = ParseTokenFile(contents);
            if (!t.ok()) return t.status();
            return std::make_shared<const TokenTable>(std::move(*t));
          },
          options.reload_interval, clock);
  if (!table.ok()) return table.status();
  return std::unique_ptr<TokenFileVerifier>(
      new TokenFileVerifier(options, std::move(*table)));
}

std::variant<Principal, AuthFailure> TokenFileVerifier::Verify(
    std::string_view token) const {
  const std::shared_ptr<const TokenTable> table = table_->Get();
  return VerifyOpaqueToken(token, *table, options_);
}

}  // namespace agentstream::gateway::auth
