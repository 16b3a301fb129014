// Fuzz target: the whole HTTP request path of the gateway. The real
// GatewayServer (common/http's server, routing, the handlers, chat request
// parsing, resume, the SSE stream) runs in this process on a loopback port,
// in front of an in-memory orchestrator; each input is the bytes a client
// sends on one connection (then it half-closes and reads the answer).
// Checks, for any bytes:
//  - the answer is empty (closed) or HTTP/1.1 responses with statuses the
//    gateway gives (never 500: a handler that did not answer);
//  - the gateway keeps answering: /healthz on a new connection every 64
//    inputs answers 200;
//  - ASan/UBSan see nothing in any thread (the event loop, handlers).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "gateway/http_server.h"
#include "gateway/orchestrator_client.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::gateway::GatewayOptions;
using agentstream::gateway::GatewayServer;
using agentstream::gateway::OrchestratorClient;
using agentstream::gateway::RunParams;
using agentstream::gateway::RunStream;
using agentstream::v1::Update;

// A run that is already over: its updates wait in a queue, then OK (or
// `status` with no updates).
class DoneRunStream final : public RunStream {
 public:
  DoneRunStream(std::vector<Update> updates, absl::Status status)
      : updates_(std::move(updates)), status_(std::move(status)) {}
  Opening WaitOpening(absl::Duration) override {
    return status_.ok() ? Opening::kAccepted : Opening::kFinished;
  }
  Next Wait(absl::Duration, std::vector<Update>* out) override {
    if (updates_.empty()) return Next::kFinished;
    for (auto& u : updates_) out->push_back(std::move(u));
    updates_.clear();
    return Next::kUpdates;
  }
  absl::Status status() const override { return status_; }
  void Cancel() override {}
  bool WaitFinished(absl::Duration) override { return true; }

 private:
  std::vector<Update> updates_;
  const absl::Status status_;
};

std::vector<Update> ShortRun(const std::string& request_id) {
  std::vector<Update> u(3);
  for (int i = 0; i < 3; ++i) {
    u[i].set_request_id(request_id);
    u[i].set_seq(static_cast<uint64_t>(i + 1));
  }
  u[0].mutable_status()->set_status(agentstream::v1::RUN_STATUS_ANALYZING);
  u[1].set_specialist("DataAnalyst");
  u[1].mutable_progress()->set_progress(50);
  u[2].mutable_complete()->set_outcome(agentstream::v1::OUTCOME_OK);
  return u;
}

class InMemoryOrchestrator final : public OrchestratorClient {
 public:
  std::unique_ptr<RunStream> StartRun(const RunParams& params) override {
    if (params.message == "fail") {
      return std::make_unique<DoneRunStream>(
          std::vector<Update>(),
          absl::InvalidArgumentError("unknown specialist"));
    }
    return std::make_unique<DoneRunStream>(ShortRun(params.request_id),
                                           absl::OkStatus());
  }
  std::unique_ptr<RunStream> StartAttach(
      const agentstream::v1::AttachRequest& attach,
      const agentstream::OnBehalfOf&) override {
    const std::string& request_id = attach.request_id();
    const uint64_t after_seq = attach.after_seq();
    if (after_seq == 0) {
      return std::make_unique<DoneRunStream>(ShortRun(request_id),
                                             absl::OkStatus());
    }
    if (after_seq >= 3) {
      return std::make_unique<DoneRunStream>(std::vector<Update>(),
                                             absl::OkStatus());
    }
    return std::make_unique<DoneRunStream>(
        std::vector<Update>(), absl::OutOfRangeError("gap: no longer held"));
  }
  absl::StatusOr<bool> Cancel(const std::string& request_id, absl::Duration,
                              const agentstream::OnBehalfOf&) override {
    if (request_id.size() % 2 == 0) return true;
    return absl::NotFoundError("no such run");
  }
  absl::StatusOr<agentstream::v1::ListSpecialistsResponse> ListSpecialists(
      absl::Duration, const std::string&) override {
    agentstream::v1::ListSpecialistsResponse r;
    auto* s = r.add_specialists();
    s->mutable_card()->set_name("DataAnalyst");
    s->set_available(true);
    return r;
  }
};

struct Gateway {
  std::unique_ptr<GatewayServer> server;
  int port = 0;
};

Gateway& TheGateway() {
  static Gateway* g = [] {
    // Each input would log a line or more.
    agentstream::InitLogging("gateway_http_fuzz",
                             agentstream::LogLevel::kError);
    auto* gw = new Gateway();
    const std::filesystem::path root =
        std::filesystem::temp_directory_path() /
        ("agentstream-fuzz-web-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root);
    // The gateway is never destroyed (inputs may run until exit), but its
    // web root goes at exit: a run, a replay or a campaign that ends leaves
    // nothing in TMPDIR (a crash keeps it: the process dies without exit).
    static const std::filesystem::path* web_root =
        new std::filesystem::path(root);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(*web_root, ignored);
    });
    std::ofstream(root / "index.html") << "<!doctype html><p>fuzz</p>\n";
    std::ofstream(root / "app.js") << "export {};\n";
    GatewayOptions o;
    o.port = 0;
    o.web_root = root.string();
    o.header_timeout = absl::Milliseconds(300);
    o.body_timeout = absl::Milliseconds(300);
    o.heartbeat_interval = absl::Milliseconds(50);
    o.write_timeout = absl::Seconds(1);
    o.client_limits.max_streams_per_client = 0;
    o.client_limits.run_starts_per_second = 0;
    o.max_connections_per_client = 0;
    gw->server = std::make_unique<GatewayServer>(
        o, std::make_shared<InMemoryOrchestrator>());
    FUZZ_CHECK(gw->server->Start().ok(), "the gateway did not start");
    gw->port = gw->server->port();
    return gw;
  }();
  return *g;
}

// A connection from one of 127.0.0.2..250 in turn, closed with a reset
// (SO_LINGER 0): a campaign makes millions of connections, and neither side
// may run out of port pairs to TIME_WAIT.
int Connect(int port) {
  static uint32_t next_source = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + next_source++ % 249);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) == 0 &&
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return fd;
    }
    std::fprintf(stderr, "gateway_http_fuzz: connect: %s\n",
                 std::strerror(errno));
    ::close(fd);
    absl::SleepFor(absl::Milliseconds(20));
  }
  return -1;
}

// Sends `bytes` (as far as the server takes them), half-closes, and reads
// until the server closes or `timeout` passes.
std::string Exchange(int port, std::string_view bytes, absl::Duration timeout) {
  const int fd = Connect(port);
  FUZZ_CHECK(fd >= 0, "cannot connect to the gateway");
  const absl::Time deadline = absl::Now() + timeout;
  std::string got;
  size_t sent = 0;
  bool write_closed = false;
  while (absl::Now() < deadline) {
    if (sent == bytes.size() && !write_closed) {
      ::shutdown(fd, SHUT_WR);
      write_closed = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (write_closed ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    if (p.revents & POLLIN) {
      char buf[16384];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    if (!write_closed && (p.revents & POLLOUT)) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = bytes.size();  // The server stopped reading: read its answer.
      }
    }
    if (p.revents & (POLLERR | POLLHUP)) break;
  }
  ::close(fd);
  return got;
}

const std::set<int>& KnownStatuses() {
  static const std::set<int> s = {100, 200, 202, 204, 400, 404, 405, 408, 409,
                                  413, 414, 417, 429, 431, 501, 503, 505};
  return s;
}

void CheckAnswer(const std::string& got) {
  if (got.empty()) return;
  FUZZ_CHECK(
      got.rfind("HTTP/1.1 ", 0) == 0,
      "the answer does not start with a status line: " + got.substr(0, 40));
  // Every status line in it (responses to pipelined requests).
  size_t at = 0;
  while ((at = got.find("HTTP/1.1 ", at)) != std::string::npos) {
    if (at == 0 || got.compare(at - 2, 2, "\r\n") == 0 ||
        got.compare(at - 1, 1, "\n") == 0) {
      const int status = std::atoi(got.substr(at + 9, 3).c_str());
      if (status >= 100 && status < 600) {
        FUZZ_CHECK(KnownStatuses().count(status) == 1,
                   "unexpected status " + std::to_string(status));
      }
    }
    at += 9;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t runs = 0;
  Gateway& gw = TheGateway();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckAnswer(Exchange(gw.port, bytes, absl::Seconds(2)));
  if (++runs % 64 == 0) {
    const std::string health = Exchange(
        gw.port,
        "GET /healthz HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n",
        absl::Seconds(5));
    FUZZ_CHECK(
        health.rfind("HTTP/1.1 200 ", 0) == 0,
        "the gateway stopped answering /healthz: " + health.substr(0, 60));
  }
  return 0;
}
