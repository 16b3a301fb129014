// HTTP/1.x messages as the server hands them to handlers and takes them
// back: headers (case-insensitive names, order kept), a parsed request, a
// complete response, and the reason phrases. No sockets; docs/HTTP.md.
//
// Thread-compatible value types.
#ifndef AGENTSTREAM_COMMON_HTTP_HTTP_MESSAGE_H_
#define AGENTSTREAM_COMMON_HTTP_HTTP_MESSAGE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentstream::http {

class HttpHeaders final {
 public:
  struct Field {
    std::string name;
    std::string value;
  };

  // Appends a field (no check: the parser and our own handlers validate).
  void Add(std::string name, std::string value);
  // Replaces every field of that name with one.
  void Set(std::string_view name, std::string value);
  void Remove(std::string_view name);
  // The first field of that name (ASCII case-insensitive).
  std::optional<std::string_view> Get(std::string_view name) const;
  // The first value, or "" when absent.
  std::string_view GetOr(std::string_view name,
                         std::string_view fallback = "") const;
  size_t Count(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  // Whether a comma-separated list header (Connection, Transfer-Encoding,
  // ...) holds `token`, in any of its fields, ASCII case-insensitive.
  bool HasToken(std::string_view name, std::string_view token) const;

  const std::vector<Field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

struct PeerAddress {
  std::string ip;  // Numeric, without brackets ("127.0.0.1", "::1").
  int port = 0;
};

struct HttpRequest {
  std::string method;     // As sent: methods are case-sensitive.
  std::string target;     // The request-target as sent.
  std::string path;       // Its path, still percent-encoded.
  std::string query;      // Its query without '?', still encoded.
  int version_minor = 1;  // HTTP/1.<minor>: 0 or 1.
  HttpHeaders headers;
  std::string body;  // Decoded from chunked framing when it was chunked.
  bool keep_alive = true;
  bool expect_continue = false;
  PeerAddress peer;
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;  // Framing headers are the server's, never set here.
  std::string body;
};

// "OK", "Not Found", ...; "Unknown" for codes without one here.
std::string_view ReasonPhrase(int status);

// Decodes %XX escapes (and '+' as a space when `plus_as_space`); an invalid
// escape is kept as it is. Never fails, output is at most the input's size.
std::string PercentDecode(std::string_view in, bool plus_as_space);

// The query string's parameters, decoded, in order. Pieces without '=' get
// an empty value; empty pieces are skipped.
std::multimap<std::string, std::string> ParseQuery(std::string_view query);

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_HTTP_MESSAGE_H_
