// Where a request's bearer token is (docs/SECURITY.md, "Authentication"):
// a pure function over the header values and the query string the HTTP
// layer hands in.
//
// Precedence: the Authorization header (`Bearer <token>`, scheme
// case-insensitive); else the cookie named by AuthOptions::cookie_name;
// else, only when AuthOptions::allow_query_token, the `access_token` query
// parameter. A present but malformed credential is invalid_request (it
// does not fall through to the next source).
#ifndef AGENTSTREAM_GATEWAY_AUTH_CREDENTIALS_H_
#define AGENTSTREAM_GATEWAY_AUTH_CREDENTIALS_H_

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/http/http_message.h"
#include "gateway/auth/auth_options.h"
#include "gateway/auth/principal.h"

namespace agentstream::gateway::auth {

// Views into the request; they must outlive the call they are passed to.
struct CredentialInput {
  std::vector<std::string_view> authorization;  // every Authorization field
  std::vector<std::string_view> cookie;         // every Cookie field
  std::string_view query;  // the query string without '?', still encoded
};

// Views into `request` (which must outlive the result).
CredentialInput CredentialInputFrom(const http::HttpRequest& request);

enum class CredentialSource { kNone, kAuthorizationHeader, kCookie, kQuery };
// "none", "header", "cookie", "query" (for logs; never the token itself).
std::string_view CredentialSourceName(CredentialSource source);

struct Credential {
  CredentialSource source = CredentialSource::kNone;
  std::string token;  // empty exactly when source is kNone
};

// The credential (source kNone when there is none), or an invalid_request
// failure: several Authorization fields, a scheme other than Bearer, a
// token that is empty, longer than kMaxTokenBytes or not token68 (RFC 7235
// section 2.1), an `access_token` given twice.
std::variant<Credential, AuthFailure> ExtractCredential(
    const CredentialInput& input, const AuthOptions& options);

// `target` (a request-target: path, then '?' and the query) with the value
// of every `access_token` parameter replaced by "REDACTED", for logs: a query
// token is never logged (docs/SECURITY.md). Parameter names are compared after
// percent-decoding, as ExtractCredential reads them.
std::string RedactQueryToken(std::string_view target);

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_CREDENTIALS_H_
