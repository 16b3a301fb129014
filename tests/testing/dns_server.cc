#include "tests/testing/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace agentstream::testing {
namespace {

constexpr size_t kHeaderBytes = 12;
constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAny = 255;
constexpr uint16_t kClassIn = 1;
constexpr uint16_t kRcodeNxDomain = 3;
constexpr uint16_t kRcodeNotImplemented = 4;

uint16_t Read16(const std::string& b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) |
                               static_cast<uint8_t>(b[at + 1]));
}

void Put16(std::string& b, uint16_t v) {
  b.push_back(static_cast<char>(v >> 8));
  b.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DnsServer>> DnsServer::Start() {
  std::unique_ptr<DnsServer> s(new DnsServer());
  s->fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s->fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(s->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return absl::InternalError(absl::StrCat("bind: ", strerror(errno)));
  }
  socklen_t len = sizeof addr;
  if (getsockname(s->fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", strerror(errno)));
  }
  s->port_ = ntohs(addr.sin_port);
  s->thread_ = std::thread([server = s.get()] { server->Loop(); });
  return s;
}

DnsServer::~DnsServer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

void DnsServer::Set(const std::string& name, std::vector<std::string> ipv4) {
  std::vector<uint32_t> addresses;
  for (const std::string& ip : ipv4) {
    in_addr a{};
    if (inet_pton(AF_INET, ip.c_str(), &a) == 1) addresses.push_back(a.s_addr);
  }
  absl::MutexLock lock(&mu_);
  names_[absl::AsciiStrToLower(name)] = std::move(addresses);
}

int64_t DnsServer::Queries(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = queries_.find(absl::AsciiStrToLower(name));
  return it == queries_.end() ? 0 : it->second;
}

void DnsServer::Loop() {
  std::string buffer(4096, '\0');
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = recvfrom(fd_, buffer.data(), buffer.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    const std::string reply = Answer(buffer.substr(0, static_cast<size_t>(n)));
    if (reply.empty()) continue;
    (void)sendto(fd_, reply.data(), reply.size(), 0,
                 reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

std::string DnsServer::Answer(const std::string& query) {
  if (query.size() < kHeaderBytes) return "";
  const uint16_t flags = Read16(query, 2);
  if ((flags & 0x8000) != 0 || Read16(query, 4) != 1) return "";
  // The question: labels up to the root, then type and class.
  std::string name;
  size_t at = kHeaderBytes;
  while (true) {
    if (at >= query.size()) return "";
    const auto label = static_cast<uint8_t>(query[at++]);
    if (label == 0) break;
    if (label > 63 || at + label > query.size() || name.size() > 255) {
      return "";
    }
    if (!name.empty()) name.push_back('.');
    name.append(query, at, label);
    at += label;
  }
  if (at + 4 > query.size()) return "";
  const uint16_t type = Read16(query, at);
  const uint16_t klass = Read16(query, at + 2);
  const size_t question_end = at + 4;
  name = absl::AsciiStrToLower(name);

  uint16_t rcode = 0;
  std::vector<uint32_t> answers;
  const uint16_t opcode = (flags >> 11) & 0xf;
  if (opcode != 0) {
    rcode = kRcodeNotImplemented;
  } else {
    absl::MutexLock lock(&mu_);
    auto it = names_.find(name);
    if (it == names_.end()) {
      rcode = kRcodeNxDomain;
    } else if ((type == kTypeA || type == kTypeAny) && klass == kClassIn) {
      answers = it->second;
      ++queries_[name];
    }
  }

  std::string reply;
  reply.append(query, 0, 2);  // The query's id.
  Put16(reply, static_cast<uint16_t>(0x8000 | (opcode << 11) | 0x0400 |
                                     (flags & 0x0100) | 0x0080 | rcode));
  Put16(reply, 1);
  Put16(reply, static_cast<uint16_t>(answers.size()));
  Put16(reply, 0);
  Put16(reply, 0);
  reply.append(query, kHeaderBytes, question_end - kHeaderBytes);
  for (uint32_t address : answers) {
    Put16(reply, 0xc00c);  // The question's name.
    Put16(reply, kTypeA);
    Put16(reply, kClassIn);
    Put16(reply, 0);  // TTL 0: ask again each time.
    Put16(reply, 0);
    Put16(reply, 4);
    reply.append(reinterpret_cast<const char*>(&address), 4);
  }
  return reply;
}

}  // namespace agentstream::testing
