// stream_bench: what the whole path costs, measured through the real
// binaries on loopback.
//
//   throughput  C concurrent runs, each asking the Synthetic specialist for N
//               updates of S bytes as fast as it can: events/s received by
//               the clients through all three hops, and the latency from the
//               specialist's emitted_at to the client's receipt (p50, p99).
//   streams     M concurrent SSE streams held open (slow Synthetic runs):
//               the gateway's resident memory per open stream, and /healthz
//               latency while they are open.
//
// It starts its own topology (gateway, orchestrator, synthetic) from
// AGENTSTREAM_BIN_DIR (default: ./bin next to this binary's directory) unless
// --gateway-port points at a running one. Clients are one epoll loop on raw
// sockets, so the client costs little next to the system under test.
//
// Exit status: 0 only when every run and stream it started succeeded and
// every figure it reports was measured; a figure that could not be measured
// is printed as "not measured" (never as 0), and the exit status is then 1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "tests/testing/resumable_sse.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/topology.h"

namespace agentstream::bench {
namespace {

struct Conn {
  int fd = -1;
  std::string out;  // Request bytes still to send.
  std::string in;   // Unparsed response bytes.
  bool headers_done = false;
  bool done = false;
  bool failed = false;
  int64_t messages = 0;
  std::string current_event = "message";
};

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// Each stream from the next of 200 loopback source addresses
// (127.0.0.10..209), as many clients would be: the gateway bounds streams
// and run starts per client (docs/GATEWAY.md, "Limits"), 256 and 100 at
// once by default, so one address could not hold the benchmark's load.
int Connect(int port) {
  static uint32_t next_source = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f00000au + next_source++ % 200);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 &&
      errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// Consumes complete lines of `c.in`; records latency samples for `message`
// events that carry a specialist's emitted_at. Returns false at `done`.
void ParseLines(Conn& c, std::vector<int64_t>* latencies_ns, int64_t* events) {
  size_t start = 0;
  if (!c.headers_done) {
    const size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    if (c.in.compare(0, 12, "HTTP/1.1 200") != 0) {
      c.failed = true;
      c.done = true;
      return;
    }
    c.headers_done = true;
    start = end + 4;
  }
  const int64_t now = NowNs();
  while (true) {
    const size_t nl = c.in.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(c.in.data() + start, nl - start);
    start = nl + 1;
    if (line.rfind("event: ", 0) == 0) {
      c.current_event = std::string(line.substr(7));
      if (c.current_event == "done") c.done = true;
    } else if (line.rfind("data: ", 0) == 0 && c.current_event == "message") {
      ++c.messages;
      ++*events;
      constexpr std::string_view kKey = "\"emitted_at_ns\":";
      const size_t at = line.find(kKey);
      if (latencies_ns != nullptr && at != std::string_view::npos &&
          line.find("\"specialist\":\"Synthetic\"") != std::string_view::npos &&
          line.find("\"type\":\"partial_result\"") != std::string_view::npos) {
        int64_t emitted = 0;
        size_t p = at + kKey.size();
        while (p < line.size() && line[p] >= '0' && line[p] <= '9') {
          emitted = emitted * 10 + (line[p] - '0');
          ++p;
        }
        latencies_ns->push_back(now - emitted);
      }
    } else if (line.empty() || line == "\r") {
      c.current_event = "message";
    }
    // Chunk-size lines of the chunked encoding are neither; ignore them.
  }
  c.in.erase(0, start);
}

struct LoopResult {
  int64_t events = 0;
  int completed = 0;  // Ended with `done`.
  int failed = 0;     // Never connected, not 200, or closed before `done`.
  double seconds = 0;
};

// Drives every connection until all are done or `deadline`. With
// `hold_until_deadline`, keeps open streams open until then.
LoopResult RunLoop(std::vector<Conn>& conns, absl::Time deadline,
                   std::vector<int64_t>* latencies, bool stop_when_all_open,
                   int* open_count) {
  LoopResult result;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int active = 0;
  for (size_t i = 0; i < conns.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u64 = i;
    if (ep < 0 || conns[i].fd < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) {
      // Never connected: a failed run, not one that quietly is not there.
      conns[i].failed = true;
      conns[i].done = true;
      ++result.failed;
      continue;
    }
    ++active;
  }
  const absl::Time start = absl::Now();
  std::vector<epoll_event> events(1024);
  std::vector<char> buf(1 << 16);
  while (active > 0 && absl::Now() < deadline) {
    const int n = epoll_wait(ep, events.data(), events.size(), 100);
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
      if (events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        bool closed = false;
        while (true) {
          const ssize_t r = recv(c.fd, buf.data(), buf.size(), 0);
          if (r > 0) {
            c.in.append(buf.data(), r);
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            closed = true;
          }
          break;
        }
        ParseLines(c, latencies, &result.events);
        if (closed && !c.done) {
          c.failed = true;  // Closed before `done`.
          c.done = true;
        }
        if (c.done) {
          --active;
          if (c.failed) {
            ++result.failed;
          } else {
            ++result.completed;
          }
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        }
      }
    }
    if (stop_when_all_open && open_count != nullptr) {
      int open = 0;
      for (const Conn& c : conns) open += (c.headers_done && !c.done) ? 1 : 0;
      *open_count = open;
      if (open == static_cast<int>(conns.size())) break;
    }
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (ep >= 0) close(ep);
  return result;
}

std::string StreamRequest(int port, int64_t count, int64_t size, double rate) {
  const std::string options = absl::StrFormat(
      "{\"count\":%d,\"size\":%d,\"rate\":%g}", count, size, rate);
  return absl::StrCat(
      "GET /api/chat/stream?specialists=Synthetic&message=bench&options=",
      testing::UrlEncode(options), " HTTP/1.1\r\nHost: 127.0.0.1:", port,
      "\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
}

// nullopt without samples: a percentile of nothing is not a figure.
std::optional<int64_t> Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return std::nullopt;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// A figure for the report: "not measured" when there is none, and the
// run's exit status goes to 1.
struct Report {
  bool all_measured = true;
  std::string Figure(std::optional<double> v, int decimals, const char* unit) {
    if (!v.has_value()) {
      all_measured = false;
      return "not measured";
    }
    return absl::StrFormat("%.*f%s", decimals, *v, unit);
  }
};

std::optional<double> NsToMs(std::optional<int64_t> ns) {
  if (!ns.has_value()) return std::nullopt;
  return *ns / 1e6;
}

// The median of 20 GET /healthz, in ms; nullopt if none was answered 200.
std::optional<double> HealthzMs(int port) {
  std::vector<int64_t> samples;
  for (int i = 0; i < 20; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
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
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) reply.append(buf, n);
      // Only answers count: a refused or failed request is no latency.
      if (n == 0 && reply.rfind("HTTP/1.1 200", 0) == 0) {
        samples.push_back(NowNs() - t0);
      }
    }
    close(fd);
  }
  return NsToMs(Percentile(samples, 0.5));
}

}  // namespace
}  // namespace agentstream::bench

int main(int argc, char** argv) {
  using namespace agentstream;
  using namespace agentstream::bench;
  std::string mode = "all";
  int64_t gateway_port = 0;
  int64_t runs = 8;
  int64_t count = 5000;
  int64_t size = 200;
  double rate = 0;
  int64_t streams = 1000;
  int64_t duration_s = 120;
  int64_t gateway_pid_flag = 0;
  FlagSet flags("stream_bench",
                "Measures events/s, latency and memory per open stream through "
                "gateway, orchestrator and the Synthetic specialist.");
  flags.String("mode", &mode, "throughput, streams or all.");
  flags.Int("gateway-port", &gateway_port,
            "Use a running system's gateway on 127.0.0.1 (0: start one).");
  flags.Int("runs", &runs, "Concurrent runs in the throughput mode.");
  flags.Int("count", &count, "Synthetic updates per run.");
  flags.Int("size", &size, "Bytes per Synthetic update.");
  flags.Double("rate", &rate, "Synthetic updates per second per run (0: max).");
  flags.Int("streams", &streams, "Open streams in the streams mode.");
  flags.Int("duration-s", &duration_s, "Upper bound on each phase's time.");
  flags.Int("gateway-pid", &gateway_pid_flag,
            "With --gateway-port: that gateway's PID, for its memory in the "
            "streams mode (without it the memory is not measured).");
  ParseFlagsOrExit(flags, argc, argv);

  if (mode != "throughput" && mode != "streams" && mode != "all") {
    std::fprintf(stderr, "unknown --mode=%s (throughput, streams or all)\n",
                 mode.c_str());
    return 2;
  }

  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);

  std::unique_ptr<testing::Topology> topology;
  pid_t gateway_pid = static_cast<pid_t>(gateway_pid_flag);
  if (gateway_port == 0) {
    testing::TopologyOptions options;
    options.specialists = {"synthetic"};
    options.extra_gateway_args = {"--max-streams=20000"};
    auto t = testing::Topology::Start(options);
    if (!t.ok()) {
      std::fprintf(stderr, "cannot start the system: %s\n",
                   std::string(t.status().message()).c_str());
      return 1;
    }
    topology = std::move(*t);
    gateway_port = topology->gateway_port();
    gateway_pid = topology->process("gateway")->pid();
  }
  std::printf("machine: %ld cores\n", sysconf(_SC_NPROCESSORS_ONLN));
  Report report;
  bool runs_ok = true;

  if (mode == "throughput" || mode == "all") {
    std::vector<Conn> conns(runs);
    for (auto& c : conns) {
      c.fd = Connect(gateway_port);
      c.out = StreamRequest(gateway_port, count, size, rate);
    }
    std::vector<int64_t> latencies;
    latencies.reserve(runs * count);
    LoopResult r = RunLoop(conns, absl::Now() + absl::Seconds(duration_s),
                           &latencies, false, nullptr);
    for (auto& c : conns) {
      if (c.fd >= 0) close(c.fd);
    }
    const int unfinished = static_cast<int>(runs) - r.completed - r.failed;
    // A rate over runs that did not all complete is not the rate asked for.
    const bool complete = r.completed == runs;
    runs_ok &= complete;
    std::optional<double> rate_measured;
    if (complete && r.events > 0 && r.seconds > 0) {
      rate_measured = r.events / r.seconds;
    }
    std::printf(
        "throughput: runs=%ld count=%ld size=%ld rate=%g -> %ld events in "
        "%.2f s = %s events/s (%d complete, %d failed, %d unfinished at "
        "--duration-s)\n",
        runs, count, size, rate, r.events, r.seconds,
        report.Figure(rate_measured, 0, "").c_str(), r.completed, r.failed,
        unfinished);
    const size_t samples = latencies.size();
    const std::optional<double> p50 = NsToMs(Percentile(latencies, 0.50));
    const std::optional<double> p99 = NsToMs(Percentile(latencies, 0.99));
    const std::optional<double> max = NsToMs(Percentile(latencies, 1.0));
    std::printf(
        "latency emitted_at->client: p50 %s, p99 %s, max %s (%zu samples)\n",
        report.Figure(p50, 3, " ms").c_str(),
        report.Figure(p99, 3, " ms").c_str(),
        report.Figure(max, 3, " ms").c_str(), samples);
  }

  if (mode == "streams" || mode == "all") {
    // The gateway's VmRSS needs its PID: the one started here, or
    // --gateway-pid with --gateway-port.
    auto rss = [&]() -> std::optional<int64_t> {
      if (gateway_pid <= 0) return std::nullopt;
      absl::StatusOr<int64_t> kib = testing::RssKib(gateway_pid);
      if (!kib.ok()) {
        std::fprintf(stderr, "gateway VmRSS: %s\n",
                     kib.status().ToString().c_str());
        return std::nullopt;
      }
      return *kib;
    };
    const std::optional<int64_t> rss_before = rss();
    std::vector<Conn> conns(streams);
    // Each stream: a slow Synthetic run that outlives the measurement.
    for (auto& c : conns) {
      c.fd = Connect(gateway_port);
      c.out = StreamRequest(gateway_port, 1000, 16, 0.2);
    }
    int open = 0;
    const LoopResult r = RunLoop(conns, absl::Now() + absl::Seconds(duration_s),
                                 nullptr, true, &open);
    absl::SleepFor(absl::Seconds(1));
    const std::optional<int64_t> rss_after = rss();
    const std::optional<double> healthz = HealthzMs(gateway_port);
    // Per open stream only when every stream asked for is open: a delta
    // spread over fewer streams is another figure.
    const bool all_open = open == streams && r.failed == 0;
    runs_ok &= all_open;
    std::optional<double> per_stream;
    if (all_open && open > 0 && rss_before.has_value() &&
        rss_after.has_value()) {
      per_stream = double(*rss_after - *rss_before) / open;
    }
    auto kib = [](std::optional<int64_t> v) -> std::optional<double> {
      if (!v.has_value()) return std::nullopt;
      return static_cast<double>(*v);
    };
    std::printf(
        "streams: %d of %ld open (%d failed); gateway RSS %s -> %s = %s per "
        "stream; /healthz p50 %s while open\n",
        open, streams, r.failed,
        report.Figure(kib(rss_before), 0, " KiB").c_str(),
        report.Figure(kib(rss_after), 0, " KiB").c_str(),
        report.Figure(per_stream, 1, " KiB").c_str(),
        report.Figure(healthz, 2, " ms").c_str());
    for (auto& c : conns) {
      if (c.fd >= 0) close(c.fd);
    }
  }
  if (!runs_ok || !report.all_measured) {
    std::fprintf(stderr, "stream_bench: %s%s%s: these figures do not stand\n",
                 runs_ok ? "" : "runs or streams failed",
                 !runs_ok && !report.all_measured ? "; " : "",
                 report.all_measured ? "" : "figures not measured");
    return 1;
  }
  return 0;
}
