#include "common/http/client_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/http/ascii.h"

namespace agentstream::http {

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  text = StripOws(text);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string s(text);
  IpAddress ip;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memcpy(ip.bytes.data(), &v4, 4);
    return ip;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6.s6_addr, kMapped, 12) == 0) {
      std::memcpy(ip.bytes.data(), v6.s6_addr + 12, 4);
      return ip;
    }
    ip.v6 = true;
    std::memcpy(ip.bytes.data(), v6.s6_addr, 16);
    return ip;
  }
  return std::nullopt;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf));
  return buf;
}

bool IpPrefix::Contains(const IpAddress& ip) const {
  if (ip.v6 != address.v6) return false;
  int bits_left = bits;
  for (size_t i = 0; bits_left > 0; ++i, bits_left -= 8) {
    const uint8_t mask =
        bits_left >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits_left));
    if ((ip.bytes[i] & mask) != (address.bytes[i] & mask)) return false;
  }
  return true;
}

absl::StatusOr<IpPrefix> ParseIpPrefix(std::string_view text) {
  text = StripOws(text);
  const size_t slash = text.find('/');
  auto ip = IpAddress::Parse(text.substr(0, slash));
  if (!ip) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IP address or prefix: '", std::string(text), "'"));
  }
  IpPrefix prefix{*ip, ip->v6 ? 128 : 32};
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    int bits = digits.empty() || digits.size() > 3 ? -1 : 0;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        bits = -1;
        break;
      }
      bits = bits * 10 + (c - '0');
    }
    if (bits < 0 || bits > prefix.bits) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad prefix length in '", std::string(text), "'"));
    }
    prefix.bits = bits;
  }
  return prefix;
}

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(
    const std::vector<std::string>& entries) {
  TrustedProxies t;
  for (const std::string& entry : entries) {
    for (std::string_view piece : SplitView(entry, ',')) {
      if (StripOws(piece).empty()) continue;
      auto prefix = ParseIpPrefix(piece);
      if (!prefix.ok()) return prefix.status();
      t.prefixes_.push_back(*prefix);
    }
  }
  return t;
}

bool TrustedProxies::Contains(std::string_view ip) const {
  if (prefixes_.empty()) return false;
  auto parsed = IpAddress::Parse(ip);
  if (!parsed) return false;
  for (const IpPrefix& p : prefixes_) {
    if (p.Contains(*parsed)) return true;
  }
  return false;
}

std::string TrustedProxies::ClientAddress(
    std::string_view peer_ip, std::string_view x_forwarded_for) const {
  if (x_forwarded_for.empty() || !Contains(peer_ip)) {
    return std::string(peer_ip);
  }
  const std::vector<std::string_view> hops = SplitView(x_forwarded_for, ',');
  std::string client(peer_ip);
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    auto ip = IpAddress::Parse(*it);
    if (!ip) break;
    client = ip->ToString();
    if (!Contains(client)) break;
  }
  return client;
}

}  // namespace agentstream::http
