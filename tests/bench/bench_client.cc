#include "tests/bench/bench_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testing/sse_client.h"

namespace agentstream::bench {
namespace {

// 127.1.0.1 onwards: one address per connection (see the header).
constexpr uint32_t kFirstSource = 0x7f010001u;
constexpr uint32_t kSources = 1u << 20;

int Connect(int port) {
  static uint32_t next_source = 0;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(kFirstSource + next_source++ % kSources);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0 ||
      (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 &&
       errno != EINPROGRESS)) {
    close(fd);
    return -1;
  }
  return fd;
}

// The JSON value after `"key":` in `line`, whichever separators the server's
// encoder uses (`"k":v` or `"k": v`); npos when absent.
// How many times `needle` occurs in `line`.
int64_t CountOf(absl::string_view line, absl::string_view needle) {
  int64_t n = 0;
  for (size_t p = line.find(needle); p != absl::string_view::npos;
       p = line.find(needle, p + needle.size())) {
    ++n;
  }
  return n;
}

size_t ValueOf(absl::string_view line, absl::string_view key) {
  const std::string quoted = absl::StrCat("\"", key, "\":");
  size_t at = line.find(quoted);
  if (at == absl::string_view::npos) return at;
  at += quoted.size();
  while (at < line.size() && line[at] == ' ') ++at;
  return at;
}

bool FieldIs(absl::string_view line, absl::string_view key,
             absl::string_view quoted_value) {
  const size_t at = ValueOf(line, key);
  return at != absl::string_view::npos &&
         line.substr(at, quoted_value.size()) == quoted_value;
}

// The response head: status, Retry-After. False while incomplete.
bool ParseHead(Conn& c, size_t* body_start) {
  const size_t end = c.in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  const absl::string_view head(c.in.data(), end);
  if (head.size() >= 12 && absl::StartsWith(head, "HTTP/1.")) {
    (void)absl::SimpleAtoi(head.substr(9, 3), &c.status);
  }
  const std::string lower = absl::AsciiStrToLower(head);
  c.retry_after = lower.find("\r\nretry-after:") != std::string::npos;
  c.headers_done = true;
  c.headers_ns = NowNs();
  *body_start = end + 4;
  return true;
}

// Consumes complete lines of `c.in` (chunk-size lines of the chunked
// encoding are neither events nor fields, and are skipped: the servers
// measured write one chunk per event).
void ParseLines(Conn& c, const LoopOptions& options, LoopResult* result) {
  size_t start = 0;
  if (!c.headers_done) {
    if (!ParseHead(c, &start)) return;
    if (c.status != 200) {
      c.done = true;
      c.error = absl::StrCat(c.status, " ", c.in.substr(start, 160));
      return;
    }
  }
  const int64_t now = NowNs();
  while (true) {
    const size_t nl = c.in.find('\n', start);
    if (nl == std::string::npos) break;
    absl::string_view line(c.in.data() + start, nl - start);
    start = nl + 1;
    if (absl::StartsWith(line, "event: ")) {
      c.current_event = std::string(line.substr(7));
      if (c.current_event == "done") c.done = true;
      if (c.current_event == "connected" && c.connected_ns == 0) {
        c.connected_ns = now;
      }
      if (c.current_event == "heartbeat") ++c.heartbeats;
    } else if (c.current_event == "error" && c.error.empty() &&
               absl::StartsWith(line, "data: ")) {
      c.error = std::string(line.substr(6, 200));
    } else if (absl::StartsWith(line, ": heartbeat")) {
      ++c.heartbeats;
    } else if (absl::StartsWith(line, "data: ") && c.current_event == "batch") {
      // A batch (batch_max/batch_ms): every update in it counts, and each
      // partial result's latency is taken when its batch arrives (what a
      // client of a batched stream sees, the batch's wait included).
      const int64_t updates = CountOf(line, "\"seq\":");
      c.messages += updates;
      result->events += updates;
      if (c.first_update_ns == 0) c.first_update_ns = now;
      constexpr absl::string_view kPartial = "{\"type\":\"partial_result\"";
      constexpr absl::string_view kEmitted = "\"emitted_at_ns\":";
      for (size_t p = line.find(kPartial); p != absl::string_view::npos;
           p = line.find(kPartial, p + kPartial.size())) {
        ++c.partials;
        ++result->partials;
        if (c.first_partial_ns == 0) c.first_partial_ns = now;
        size_t e = line.find(kEmitted, p);
        if (options.latencies_ns == nullptr || e == absl::string_view::npos) {
          continue;
        }
        int64_t emitted = 0;
        for (e += kEmitted.size();
             e < line.size() && line[e] >= '0' && line[e] <= '9'; ++e) {
          emitted = emitted * 10 + (line[e] - '0');
        }
        options.latencies_ns->push_back(now - emitted);
      }
    } else if (absl::StartsWith(line, "data: ") &&
               c.current_event == "message") {
      ++c.messages;
      ++result->events;
      if (c.first_update_ns == 0) c.first_update_ns = now;
      if (!FieldIs(line, "type", "\"partial_result\"") ||
          !FieldIs(line, "specialist", "\"Synthetic\"")) {
        continue;
      }
      ++c.partials;
      ++result->partials;
      if (c.first_partial_ns == 0) c.first_partial_ns = now;
      size_t p = ValueOf(line, "emitted_at_ns");
      if (options.latencies_ns == nullptr || p == absl::string_view::npos) {
        continue;
      }
      int64_t emitted = 0;
      for (; p < line.size() && line[p] >= '0' && line[p] <= '9'; ++p) {
        emitted = emitted * 10 + (line[p] - '0');
      }
      options.latencies_ns->push_back(now - emitted);
    } else if (line.empty() || line == "\r") {
      c.current_event = "message";
    }
  }
  c.in.erase(0, start);
}

bool Reached(const std::vector<Conn>& conns, LoopOptions::Until until) {
  for (const Conn& c : conns) {
    if (c.done) continue;
    switch (until) {
      case LoopOptions::Until::kAllDone:
      case LoopOptions::Until::kDeadline:
        return false;
      case LoopOptions::Until::kAllConnected:
        if (c.connected_ns == 0) return false;
        break;
      case LoopOptions::Until::kAllFirstUpdate:
        if (c.first_update_ns == 0) return false;
        break;
    }
  }
  return until != LoopOptions::Until::kDeadline;
}

}  // namespace

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

LoopResult RunLoop(int port, std::vector<Conn>& conns,
                   const LoopOptions& options) {
  LoopResult result;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  const absl::Time start = absl::Now();
  size_t next_start = 0;  // conns before it have been started.
  int active = 0;
  // Connections start in order of start_ns (as the scenarios build them),
  // at most kStartsPerTurn between two polls: connecting a thousand due at
  // once before reading any answer would charge the client's own serial
  // work to the server (each clock starts at its connect).
  constexpr int kStartsPerTurn = 32;
  auto start_due = [&] {
    const int64_t now = NowNs();
    for (int started = 0;
         started < kStartsPerTurn && next_start < conns.size() &&
         conns[next_start].start_ns <= now;
         ++next_start, ++started) {
      Conn& c = conns[next_start];
      if (c.done) continue;
      // A connection an earlier loop opened is watched again.
      if (c.fd < 0) {
        c.fd = Connect(port);
        c.sent_ns = NowNs();
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      if (!c.out.empty()) ev.events |= EPOLLOUT;
      ev.data.u64 = next_start;
      if (ep < 0 || c.fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
        // Never connected: a failed stream, not one quietly not there.
        c.failed = c.done = true;
        ++result.failed;
        continue;
      }
      ++active;
    }
  };
  std::vector<epoll_event> events(1024);
  std::vector<char> buf(1 << 16);
  absl::Time next_tick = start;
  while (absl::Now() < options.deadline) {
    start_due();
    if (active == 0 && next_start == conns.size()) break;
    if (Reached(conns, options.until)) break;
    if (options.tick && absl::Now() >= next_tick) {
      options.tick();
      next_tick = absl::Now() + absl::Milliseconds(100);
    }
    const int timeout_ms = next_start >= conns.size()              ? 100
                           : conns[next_start].start_ns <= NowNs() ? 0
                                                                   : 1;
    const int n = epoll_wait(ep, events.data(), events.size(), timeout_ms);
    for (int k = 0; k < n; ++k) {
      Conn& c = conns[events[k].data.u64];
      if (c.done) continue;
      if ((events[k].events & EPOLLOUT) && !c.out.empty()) {
        const ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (w > 0) c.out.erase(0, w);
        if (c.out.empty()) {
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.u64 = events[k].data.u64;
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      if (!(events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        continue;
      }
      bool closed = false;
      while (true) {
        const ssize_t r = recv(c.fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          c.in.append(buf.data(), r);
          continue;
        }
        closed = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
      }
      ParseLines(c, options, &result);
      if (closed && !c.done) c.failed = c.done = true;  // Closed early.
      if (!c.done) continue;
      --active;
      if (c.headers_done && c.status != 200) {
        ++result.refused;
      } else if (c.failed) {
        ++result.failed;
      } else {
        ++result.completed;
      }
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    }
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (ep >= 0) close(ep);
  return result;
}

std::string FailureSummary(const std::vector<Conn>& conns, bool open_ok,
                           int max) {
  std::map<std::string, int> kinds;
  for (const Conn& c : conns) {
    std::string why;
    if (c.status != 0 && c.status != 200) {
      why = c.error;
    } else if (c.failed) {
      why = !c.error.empty()  ? c.error
            : !c.headers_done ? std::string("no answer")
                              : std::string("closed before done");
    } else if (!c.done && !(open_ok && c.connected_ns > 0)) {
      why = c.connected_ns > 0 ? "unfinished at the deadline"
                               : "no `connected` by the deadline";
    } else {
      continue;
    }
    // Run ids and sequence numbers differ per stream: group by the rest.
    const size_t rid = why.find("\"request_id\"");
    if (rid != std::string::npos) {
      const size_t end = why.find(',', rid);
      why.erase(rid,
                end == std::string::npos ? std::string::npos : end - rid + 1);
    }
    ++kinds[why];
  }
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [why, n] : kinds) sorted.emplace_back(n, why);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string out;
  for (int i = 0; i < static_cast<int>(sorted.size()) && i < max; ++i) {
    absl::StrAppend(&out, i > 0 ? "; " : "", sorted[i].first, " x ",
                    sorted[i].second);
  }
  return out;
}

void CloseAll(std::vector<Conn>& conns) {
  for (Conn& c : conns) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
  }
}

std::string StreamRequest(int port, int64_t count, int64_t size, double rate,
                          const std::string& extra_query) {
  const std::string options = absl::StrFormat(
      "{\"count\":%d,\"size\":%d,\"rate\":%g}", count, size, rate);
  return absl::StrCat(
      "GET /api/chat/stream?specialists=Synthetic&message=bench&options=",
      testing::UrlEncode(options), extra_query.empty() ? "" : "&", extra_query,
      " HTTP/1.1\r\nHost: 127.0.0.1:", port,
      "\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
}

std::vector<int64_t> HealthzSamples(int port, int n) {
  std::vector<int64_t> samples;
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int64_t t0 = NowNs();
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const std::string req =
          "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      send(fd, req.data(), req.size(), MSG_NOSIGNAL);
      std::string reply;
      char buf[4096];
      ssize_t r;
      while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) reply.append(buf, r);
      if (r == 0 && absl::StartsWith(reply, "HTTP/1.1 200")) {
        samples.push_back(NowNs() - t0);
      }
    }
    close(fd);
  }
  return samples;
}

std::optional<double> PercentileMs(std::vector<int64_t> v, double p) {
  if (v.empty()) return std::nullopt;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k] / 1e6;
}

std::optional<ProcSample> ReadProc(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  ProcSample s;
  bool threads = false, rss = false;
  while (std::getline(in, line)) {
    absl::string_view v(line);
    if (absl::ConsumePrefix(&v, "Threads:")) {
      threads = absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &s.threads);
    } else if (absl::ConsumePrefix(&v, "VmRSS:")) {
      v = absl::StripAsciiWhitespace(v);
      absl::ConsumeSuffix(&v, "kB");
      rss = absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &s.rss_kib);
    }
  }
  if (!threads || !rss) return std::nullopt;
  return s;
}

int64_t RaiseFileLimit(int64_t want) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  rlimit raised = lim;
  raised.rlim_cur = std::max<rlim_t>(lim.rlim_cur, want);
  raised.rlim_max = std::max(lim.rlim_max, raised.rlim_cur);
  // Raising the hard limit needs privilege; without it, up to the hard one.
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    raised.rlim_cur = lim.rlim_max;
    raised.rlim_max = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &raised);
  }
  getrlimit(RLIMIT_NOFILE, &lim);
  return static_cast<int64_t>(lim.rlim_cur);
}

}  // namespace agentstream::bench
