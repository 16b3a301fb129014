// Request routing without regular expressions: a route is a method and a
// path pattern of segments, matched segment by segment in linear time.
//
//   /healthz                 a literal path
//   /api/runs/{id}/stream    {id} matches one non-empty segment
//   /{path...}               a last {name...} matches the rest (may be empty)
//
// A path's resource is the first pattern (in the order added) that matches
// it; the methods of every route with that same pattern make its Allow set.
// So a known path asked with a method it lacks is 405 with `Allow`, and OPTIONS
// is answered with that set. HEAD is served by a GET route only when the
// route says so (a GET that starts work, such as a run, must not run for a
// HEAD): otherwise HEAD is 405 too. docs/HTTP.md.
//
// Thread-compatible: add every route, then Find() from any thread.
#ifndef AGENTSTREAM_COMMON_HTTP_ROUTER_H_
#define AGENTSTREAM_COMMON_HTTP_ROUTER_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace agentstream::http {

class Router final {
 public:
  struct Match {
    enum class Kind {
      kFound,             // `route`, `params`; `head` for a HEAD served as GET.
      kNotFound,          // No pattern matches the path.
      kMethodNotAllowed,  // `allow` lists the path's methods.
      kOptions,           // OPTIONS on a known path: `allow`.
    };
    Kind kind = Kind::kNotFound;
    size_t route = 0;
    bool head = false;
    // Captured segments, percent-decoded, in pattern order.
    std::vector<std::pair<std::string, std::string>> params;
    std::string allow;  // "GET, HEAD, OPTIONS"
  };

  // kInvalidArgument for a malformed pattern (not starting with '/', an
  // unclosed brace, a {rest...} that is not last) or a method that is not a
  // token. `route` is the caller's id for the route, returned by Find().
  absl::Status Add(std::string_view method, std::string_view pattern,
                   size_t route, bool serves_head = false);

  Match Find(std::string_view method, std::string_view raw_path) const;

 private:
  struct Segment {
    enum class Kind { kLiteral, kParam, kRest } kind;
    std::string text;  // The literal, or the parameter's name.
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    size_t id;
    bool serves_head;
  };
  // Whether `path` matches; fills `params` when it does.
  static bool Matches(const Route& route, std::string_view path,
                      std::vector<std::pair<std::string, std::string>>* params);

  std::vector<Route> routes_;
};

// A captured parameter by name, or "" when absent.
std::string_view RouteParam(const Router::Match& match, std::string_view name);

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_ROUTER_H_
