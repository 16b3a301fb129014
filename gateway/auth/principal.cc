#include "gateway/auth/principal.h"

#include <algorithm>
#include <string>
#include <utility>

#include "gateway/auth/auth_options.h"

namespace agentstream::gateway::auth {
namespace {

// A quoted-string of RFC 7230 section 3.2.6 holding `s`: '"' and '\'
// escaped, anything outside printable ASCII replaced (descriptions are our
// own texts; the replacement only guards configured values).
void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out->push_back(c);
    } else {
      out->push_back('?');
    }
  }
  out->push_back('"');
}

}  // namespace

AuthFailure MakeFailure(std::string_view error, std::string description) {
  AuthFailure f;
  f.error = std::string(error);
  f.description = std::move(description);
  return f;
}

AuthFailure InsufficientScope(std::string_view scope) {
  AuthFailure f = MakeFailure(kInsufficientScope,
                              "the request needs scope " + std::string(scope));
  f.scope = std::string(scope);
  return f;
}

int HttpStatusFor(const AuthFailure& failure) {
  if (failure.error == kInvalidRequest) return 400;
  if (failure.error == kInsufficientScope) return 403;
  return 401;
}

std::string WwwAuthenticate(const AuthFailure& failure) {
  std::string out = "Bearer realm=\"agentstream\"";
  if (failure.error.empty()) return out;
  out += ", error=";
  AppendQuoted(&out, failure.error);
  if (!failure.description.empty()) {
    out += ", error_description=";
    AppendQuoted(&out, failure.description);
  }
  if (!failure.scope.empty()) {
    out += ", scope=";
    AppendQuoted(&out, failure.scope);
  }
  return out;
}

bool HasScope(const Principal& p, std::string_view scope) {
  return std::find(p.scopes.begin(), p.scopes.end(), scope) != p.scopes.end();
}

Principal MakePrincipal(std::string name, std::vector<std::string> scopes,
                        std::string_view admin_scope,
                        std::string_view metrics_scope) {
  Principal p;
  p.name = std::move(name);
  p.scopes = std::move(scopes);
  p.admin = !admin_scope.empty() && HasScope(p, admin_scope);
  p.metrics = p.admin || (!metrics_scope.empty() && HasScope(p, metrics_scope));
  return p;
}

bool IsValidPrincipalName(std::string_view name) {
  if (name.empty() || name.size() > kMaxSubjectBytes) return false;
  for (char c : name) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

bool IsValidScope(std::string_view scope) {
  if (scope.empty() || scope.size() > kMaxScopeBytes) return false;
  for (char c : scope) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ',') {
      return false;
    }
  }
  return true;
}

}  // namespace agentstream::gateway::auth
