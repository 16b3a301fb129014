// stream_bench: what the whole path costs, measured through the real
// binaries on loopback (docs/BENCHMARKS.md). One scenario per --mode:
//
//   throughput    --runs concurrent runs, each asking the Synthetic
//                 specialist for --count updates of --size bytes at --rate
//                 per second (0: as fast as it can): events/s received by
//                 the clients through all three hops, and the latency from
//                 the specialist's emitted_at to the client's receipt.
//   streams       --streams live runs held open with heartbeats: memory per
//                 open stream (gateway + orchestrator; the Synthetic process
//                 per idle run), /healthz latency while they are open.
//   all           throughput, then streams (one system).
//   burst         --burst clients connecting within --burst-window-ms: time
//                 to `connected` and to a first update, refusals, threads
//                 and RSS of the gateway and the orchestrator idle, at the
//                 peak and until back within 10% of idle (--settle-s).
//   overload      a gateway at --max-streams=--overload-open with that many
//                 streams open, then --overload-extra requests: each must
//                 be an immediate 503 + Retry-After.
//   first-update  --first-update-runs new runs one at a time on an idle
//                 system: request -> `connected` -> first update.
//   redis-memory  with --run-store=redis: bytes in Redis (INFO memory) per
//                 ended run of --memory-runs runs x --count updates x
//                 --size bytes, per tombstone, per live run
//                 (--memory-live); MEMORY USAGE of one run's keys.
//   serve         starts the system, writes its port and PIDs to
//                 --serve-file ({"port":P,"gateway_pid":..,
//                 "orchestrator_pid":..,"synthetic_pid":..,"redis_port":..
//                 (0 without Redis)}) and keeps it
//                 until SIGTERM or SIGINT, for other invocations to measure
//                 with --gateway-port and the PIDs (tests/bench/run_all.py).
//
// It starts its own system (gateway, orchestrator, Synthetic) from
// AGENTSTREAM_BIN_DIR (default: ./bin next to this binary's directory) unless
// --gateway-port points at a running one (another stack serving the same
// request, such as tests/bench/peers/fastapi_peer.py, included). With
// --run-store=redis it also starts a redis-server (tests/testing/
// redis_server.h: loopback, a free port, AOF on) and gives every orchestrator
// (--orchestrators of them, the gateway reaching them round robin)
// --run-store=redis://... (docs/SCALING.md).
//
// Exit status: 0 only when every run and stream it started did what it was
// asked and every figure was measured; a figure that could not be measured is
// printed as "not measured" (never as 0), and the exit status is then 1.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "tests/bench/bench_client.h"
#include "tests/bench/scenarios.h"
#include "tests/testing/topology.h"

namespace agentstream::bench {
namespace {

// Files the client needs: every stream, plus the system's own when it is
// started here (its children inherit the limit).
constexpr int64_t kWantFiles = 65536;

// The orchestrator's --log-ttl-ms in burst mode (see its use).
constexpr int kBurstLogTtlMs = 20'000;

pid_t PidOf(testing::Topology& t, const std::string& name) {
  testing::Subprocess* p = t.process(name);
  return p == nullptr ? 0 : p->pid();
}

}  // namespace
}  // namespace agentstream::bench

int main(int argc, char** argv) {
  using namespace agentstream;
  using namespace agentstream::bench;
  std::string mode = "all";
  int64_t gateway_port = 0, gateway_pid = 0, orchestrator_pid = 0,
          synthetic_pid = 0;
  std::string extra_query, json_out, serve_file;
  int64_t max_streams = 20000, heartbeat_ms = 1000;
  ThroughputParams tp;
  StreamsParams sp;
  BurstParams bp;
  OverloadParams op;
  FirstUpdateParams fp;
  RedisMemoryParams mp;
  std::string run_store = "memory";
  int64_t orchestrators = 1;
  int64_t duration_s = 120;
  FlagSet flags("stream_bench",
                "Measures events/s, latency, open streams, connection bursts, "
                "overload answers and memory through gateway, orchestrator "
                "and the Synthetic specialist (docs/BENCHMARKS.md).");
  flags.String("mode", &mode,
               "throughput, streams, all (throughput then streams), burst, "
               "overload, first-update or serve.");
  flags.Int("gateway-port", &gateway_port,
            "Measure a running server on 127.0.0.1 at this port (0: start "
            "gateway, orchestrator and Synthetic here).");
  flags.Int("gateway-pid", &gateway_pid,
            "With --gateway-port: the gateway's PID, for its memory and "
            "threads (without it they are not measured).");
  flags.Int("orchestrator-pid", &orchestrator_pid,
            "With --gateway-port: the orchestrator's PID.");
  flags.Int("synthetic-pid", &synthetic_pid,
            "With --gateway-port: the Synthetic specialist's PID.");
  flags.String("extra-query", &extra_query,
               "Appended to every stream request's query (e.g. pace=written "
               "for the FastAPI peer).");
  flags.String("json-out", &json_out,
               "Also write the figures here as JSON (for tests/bench/"
               "run_all.py).");
  flags.String("serve-file", &serve_file,
               "serve: where to write the port and PIDs once serving.");
  flags.Int("max-streams", &max_streams,
            "The started gateway's --max-streams (overload: --overload-open).");
  flags.Int("heartbeat-ms", &heartbeat_ms,
            "The started gateway's --heartbeat-ms.");
  flags.Int("runs", &tp.runs, "throughput: concurrent runs.");
  flags.Int("count", &tp.count, "throughput: Synthetic updates per run.");
  flags.Int("size", &tp.size, "throughput: bytes per Synthetic update.");
  flags.Double("rate", &tp.rate,
               "throughput: Synthetic updates per second per run (0: max).");
  flags.Int("streams", &sp.streams, "streams: open streams.");
  flags.Int("streams-window-ms", &sp.window_ms,
            "streams: they connect evenly over this window (0: at once).");
  flags.Double("hold-s", &sp.hold_s,
               "streams: seconds held open once all are open.");
  flags.Int("healthz-samples", &sp.healthz_samples,
            "streams: GET /healthz while the streams are open.");
  flags.Int("burst", &bp.clients, "burst: clients.");
  flags.Int("burst-window-ms", &bp.window_ms,
            "burst: the clients connect evenly over this window.");
  flags.Double("settle-s", &bp.settle_s,
               "burst: watch threads and RSS at most this long after.");
  flags.String("samples-out", &bp.samples_path,
               "burst: write every sample of threads and RSS here (CSV).");
  flags.Int("overload-open", &op.open,
            "overload: the gateway's --max-streams, all held open.");
  flags.Int("overload-extra", &op.extra, "overload: requests past it.");
  flags.Int("first-update-runs", &fp.runs,
            "first-update: runs, one at a time.");
  flags.String("run-store", &run_store,
               "The started orchestrators' run store: memory, or redis (a "
               "redis-server started here, docs/SCALING.md).");
  flags.Int("orchestrators", &orchestrators,
            "Orchestrator replicas started (more than 1: --run-store=redis).");
  flags.Int("memory-runs", &mp.runs,
            "redis-memory: ended runs (of --count x --size), all at once.");
  flags.Int("memory-live", &mp.live, "redis-memory: live runs held open.");
  flags.Int("duration-s", &duration_s, "Upper bound on each phase's time.");
  ParseFlagsOrExit(flags, argc, argv);
  tp.duration_s = sp.duration_s = bp.duration_s = op.duration_s =
      mp.duration_s = duration_s;
  mp.count = tp.count;
  mp.size = tp.size;

  const bool known = mode == "throughput" || mode == "streams" ||
                     mode == "all" || mode == "burst" || mode == "overload" ||
                     mode == "first-update" || mode == "serve" ||
                     mode == "redis-memory";
  if (!known) {
    std::fprintf(stderr, "unknown --mode=%s (see --help)\n", mode.c_str());
    return 2;
  }
  const bool redis = run_store == "redis";
  if ((!redis && run_store != "memory") || orchestrators < 1 ||
      (orchestrators > 1 && !redis) ||
      (mode == "redis-memory" && (!redis || gateway_port != 0))) {
    std::fprintf(stderr,
                 "--run-store is memory or redis; --orchestrators > 1 and "
                 "--mode=redis-memory need --run-store=redis and no "
                 "--gateway-port\n");
    return 2;
  }
  const int64_t files = RaiseFileLimit(kWantFiles);
  std::unique_ptr<testing::Topology> topology;
  Target target{.port = static_cast<int>(gateway_port),
                .gateway = static_cast<pid_t>(gateway_pid),
                .orchestrator = static_cast<pid_t>(orchestrator_pid),
                .synthetic = static_cast<pid_t>(synthetic_pid),
                .extra_query = extra_query};
  if (mode == "serve" && (gateway_port != 0 || serve_file.empty())) {
    std::fprintf(stderr,
                 "--mode=serve needs --serve-file, no --gateway-port\n");
    return 2;
  }
  // Blocked before any thread starts, so that serve's sigwait takes them
  // (the children get an empty mask: tests/testing/subprocess.h).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (mode == "serve") pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (gateway_port == 0) {
    testing::TopologyOptions options;
    options.specialists = {"synthetic"};
    options.redis = redis;
    options.orchestrator_replicas = static_cast<int>(orchestrators);
    options.extra_gateway_args = {
        absl::StrCat("--max-streams=",
                     mode == "overload" ? op.open : max_streams),
        absl::StrCat("--heartbeat-ms=", heartbeat_ms)};
    // No bound on runs in the orchestrator: the gateway's --max-streams is
    // the bound measured.
    options.extra_orchestrator_args = {"--max-runs=0"};
    if (mode == "burst") {
      // An ended run's log stays for resumes (--log-ttl-ms, 5 min by
      // default): data, not a leak. The burst's watch (--settle-s) asks
      // for memory back within a minute, so here those logs are kept
      // kBurstLogTtlMs (docs/BENCHMARKS.md says so beside the figure).
      options.extra_orchestrator_args.push_back(
          absl::StrCat("--log-ttl-ms=", kBurstLogTtlMs));
    }
    auto t = testing::Topology::Start(options);
    if (!t.ok()) {
      std::fprintf(stderr, "cannot start the system: %s\n",
                   std::string(t.status().message()).c_str());
      return 1;
    }
    topology = std::move(*t);
    target.port = topology->gateway_port();
    target.gateway = PidOf(*topology, "gateway");
    target.orchestrator = PidOf(*topology, "orchestrator");
    target.synthetic = PidOf(*topology, "synthetic");
    if (topology->redis() != nullptr) {
      target.redis_port = topology->redis()->port();
    }
  }
  if (mode == "serve") {
    const std::string tmp = serve_file + ".tmp";
    std::ofstream(tmp) << absl::StrCat(
        "{\"port\":", target.port, ",\"gateway_pid\":", target.gateway,
        ",\"orchestrator_pid\":", target.orchestrator,
        ",\"synthetic_pid\":", target.synthetic,
        ",\"redis_port\":", target.redis_port, "}\n");
    std::rename(tmp.c_str(), serve_file.c_str());
    int sig = 0;
    sigwait(&stop_signals, &sig);
    return 0;  // The topology stops every process by PID.
  }
  std::printf("machine: %ld cores; open files: %ld\n",
              sysconf(_SC_NPROCESSORS_ONLN), static_cast<long>(files));
  if (gateway_port == 0) {
    std::printf("run store: %s; orchestrators: %ld\n", run_store.c_str(),
                orchestrators);
  }

  std::vector<std::pair<std::string, Figures>> results;
  if (mode == "throughput" || mode == "all") {
    std::printf("throughput: runs=%ld count=%ld size=%ld rate=%g%s%s\n",
                tp.runs, tp.count, tp.size, tp.rate,
                extra_query.empty() ? "" : " ", extra_query.c_str());
    results.emplace_back("throughput", Throughput(target, tp));
  }
  if (mode == "streams" || mode == "all") {
    std::printf("streams: %ld\n", sp.streams);
    results.emplace_back("streams", Streams(target, sp));
  }
  if (mode == "burst") {
    std::printf("burst: %ld clients over %ld ms\n", bp.clients, bp.window_ms);
    results.emplace_back("burst", Burst(target, bp));
  }
  if (mode == "overload") {
    std::printf("overload: %ld open (--max-streams), %ld more\n", op.open,
                op.extra);
    results.emplace_back("overload", Overload(target, op));
  }
  if (mode == "first-update") {
    std::printf("first-update: %ld runs\n", fp.runs);
    results.emplace_back("first-update", FirstUpdate(target, fp));
  }
  if (mode == "redis-memory") {
    std::printf("redis-memory: %ld runs x %ld updates x %ld B, %ld live\n",
                mp.runs, mp.count, mp.size, mp.live);
    results.emplace_back("redis-memory", RedisMemory(target, mp));
  }
  bool ok = true, measured = true;
  std::string json = "{";
  for (const auto& [name, figures] : results) {
    std::printf("%s:\n%s", name.c_str(), figures.Text().c_str());
    ok &= figures.ok();
    measured &= figures.all_measured();
    absl::StrAppend(&json, json.size() > 1 ? "," : "", "\"", name,
                    "\":", figures.Json());
  }
  json += "}\n";
  if (!json_out.empty()) {
    std::ofstream(json_out) << json;
  }
  if (!ok || !measured) {
    std::fprintf(stderr, "stream_bench: %s%s%s: these figures do not stand\n",
                 ok ? "" : "runs or streams failed",
                 !ok && !measured ? "; " : "",
                 measured ? "" : "figures not measured");
    return 1;
  }
  return 0;
}
