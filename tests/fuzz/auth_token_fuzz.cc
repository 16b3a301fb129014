// Fuzz target: the gateway's authentication (gateway/auth/, docs/SECURITY.md)
// on hostile input: credential extraction from Authorization, Cookie and the
// query; JWT verification (header parsing, then libjwt, then the claims);
// opaque ast_ tokens against a table; the token file and JWKS parsers.
//
// Input: a flags byte (bit 0: query tokens allowed; bit 1: a second
// Authorization field; bit 2: an Authorization field at all), a mode byte,
// three length-prefixed strings (the Authorization value, the Cookie value,
// the query string), then the rest. Mode % 4: 0 verifies a JWT against a
// fixed HS256 secret, 1 an opaque token against a fixed table (the token
// is the extracted credential, else the rest), 2 parses the rest as a
// token file, 3 as a JWKS. Asserted:
//   - an extracted credential is 1..kMaxTokenBytes of token68, from the
//     source precedence allows (header, else cookie, else query);
//   - every failure is invalid_request (extraction) or invalid_token
//     (verification), and its description is short printable ASCII, so it
//     cannot echo a token; WWW-Authenticate is printable ASCII;
//   - an accepted principal has a valid name and valid scopes, and admin
//     implies metrics;
//   - a parsed token file or JWKS holds only valid entries, within bounds;
//   - RedactQueryToken leaves no access_token value but "REDACTED".
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "gateway/auth/credentials.h"
#include "gateway/auth/jwt_keys.h"
#include "gateway/auth/jwt_verifier.h"
#include "gateway/auth/principal.h"
#include "gateway/auth/token_file.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::fuzz::FuzzInput;
namespace auth = agentstream::gateway::auth;

// The HS256 secret the seeds' JWTs are signed with (make_seeds.py).
constexpr std::string_view kSecret = "fuzz-secret-0123456789abcdefghijk";
// The known answer of token_file_test.cc: the seeds' opaque token.
constexpr std::string_view kTokenLine =
    "0123456789abcdef ci-bot agentstream:metrics,read "
    "6465666768696a6b6c6d6e6f70717273 "
    "b5b7acda24b967eacdce57c3e25699e6b8156e9379cd3907829a54ae4266415d\n";
constexpr size_t kMaxDescription = 80;

void CheckPrintable(std::string_view s, size_t max, const char* what) {
  FUZZ_CHECK(s.size() <= max, std::string(what) + " too long");
  for (char c : s) {
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, std::string(what) + ": unprintable");
  }
}

void CheckFailure(const auth::AuthFailure& f, std::string_view error) {
  FUZZ_CHECK(f.error == error, f.error);
  CheckPrintable(f.description, kMaxDescription, "description");
  CheckPrintable(auth::WwwAuthenticate(f), 200, "WWW-Authenticate");
}

void CheckPrincipal(const auth::Principal& p) {
  FUZZ_CHECK(auth::IsValidPrincipalName(p.name), "principal name");
  FUZZ_CHECK(p.scopes.size() <= auth::kMaxScopes, "scope count");
  for (const std::string& s : p.scopes) {
    FUZZ_CHECK(auth::IsValidScope(s), "scope");
  }
  FUZZ_CHECK(!p.admin || p.metrics, "admin without metrics");
}

bool Token68(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] != '=') {
    const char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
          c == '~' || c == '+' || c == '/')) {
      return false;
    }
    ++i;
  }
  if (i == 0) return false;
  for (; i < s.size(); ++i) {
    if (s[i] != '=') return false;
  }
  return true;
}

void Verified(const std::variant<auth::Principal, auth::AuthFailure>& r) {
  if (const auto* f = std::get_if<auth::AuthFailure>(&r)) {
    CheckFailure(*f, auth::kInvalidToken);
  } else {
    CheckPrincipal(std::get<auth::Principal>(r));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.TakeByte();
  const uint8_t mode = in.TakeByte();
  const std::string_view authorization = in.TakeString();
  const std::string_view cookie = in.TakeString();
  const std::string_view query = in.TakeString();
  const std::string_view rest = in.TakeRest();

  auth::AuthOptions options;
  options.allow_query_token = flags & 1;
  auth::CredentialInput input;
  if (flags & 4) input.authorization.push_back(authorization);
  if (flags & 2) input.authorization.push_back(authorization);
  if (!cookie.empty()) input.cookie.push_back(cookie);
  input.query = query;

  std::string token(rest);
  const auto extracted = auth::ExtractCredential(input, options);
  if (const auto* f = std::get_if<auth::AuthFailure>(&extracted)) {
    CheckFailure(*f, auth::kInvalidRequest);
  } else {
    const auth::Credential& c = std::get<auth::Credential>(extracted);
    using Source = auth::CredentialSource;
    if (!input.authorization.empty()) {
      FUZZ_CHECK(c.source == Source::kAuthorizationHeader, "not the header");
    }
    if (c.source == Source::kQuery) {
      FUZZ_CHECK(options.allow_query_token, "query token not allowed");
    }
    if (c.source == Source::kNone) {
      FUZZ_CHECK(c.token.empty(), "a token without a source");
    } else {
      FUZZ_CHECK(!c.token.empty() && c.token.size() <= auth::kMaxTokenBytes,
                 "token size");
      FUZZ_CHECK(Token68(c.token), "not token68");
      token = c.token;
      if (c.source == Source::kQuery) {
        // Every access_token value of the query is redacted: the chosen
        // one, whatever its spelling, is gone from what a log would show.
        const std::string redacted =
            auth::RedactQueryToken("/p?" + std::string(query));
        FUZZ_CHECK(redacted.substr(0, 3) == "/p?", redacted);
        for (const auto& [name, value] :
             agentstream::http::ParseQuery(redacted.substr(3))) {
          if (name == "access_token") FUZZ_CHECK(value == "REDACTED", value);
        }
      }
    }
  }

  switch (mode % 4) {
    case 0: {
      auth::KeySet keys;
      auth::VerificationKey key;
      key.kind = auth::KeyKind::kHmac;
      key.material = std::string(kSecret);
      keys.keys.push_back(key);
      options.jwt_issuer = (flags & 8) ? "https://idp.example" : "";
      options.jwt_audience = (flags & 16) ? "agentstream" : "";
      Verified(auth::VerifyJwt(token, keys, {"HS256"}, options,
                               absl::FromUnixSeconds(1700000000)));
      break;
    }
    case 1: {
      static const auth::TokenTable* const table = [] {
        return new auth::TokenTable(*auth::ParseTokenFile(kTokenLine));
      }();
      Verified(auth::VerifyOpaqueToken(token, *table, options));
      break;
    }
    case 2: {
      const absl::StatusOr<auth::TokenTable> t = auth::ParseTokenFile(rest);
      if (t.ok()) {
        FUZZ_CHECK(t->by_id.size() <= auth::kMaxTokenFileEntries, "entries");
        for (const auto& [id, e] : t->by_id) {
          FUZZ_CHECK(id == e.id && id.size() == 16, "id");
          FUZZ_CHECK(auth::IsValidTokenName(e.name), "name");
          for (const std::string& s : e.scopes) {
            FUZZ_CHECK(auth::IsValidScope(s), "scope");
          }
          FUZZ_CHECK(e.salt.size() == auth::kTokenSaltBytes, "salt");
          FUZZ_CHECK(e.hash.size() == 32, "hash");
        }
      }
      break;
    }
    case 3: {
      const absl::StatusOr<auth::KeySet> k = auth::ParseJwks(rest);
      if (k.ok()) {
        FUZZ_CHECK(!k->keys.empty() && k->keys.size() <= auth::kMaxKeys,
                   "key count");
        for (const auth::VerificationKey& key : k->keys) {
          FUZZ_CHECK(key.kind != auth::KeyKind::kHmac, "an HMAC key in JWKS");
          FUZZ_CHECK(key.material.find("BEGIN PUBLIC KEY") != std::string::npos,
                     "not PEM");
        }
      }
      break;
    }
  }
  return 0;
}
