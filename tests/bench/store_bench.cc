// store_bench: how many updates/s one Redis takes from the run store
// (orchestrator/store/redis_run_store.h) before it saturates
// (docs/BENCHMARKS.md, "Issue 15"; docs/SCALING.md, "Sizing").
//
// It drives RedisRunStore itself, without gRPC, specialists or clients:
// --replicas stores (each a replica: its own writer thread and connection,
// as --replica-id gives an orchestrator) share one redis-server, each with
// --runs/--replicas runs created (Create) and tracked (Track) as the
// RunManager does. One driver thread per replica appends --size-byte
// updates to its runs' logs as fast as they are committed, keeping at most
// --window updates per run appended and not yet committed (a run's log waits
// for Redis as its followers do: the commit gate, orchestrator/run_log.h).
// Counted: the updates committed (acknowledged by Redis) during --seconds
// after --warmup-s, the redis-server's and this process's CPU over the same
// interval (% of one core), and the commit latency (append -> committed)
// of every update.
//
// What the window shows: --window=1 --runs=1 is one update per round trip
// (the writer has nothing else to send while one is in flight); larger
// windows and more runs let each round trip carry more (one Lua script call
// per run per round trip, every queued entry of that run in it).
//
// Unless --redis-url is given it starts Debian's redis-server on a free
// loopback port, AOF on (appendfsync everysec), as tests/testing/topology.h
// and the deployments run it.
//
// Exit status: 0 when every figure was measured; 1 otherwise.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agentstream/v1/update.pb.h"
#include "common/clock.h"
#include "common/flags.h"
#include "orchestrator/run.h"
#include "orchestrator/run_log.h"
#include "orchestrator/run_store.h"
#include "orchestrator/store/redis_run_store.h"
#include "tests/bench/bench_client.h"
#include "tests/bench/scenarios.h"
#include "tests/testing/redis_server.h"

namespace agentstream::bench {
namespace {

using orchestrator::Run;
using orchestrator::RunLog;
using orchestrator::store::RedisRunStore;

// Nothing is taken over or cancelled here: the store's callbacks only say
// when they are called, which would be a fault of the bench.
class Events final : public orchestrator::RunStoreEvents {
 public:
  void OnCancelRequested(const std::string& id) override { Fault(id); }
  void OnFollowedElsewhere(const std::string&) override {}
  absl::Status OnTakeOver(const orchestrator::RunRecord& record,
                          const std::vector<std::string>&, uint64_t,
                          const std::string&) override {
    Fault(record.request_id);
    return absl::FailedPreconditionError("store_bench takes nothing over");
  }
  void OnLost(const std::string& id, const absl::Status&) override {
    Fault(id);
  }
  int faults() const { return faults_.load(); }
  // From now on the stores stop: a replica that stops hands its runs over
  // (its leases expire at once) and another still running may take them.
  void Closing() { closing_.store(true); }

 private:
  void Fault(const std::string& id) {
    if (closing_.load()) return;
    std::fprintf(stderr, "store_bench: unexpected store event for %s\n",
                 id.c_str());
    faults_.fetch_add(1);
  }
  std::atomic<int> faults_{0};
  std::atomic<bool> closing_{false};
};

// Wakes a driver when any of its logs changed (a commit).
class Wake final : public orchestrator::LogListener {
 public:
  void OnLogChanged() override {
    absl::MutexLock lock(&mu_);
    changed_ = true;
  }
  void Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&changed_), timeout);
    changed_ = false;
  }

 private:
  absl::Mutex mu_;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

// utime + stime of `pid` in clock ticks; 0 if unreadable.
int64_t CpuTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string skip;
  // Fields 3..13 (state .. cmajflt), then utime (14) and stime (15).
  for (int i = 3; i <= 13; ++i) fields >> skip;
  int64_t utime = 0, stime = 0;
  fields >> utime >> stime;
  return utime + stime;
}

struct Params {
  int64_t replicas = 1;
  int64_t runs = 100;
  int64_t size = 300;
  int64_t window = 64;
  double seconds = 3;
  double warmup_s = 0.5;
  int64_t max_log_events = 1000;
};

struct DriverRun {
  std::shared_ptr<Run> run;
  uint64_t appended = 0;
  uint64_t committed = 0;
  // Append times of the entries not yet committed, seq appended+1-n.. order.
  std::vector<int64_t> sent_ns;
  size_t sent_head = 0;
};

}  // namespace
}  // namespace agentstream::bench

int main(int argc, char** argv) {
  using namespace agentstream;
  using namespace agentstream::bench;
  Params p;
  std::string redis_url, json_out;
  bool appendonly = true;
  FlagSet flags("store_bench",
                "Updates/s one Redis takes from the run store "
                "(RedisRunStore driven directly; docs/BENCHMARKS.md).");
  flags.Int("replicas", &p.replicas,
            "RedisRunStore instances (orchestrator replicas: a writer "
            "thread and connection each) sharing the Redis.");
  flags.Int("runs", &p.runs, "Live runs, spread over the replicas.");
  flags.Int("size", &p.size, "Bytes of each update's text.");
  flags.Int("window", &p.window,
            "Updates a run may have appended and not yet committed (1: "
            "each waits for the previous one's acknowledgement).");
  flags.Double("seconds", &p.seconds, "Seconds measured.");
  flags.Double("warmup-s", &p.warmup_s, "Seconds driven before measuring.");
  flags.Int("max-log-events", &p.max_log_events,
            "Each run's log bound, in this process and in Redis (the "
            "orchestrator's --max-log-events; past it every append trims).");
  flags.String("redis-url", &redis_url,
               "A running Redis (redis://HOST:PORT); empty: start one here.");
  flags.Bool("appendonly", &appendonly,
             "The started redis-server's AOF (appendfsync everysec).");
  flags.String("json-out", &json_out,
               "Also write the figures here as JSON ({\"store\":...}).");
  ParseFlagsOrExit(flags, argc, argv);
  if (p.replicas < 1 || p.runs < p.replicas || p.window < 1 || p.size < 0) {
    std::fprintf(stderr,
                 "store_bench: need runs >= replicas >= 1, "
                 "window >= 1\n");
    return 2;
  }

  std::unique_ptr<testing::RedisServer> server;
  if (redis_url.empty()) {
    testing::RedisServer::Options options;
    options.appendonly = appendonly;
    auto s = testing::RedisServer::Start(options);
    if (!s.ok()) {
      std::fprintf(stderr, "cannot start redis-server: %s\n",
                   std::string(s.status().message()).c_str());
      return 1;
    }
    server = std::move(*s);
    redis_url = server->url();
  }
  auto address = orchestrator::store::ParseRedisUrl(redis_url);
  if (!address.ok()) {
    std::fprintf(stderr, "--redis-url: %s\n",
                 std::string(address.status().message()).c_str());
    return 2;
  }

  Events events;
  std::vector<std::unique_ptr<RedisRunStore>> stores;
  std::vector<std::vector<DriverRun>> runs(p.replicas);
  std::vector<std::shared_ptr<Wake>> wakes;
  const std::string text(p.size, 'x');
  for (int64_t r = 0; r < p.replicas; ++r) {
    orchestrator::store::RedisRunStoreOptions options;
    options.address = *address;
    options.replica_id = absl::StrCat("bench-", getpid(), "-", r);
    options.key_prefix = absl::StrCat("store_bench_", getpid());
    options.max_log_events = static_cast<size_t>(p.max_log_events);
    stores.push_back(std::make_unique<RedisRunStore>(options));
    stores.back()->Start(&events);
    wakes.push_back(std::make_shared<Wake>());
  }
  for (int64_t i = 0; i < p.runs; ++i) {
    const int64_t r = i % p.replicas;
    orchestrator::RunRecord record;
    record.request_id = absl::StrCat("run-", i);
    record.question = "store_bench";
    if (absl::Status created = stores[r]->Create(record); !created.ok()) {
      std::fprintf(stderr, "Create: %s\n",
                   std::string(created.message()).c_str());
      return 1;
    }
    orchestrator::RunOptions run_options;
    run_options.max_log_events = static_cast<size_t>(p.max_log_events);
    auto run = std::make_shared<Run>(
        record.request_id, record.question, google::protobuf::Struct(), "",
        std::vector<Run::Participant>{}, Clock::Real(), run_options, nullptr,
        [] {});
    stores[r]->Track(run, 1);
    run->log()->AddListener(wakes[r]);
    DriverRun d;
    d.run = run;
    runs[r].push_back(std::move(d));
  }

  // Drivers: append while a run has room in its window; count commits
  // and their latency once measuring.
  std::atomic<bool> measuring{false}, stop{false};
  std::vector<int64_t> committed_in(p.replicas, 0);
  std::vector<std::vector<int64_t>> latencies(p.replicas);
  std::vector<std::thread> drivers;
  for (int64_t r = 0; r < p.replicas; ++r) {
    drivers.emplace_back([&, r] {
      while (!stop.load()) {
        for (DriverRun& d : runs[r]) {
          const std::shared_ptr<RunLog>& log = d.run->log();
          uint64_t visible = 0;
          log->Read([&](const RunLog::View& v) { visible = v.last_seq(); });
          const int64_t now = NowNs();
          const bool counting = measuring.load();
          while (d.committed < visible) {
            ++d.committed;
            if (counting) {
              ++committed_in[r];
              latencies[r].push_back(now - d.sent_ns[d.sent_head]);
            }
            ++d.sent_head;
          }
          if (d.sent_head > 4096) {
            d.sent_ns.erase(d.sent_ns.begin(), d.sent_ns.begin() + d.sent_head);
            d.sent_head = 0;
          }
          bool appended = false;
          while (d.appended - d.committed < static_cast<uint64_t>(p.window)) {
            agentstream::v1::Update u;
            u.set_request_id(d.run->request_id());
            u.set_emitted_at(NowNs());
            u.set_specialist("Synthetic");
            u.mutable_thinking()->set_agent("Synthetic");
            u.mutable_thinking()->set_thought(text);
            if (log->Append(std::move(u)) == 0) break;
            d.sent_ns.push_back(NowNs());
            ++d.appended;
            appended = true;
          }
          if (appended) log->Notify();
        }
        wakes[r]->Wait(absl::Milliseconds(100));
      }
    });
  }

  absl::SleepFor(absl::Seconds(p.warmup_s));
  const pid_t redis_pid = server != nullptr ? server->pid() : 0;
  const int64_t redis0 = redis_pid != 0 ? CpuTicks(redis_pid) : 0;
  const int64_t self0 = CpuTicks(getpid());
  const int64_t t0 = NowNs();
  measuring.store(true);
  absl::SleepFor(absl::Seconds(p.seconds));
  measuring.store(false);
  const int64_t t1 = NowNs();
  const int64_t redis1 = redis_pid != 0 ? CpuTicks(redis_pid) : 0;
  const int64_t self1 = CpuTicks(getpid());
  stop.store(true);
  for (auto& w : wakes) w->OnLogChanged();
  for (std::thread& t : drivers) t.join();
  events.Closing();
  for (auto& s : stores) s->Stop();

  int64_t committed = 0;
  std::vector<int64_t> all;
  for (int64_t r = 0; r < p.replicas; ++r) {
    committed += committed_in[r];
    all.insert(all.end(), latencies[r].begin(), latencies[r].end());
  }
  const double secs = (t1 - t0) / 1e9;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto cpu_pct = [&](int64_t a, int64_t b) -> std::optional<double> {
    if (b <= 0 || secs <= 0) return std::nullopt;
    return 100.0 * (b - a) / hz / secs;
  };
  int64_t update_bytes = 0;
  if (!runs[0].empty()) {
    runs[0][0].run->log()->Read([&](const RunLog::View& v) {
      if (v.last_seq() >= v.first_seq()) {
        update_bytes = static_cast<int64_t>(v.At(v.last_seq())->bytes().size());
      }
    });
  }
  Figures f;
  f.Set("updates_per_s",
        committed > 0 ? std::optional<double>(committed / secs) : std::nullopt);
  f.Set("mb_per_s",
        committed > 0 && update_bytes > 0
            ? std::optional<double>(committed / secs * update_bytes / 1e6)
            : std::nullopt);
  f.Set("update_bytes",
        update_bytes > 0 ? std::optional<double>(update_bytes) : std::nullopt);
  f.Set("commit_p50_ms", PercentileMs(all, 0.5));
  f.Set("commit_p99_ms", PercentileMs(all, 0.99));
  f.Set("redis_cpu_pct",
        redis_pid != 0 ? cpu_pct(redis0, redis1) : std::nullopt);
  f.Set("bench_cpu_pct", cpu_pct(self0, self1));
  if (events.faults() > 0) {
    f.Fail(absl::StrCat(events.faults(), " unexpected store events"));
  }
  std::printf(
      "store_bench: redis %s%s, %ld replicas, %ld runs, %ld B "
      "updates, window %ld, %g s\n%s",
      redis_url.c_str(),
      server == nullptr ? "" : (appendonly ? " (AOF)" : " (no AOF)"),
      p.replicas, p.runs, p.size, p.window, p.seconds, f.Text().c_str());
  if (!json_out.empty()) {
    std::ofstream(json_out) << "{\"store\":" << f.Json() << "}\n";
  }
  if (!f.ok() || (!f.all_measured() && server != nullptr)) return 1;
  return 0;
}
