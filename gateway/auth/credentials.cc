#include "gateway/auth/credentials.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/http/ascii.h"

namespace agentstream::gateway::auth {
namespace {

AuthFailure Malformed(std::string description) {
  return MakeFailure(kInvalidRequest, std::move(description));
}

// token68 of RFC 7235 section 2.1: 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=". Every token form we accept (JWTs, ast_ tokens)
// is one.
bool IsToken68(std::string_view s) {
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < s.size(); ++i) {
    if (s[i] != '=') return false;
  }
  return true;
}

// The checks every source shares; `what` names the source in the error.
std::variant<Credential, AuthFailure> Checked(CredentialSource source,
                                              std::string_view token,
                                              std::string_view what) {
  if (token.empty()) return Malformed(std::string(what) + " is empty");
  if (token.size() > kMaxTokenBytes) {
    return Malformed(std::string(what) + " is too long");
  }
  if (!IsToken68(token)) {
    return Malformed(std::string(what) + " is not a bearer token");
  }
  return Credential{.source = source, .token = std::string(token)};
}

std::variant<Credential, AuthFailure> FromAuthorization(
    std::string_view value) {
  value = http::StripOws(value);
  const size_t space = value.find_first_of(" \t");
  const std::string_view scheme = value.substr(0, space);
  if (!http::EqualsIgnoreCase(scheme, "Bearer")) {
    return Malformed("the Authorization scheme must be Bearer");
  }
  if (space == std::string_view::npos) {
    return Malformed("the Authorization header has no token");
  }
  // RFC 7235 allows one or more spaces after the scheme.
  const std::string_view token = http::StripOws(value.substr(space));
  return Checked(CredentialSource::kAuthorizationHeader, token,
                 "the Authorization token");
}

// The first cookie named `name` in the Cookie fields (RFC 6265 section
// 5.4: "name=value" pairs separated by ';'). Pieces without '=' are
// skipped, a DQUOTE-wrapped value is unwrapped; an empty value counts as
// absent (how a browser keeps a cleared cookie).
std::optional<std::string_view> FindCookie(
    const std::vector<std::string_view>& fields, std::string_view name) {
  for (std::string_view field : fields) {
    for (std::string_view piece : http::SplitView(field, ';')) {
      piece = http::StripOws(piece);
      const size_t eq = piece.find('=');
      if (eq == std::string_view::npos) continue;
      if (http::StripOws(piece.substr(0, eq)) != name) continue;
      std::string_view value = http::StripOws(piece.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (value.empty()) continue;
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace

CredentialInput CredentialInputFrom(const http::HttpRequest& request) {
  CredentialInput in;
  for (const http::HttpHeaders::Field& f : request.headers.fields()) {
    if (http::EqualsIgnoreCase(f.name, "Authorization")) {
      in.authorization.push_back(f.value);
    } else if (http::EqualsIgnoreCase(f.name, "Cookie")) {
      in.cookie.push_back(f.value);
    }
  }
  in.query = request.query;
  return in;
}

std::string_view CredentialSourceName(CredentialSource source) {
  switch (source) {
    case CredentialSource::kNone:
      return "none";
    case CredentialSource::kAuthorizationHeader:
      return "header";
    case CredentialSource::kCookie:
      return "cookie";
    case CredentialSource::kQuery:
      return "query";
  }
  return "none";
}

std::variant<Credential, AuthFailure> ExtractCredential(
    const CredentialInput& input, const AuthOptions& options) {
  if (input.authorization.size() > 1) {
    return Malformed("more than one Authorization header");
  }
  if (input.authorization.size() == 1) {
    return FromAuthorization(input.authorization.front());
  }
  if (!options.cookie_name.empty()) {
    if (std::optional<std::string_view> v =
            FindCookie(input.cookie, options.cookie_name)) {
      return Checked(CredentialSource::kCookie, *v, "the token cookie");
    }
  }
  if (options.allow_query_token && !input.query.empty()) {
    const std::multimap<std::string, std::string> params =
        http::ParseQuery(input.query);
    const size_t n = params.count("access_token");
    if (n > 1) return Malformed("access_token is given more than once");
    if (n == 1) {
      return Checked(CredentialSource::kQuery,
                     params.find("access_token")->second, "access_token");
    }
  }
  return Credential{};
}

std::string RedactQueryToken(std::string_view target) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  // Everything after the first '?' is the query, '?' and '#' included (as
  // ParseQuery reads it: a client may send them).
  const std::string_view query = target.substr(q + 1);
  bool first = true;
  for (std::string_view piece : http::SplitView(query, '&')) {
    if (!first) out += '&';
    first = false;
    const size_t eq = piece.find('=');
    const std::string_view name = piece.substr(0, eq);
    if (http::PercentDecode(name, /*plus_as_space=*/true) == "access_token") {
      out.append(name);
      out += "=REDACTED";
    } else {
      out.append(piece);
    }
  }
  return out;
}

}  // namespace agentstream::gateway::auth
