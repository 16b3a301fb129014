// Who a client is, by address: the peer of the connection, or, when that
// peer is a proxy the operator trusts (--trusted-proxies), the address the
// proxy reports in X-Forwarded-For. The chain is read from the right: the
// first address that is not itself a trusted proxy is the client (the left
// part of the header is whatever the client wrote, and proves nothing).
// docs/HTTP.md, "Clients".
//
// Thread-compatible value types; thread-safe once built.
#ifndef AGENTSTREAM_COMMON_HTTP_CLIENT_ADDRESS_H_
#define AGENTSTREAM_COMMON_HTTP_CLIENT_ADDRESS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace agentstream::http {

// An IPv4 or IPv6 address; IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4.

  static std::optional<IpAddress> Parse(std::string_view text);
  std::string ToString() const;
  bool operator==(const IpAddress&) const = default;
};

struct IpPrefix {
  IpAddress address;
  int bits = 0;
  bool Contains(const IpAddress& ip) const;
};

// "127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"; kInvalidArgument naming the
// entry otherwise.
absl::StatusOr<IpPrefix> ParseIpPrefix(std::string_view text);

class TrustedProxies final {
 public:
  TrustedProxies() = default;
  // Comma-separated entries or one per element; empty: trust none.
  static absl::StatusOr<TrustedProxies> Parse(
      const std::vector<std::string>& entries);

  bool Contains(std::string_view ip) const;
  bool empty() const { return prefixes_.empty(); }

  // The client's address: `peer_ip` unless it is trusted and
  // `x_forwarded_for` names an address; then the rightmost entry that is not
  // trusted (or the leftmost when all are). Malformed entries end the walk
  // there: the address before them (the last one a trusted hop vouched for)
  // is the client.
  std::string ClientAddress(std::string_view peer_ip,
                            std::string_view x_forwarded_for) const;

 private:
  std::vector<IpPrefix> prefixes_;
};

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_CLIENT_ADDRESS_H_
