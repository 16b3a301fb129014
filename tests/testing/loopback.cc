#include "tests/testing/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/time/clock.h"

namespace agentstream::testing {

int ConnectLoopback(int port) { return ConnectLoopbackFrom(port, ""); }

int ConnectLoopbackFrom(int port, const std::string& source_ip) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (!source_ip.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n =
        ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool SendGet(int fd, const std::string& target) {
  return SendAll(fd, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

std::string ReadUntil(int fd, const std::string& needle,
                      absl::Duration timeout) {
  std::string out;
  const absl::Time deadline = absl::Now() + timeout;
  while (out.find(needle) == std::string::npos) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd pfd{fd, POLLIN, 0};
    const int rc =
        ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (rc <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string SendAndRead(int fd, const std::string& bytes,
                        absl::Duration timeout) {
  std::string out;
  const absl::Time deadline = absl::Now() + timeout;
  size_t sent = 0;
  bool peer_closed = false;
  while (absl::Now() < deadline && !peer_closed) {
    const bool sending =
        sent < bytes.size() && out.find("\r\n\r\n") == std::string::npos;
    if (!sending && out.find("\r\n\r\n") != std::string::npos) break;
    if (!sending && sent >= bytes.size()) break;
    pollfd pfd{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    if (pfd.revents & POLLIN) {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        peer_closed = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    if (sending && (pfd.revents & POLLOUT)) {
      const size_t piece = std::min<size_t>(64 * 1024, bytes.size() - sent);
      const ssize_t n =
          ::send(fd, bytes.data() + sent, piece, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        sent = bytes.size();  // The server closed its side: read the rest.
      } else if (n > 0) {
        sent += static_cast<size_t>(n);
      }
    }
    if (pfd.revents & (POLLERR | POLLHUP)) break;
  }
  if (!peer_closed) {
    bool closed;
    const absl::Duration left = deadline - absl::Now();
    out += ReadUntilClosed(fd, std::max(left, absl::Milliseconds(1)), &closed);
  }
  return out;
}

std::string ReadUntilClosed(int fd, absl::Duration timeout, bool* closed) {
  std::string out;
  *closed = false;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd pfd{fd, POLLIN, 0};
    const int rc =
        ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (rc <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace agentstream::testing
