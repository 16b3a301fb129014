#include "tests/testing/topology.h"

#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace agentstream::testing {

std::string SharedTestDatabase() {
  const std::string dir = BinDir() + "/../test-data";
  mkdir(dir.c_str(), 0755);
  return dir + "/agentstream.db";
}

std::string CardNameOf(const std::string& kind) {
  std::string out;
  bool upper = true;
  for (char c : kind) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out.push_back(upper ? static_cast<char>(std::toupper(c)) : c);
    upper = false;
  }
  return out;
}

absl::StatusOr<int> Topology::StartProcess(const std::string& name,
                                           const std::string& binary,
                                           std::vector<std::string> args,
                                           int* metrics_port,
                                           const std::string& host,
                                           int listen_port) {
  const std::string port_file = absl::StrCat(dir_.path(), "/", name, ".port");
  const std::string metrics_file =
      absl::StrCat(dir_.path(), "/", name, ".mport");
  if (!host.empty()) args.push_back("--host=" + host);
  args.push_back(absl::StrCat("--port=", listen_port));
  args.push_back("--port-file=" + port_file);
  if (metrics_port != nullptr) {
    args.push_back("--metrics-port=0");
    args.push_back("--metrics-port-file=" + metrics_file);
  }
  // A restarted process must not read its predecessor's port.
  unlink(port_file.c_str());
  unlink(metrics_file.c_str());
  Subprocess::Options opts;
  opts.binary = binary;
  opts.args = std::move(args);
  opts.log_path = absl::StrCat(dir_.path(), "/", name, ".log");
  auto proc = Subprocess::Start(std::move(opts));
  if (!proc.ok()) return proc.status();
  Subprocess* p = proc->get();
  processes_[name] = std::move(*proc);
  if (std::find(start_order_.begin(), start_order_.end(), name) ==
      start_order_.end()) {
    start_order_.push_back(name);
  }
  // The first specialist generates the data set: allow for it.
  auto port = WaitForPortFile(port_file, absl::Seconds(120));
  if (!port.ok()) {
    return absl::UnavailableError(absl::StrCat(
        name, " did not start: ", port.status().message(), "\n", p->ReadLog()));
  }
  if (metrics_port != nullptr) {
    auto mport = WaitForPortFile(metrics_file, absl::Seconds(10));
    if (!mport.ok()) return mport.status();
    *metrics_port = *mport;
  }
  return *port;
}

absl::StatusOr<std::unique_ptr<Topology>> Topology::Start(
    TopologyOptions options) {
  std::unique_ptr<Topology> t(new Topology());
  absl::StatusOr<ScopedTempDir> dir =
      ScopedTempDir::Make("agentstream-topology-");
  if (!dir.ok()) return dir.status();
  t->dir_ = *std::move(dir);
  t->db_path_ = options.db_path.empty() ? t->dir_.File("agentstream.db")
                                        : options.db_path;
  std::vector<std::string> orch_args = options.extra_orchestrator_args;
  for (const std::string& kind : options.specialists) {
    std::vector<std::string> args;
    if (kind != "synthetic") args.push_back("--db=" + t->db_path_);
    for (const auto& a : options.extra_specialist_args) args.push_back(a);
    int count = 1;
    if (auto it = options.replicas.find(kind); it != options.replicas.end()) {
      count = std::max(1, it->second);
    }
    std::vector<std::string> addresses;
    for (int i = 1; i <= count; ++i) {
      const std::string name = i == 1 ? kind : absl::StrCat(kind, "#", i);
      int mport = 0;
      auto port = t->StartProcess(name, kind, args, &mport);
      if (!port.ok()) return port.status();
      t->ports_[name] = *port;
      t->metrics_ports_[name] = mport;
      addresses.push_back(absl::StrCat("127.0.0.1:", *port));
    }
    orch_args.push_back(absl::StrCat("--specialist=", CardNameOf(kind), "=",
                                     count > 1 ? "ipv4:" : "",
                                     absl::StrJoin(addresses, ",")));
  }
  if (options.redis) {
    RedisServer::Options redis;
    redis.dir = t->dir_.File("redis");
    redis.appendonly = options.redis_appendonly;
    std::filesystem::create_directories(redis.dir);
    auto server = RedisServer::Start(redis);
    if (!server.ok()) return server.status();
    t->redis_ = std::move(*server);
    orch_args.push_back("--run-store=" + t->redis_->url());
  }
  std::string orchestrator_address = options.orchestrator_address_override;
  if (orchestrator_address.empty()) {
    t->orchestrator_args_ = orch_args;
    t->orchestrator_redis_ = options.redis;
    std::vector<std::string> addresses;
    const int count = std::max(1, options.orchestrator_replicas);
    const std::vector<std::string>& hosts = options.orchestrator_hosts;
    if (!hosts.empty() && static_cast<int>(hosts.size()) < count) {
      return absl::InvalidArgumentError(
          "fewer orchestrator_hosts than replicas");
    }
    for (int i = 0; i < count; ++i) {
      const std::string host = hosts.empty() ? "127.0.0.1" : hosts[i];
      // With hosts, replica 1's port is everyone's.
      auto port = t->StartOrchestrator(
          hosts.empty() ? "" : host, hosts.empty() ? 0 : t->orchestrator_port_);
      if (!port.ok()) return port.status();
      addresses.push_back(absl::StrCat(host, ":", *port));
    }
    orchestrator_address =
        absl::StrCat(count > 1 ? "ipv4:" : "", absl::StrJoin(addresses, ","));
    if (!options.gateway_orchestrator_target.empty()) {
      orchestrator_address = absl::StrReplaceAll(
          options.gateway_orchestrator_target,
          {{"{port}", absl::StrCat(t->orchestrator_port_)}});
    }
  }
  if (options.start_gateway) {
    std::vector<std::string> args = {"--orchestrator=" + orchestrator_address};
    for (const auto& a : options.extra_gateway_args) args.push_back(a);
    t->gateway_args_ = args;
    auto port = t->StartProcess("gateway", "gateway", args, nullptr);
    if (!port.ok()) return port.status();
    t->gateway_port_ = *port;
    // Ready when the orchestrator has described every specialist started.
    if (!options.specialists.empty()) {
      httplib::Client client("127.0.0.1", t->gateway_port_);
      client.set_read_timeout(5, 0);
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      while (true) {
        size_t available = 0;
        httplib::Headers headers;
        if (!options.gateway_token.empty()) {
          headers.emplace("Authorization", "Bearer " + options.gateway_token);
        }
        if (auto res = client.Get("/api/specialists", headers);
            res && res->status == 200) {
          auto j = nlohmann::json::parse(res->body, nullptr, false);
          if (j.is_object() && j["specialists"].is_array()) {
            for (const auto& s : j["specialists"]) {
              if (s.value("available", false)) ++available;
            }
          }
        }
        if (available >= options.specialists.size()) break;
        if (absl::Now() > deadline) {
          return absl::DeadlineExceededError(
              "specialists not available through the gateway\n" + t->Logs());
        }
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
  }
  return t;
}

Topology::~Topology() {
  for (auto it = start_order_.rbegin(); it != start_order_.rend(); ++it) {
    processes_.erase(*it);  // SIGTERM, wait, SIGKILL.
  }
  redis_.reset();  // After the orchestrators, before its directory goes.
  // The directory (logs, port files, a fresh database) is kept, and its path
  // printed, when the test failed or AGENTSTREAM_KEEP_TEST_DIRS is set;
  // removed otherwise (ScopedTempDir).
  dir_.Remove();
}

absl::StatusOr<int> Topology::StartOrchestrator(const std::string& host,
                                                int port) {
  const size_t i = orchestrator_names_.size() + 1;
  const std::string name =
      i == 1 ? "orchestrator" : absl::StrCat("orchestrator#", i);
  std::vector<std::string> args = orchestrator_args_;
  if (orchestrator_redis_) args.push_back("--replica-id=" + name);
  int mport = 0;
  auto bound = StartProcess(name, "orchestrator", args, &mport, host, port);
  if (!bound.ok()) return bound.status();
  ports_[name] = *bound;
  metrics_ports_[name] = mport;
  orchestrator_names_.push_back(name);
  if (i == 1) {
    orchestrator_port_ = *bound;
    orchestrator_metrics_port_ = mport;
  }
  return *bound;
}

absl::Status Topology::AddOrchestrator(const std::string& host) {
  if (orchestrator_names_.empty()) {
    return absl::FailedPreconditionError("no orchestrator was started");
  }
  auto port = StartOrchestrator(host, orchestrator_port_);
  return port.ok() ? absl::OkStatus() : port.status();
}

absl::StatusOr<int> Topology::RestartGateway() {
  if (gateway_args_.empty()) {
    return absl::FailedPreconditionError("no gateway was started");
  }
  if (absl::Status s = StopProcess("gateway", SIGTERM); !s.ok()) {
    if (Subprocess* p = process("gateway")) {
      p->Signal(SIGKILL);
      (void)p->Wait(absl::Seconds(5));
    }
  }
  processes_.erase("gateway");
  auto port = StartProcess("gateway", "gateway", gateway_args_, nullptr);
  if (!port.ok()) return port.status();
  gateway_port_ = *port;
  return *port;
}

absl::StatusOr<int> Topology::StartGateway(
    const std::string& name, const std::string& orchestrator_address) {
  if (gateway_args_.empty()) {
    return absl::FailedPreconditionError("no gateway was started");
  }
  std::vector<std::string> args = gateway_args_;
  args[0] = "--orchestrator=" + orchestrator_address;
  auto port = StartProcess(name, "gateway", args, nullptr);
  if (!port.ok()) return port.status();
  ports_[name] = *port;
  return *port;
}

absl::Status Topology::StopProcess(const std::string& name, int signal,
                                   absl::Duration timeout) {
  Subprocess* p = process(name);
  if (p == nullptr) return absl::NotFoundError("no process " + name);
  p->Signal(signal);
  auto code = p->Wait(timeout);
  if (!code.ok()) return code.status();
  return absl::OkStatus();
}

int Topology::specialist_port(const std::string& kind) const {
  auto it = ports_.find(kind);
  return it == ports_.end() ? 0 : it->second;
}

int Topology::specialist_metrics_port(const std::string& kind) const {
  auto it = metrics_ports_.find(kind);
  return it == metrics_ports_.end() ? 0 : it->second;
}

Subprocess* Topology::process(const std::string& name) {
  auto it = processes_.find(name);
  return it == processes_.end() ? nullptr : it->second.get();
}

std::string Topology::Logs() const {
  std::string out;
  for (const auto& name : start_order_) {
    absl::StrAppend(
        &out, "----- ", name, " -----\n",
        ReadFileOrEmpty(absl::StrCat(dir_.path(), "/", name, ".log")));
  }
  return out;
}

absl::StatusOr<std::string> ScrapeMetrics(int port) {
  if (port <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no metrics port (", port, ")"));
  }
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  auto res = client.Get("/metrics");
  if (!res) {
    return absl::UnavailableError(absl::StrCat(
        "GET 127.0.0.1:", port, "/metrics: ", httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "GET 127.0.0.1:", port, "/metrics answered ", res->status));
  }
  return std::move(res->body);
}

absl::StatusOr<double> ScrapeMetric(int port, const std::string& series) {
  absl::StatusOr<std::string> text = ScrapeMetrics(port);
  if (!text.ok()) return text.status();
  const size_t brace = series.find('{');
  const bool labelled = brace != std::string::npos;
  const std::string family = series.substr(0, brace);
  bool declared = false;
  int matches = 0;
  double value = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# TYPE <family> <type>"
      declared |= absl::StartsWith(line, absl::StrCat("# TYPE ", family, " "));
      continue;
    }
    // "<name>[{labels}] <value>": the value after the last space.
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, space);
    const absl::string_view name = key.substr(0, key.find('{'));
    if (labelled ? key != series : name != series) continue;
    if (!absl::SimpleAtod(line.substr(space + 1), &value)) {
      return absl::DataLossError(
          absl::StrCat("unparsable sample at port ", port, ": ", line));
    }
    ++matches;
  }
  if (matches == 1) return value;
  if (matches > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        matches, " samples of ", series, " at port ", port, ": give labels"));
  }
  if (labelled && declared) return 0.0;
  return absl::NotFoundError(
      absl::StrCat("no ", series, " in the metrics at port ", port,
                   declared ? "" : " (its family is not declared)"));
}

double MetricOrFail(int port, const std::string& series) {
  absl::StatusOr<double> v = ScrapeMetric(port, series);
  if (!v.ok()) {
    ADD_FAILURE() << "metric " << series << " unreadable: " << v.status();
    return std::numeric_limits<double>::quiet_NaN();
  }
  return *v;
}

}  // namespace agentstream::testing
