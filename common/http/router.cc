#include "common/http/router.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/http/ascii.h"
#include "common/http/http_message.h"

namespace agentstream::http {

absl::Status Router::Add(std::string_view method, std::string_view pattern,
                         size_t route, bool serves_head) {
  if (method.empty() || method.find_first_of(" \t\r\n()<>@,;:\\\"/[]?={}") !=
                            std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad method: ", std::string(method)));
  }
  if (pattern.empty() || pattern.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("a pattern starts with '/': ", std::string(pattern)));
  }
  Route r{std::string(method), std::string(pattern), {}, route, serves_head};
  const std::vector<std::string_view> parts = SplitView(pattern.substr(1), '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      std::string_view name = p.substr(1, p.size() - 2);
      if (name.size() >= 3 && name.substr(name.size() - 3) == "...") {
        if (i + 1 != parts.size() || name.size() == 3) {
          return absl::InvalidArgumentError(absl::StrCat(
              "{rest...} must be named and last: ", std::string(pattern)));
        }
        r.segments.push_back({Segment::Kind::kRest,
                              std::string(name.substr(0, name.size() - 3))});
      } else {
        r.segments.push_back({Segment::Kind::kParam, std::string(name)});
      }
    } else if (p.find_first_of("{}") != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed pattern segment: ", std::string(pattern)));
    } else {
      r.segments.push_back({Segment::Kind::kLiteral, std::string(p)});
    }
  }
  routes_.push_back(std::move(r));
  return absl::OkStatus();
}

bool Router::Matches(const Route& route, std::string_view path,
                     std::vector<std::pair<std::string, std::string>>* params) {
  if (path.empty() || path.front() != '/') return false;
  params->clear();
  std::string_view rest = path.substr(1);
  const size_t n = route.segments.size();
  for (size_t i = 0; i < n; ++i) {
    const Segment& s = route.segments[i];
    if (s.kind == Segment::Kind::kRest) {
      params->emplace_back(s.text, PercentDecode(rest, false));
      return true;
    }
    const size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (s.kind == Segment::Kind::kLiteral) {
      if (seg != s.text) return false;
    } else {
      if (seg.empty()) return false;
      params->emplace_back(s.text, PercentDecode(seg, false));
    }
    const bool last = i + 1 == n;
    if (slash == std::string_view::npos) {
      // The path ends here: the pattern must end too (or continue with an
      // empty {rest...}).
      if (last) return true;
      if (i + 2 == n && route.segments[i + 1].kind == Segment::Kind::kRest) {
        params->emplace_back(route.segments[i + 1].text, "");
        return true;
      }
      return false;
    }
    if (last) return false;
    rest = rest.substr(slash + 1);
  }
  return false;
}

Router::Match Router::Find(std::string_view method,
                           std::string_view raw_path) const {
  Match match;
  std::vector<std::pair<std::string, std::string>> params;
  const Route* resource = nullptr;
  for (const Route& r : routes_) {
    if (Matches(r, raw_path, &params)) {
      resource = &r;
      break;
    }
  }
  if (resource == nullptr) return match;  // kNotFound

  std::set<std::string> allow = {"OPTIONS"};
  const Route* get = nullptr;
  for (const Route& r : routes_) {
    if (r.pattern != resource->pattern) continue;
    allow.insert(r.method);
    if (r.method == "GET" && r.serves_head) {
      allow.insert("HEAD");
      get = &r;
    }
    if (r.method == method) {
      match.kind = Match::Kind::kFound;
      match.route = r.id;
      Matches(r, raw_path, &match.params);
      return match;
    }
  }
  if (method == "HEAD" && get != nullptr) {
    match.kind = Match::Kind::kFound;
    match.route = get->id;
    match.head = true;
    Matches(*get, raw_path, &match.params);
    return match;
  }
  match.allow = absl::StrJoin(allow, ", ");
  match.kind = method == "OPTIONS" ? Match::Kind::kOptions
                                   : Match::Kind::kMethodNotAllowed;
  return match;
}

std::string_view RouteParam(const Router::Match& match, std::string_view name) {
  for (const auto& [k, v] : match.params) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace agentstream::http
