// The benchmark's scenarios (docs/BENCHMARKS.md): each drives a system
// through tests/bench/bench_client.h and returns its figures. A figure that
// could not be measured is absent (nullopt), never 0; a scenario whose runs
// or streams did not all do what was asked is not ok, and says why.
#ifndef AGENTSTREAM_TESTS_BENCH_SCENARIOS_H_
#define AGENTSTREAM_TESTS_BENCH_SCENARIOS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agentstream::bench {

// The system under test: its HTTP port on 127.0.0.1 and, when known, the
// PIDs whose memory and threads are sampled (0: not sampled, and the figures
// that need them are not measured).
struct Target {
  int port = 0;
  pid_t gateway = 0;
  pid_t orchestrator = 0;
  pid_t synthetic = 0;
  std::string extra_query;  // Appended to every stream request.
  // The run store's Redis (--run-store=redis) on 127.0.0.1; 0: none.
  int redis_port = 0;
  std::string redis_prefix = "agentstream";  // --run-store-prefix
};

class Figures {
 public:
  void Set(const std::string& name, std::optional<double> value);
  // The scenario did not do what was asked (a run failed, a stream did not
  // open...): its figures do not stand.
  void Fail(const std::string& why);
  bool ok() const { return failures_.empty(); }
  bool all_measured() const;
  // "name: value" lines, "not measured" for an absent figure.
  std::string Text() const;
  // {"ok":..,"failures":[..],"figures":{"name":value|null,...}}
  std::string Json() const;

 private:
  std::vector<std::pair<std::string, std::optional<double>>> values_;
  std::vector<std::string> failures_;
};

struct ThroughputParams {
  int64_t runs = 50;
  int64_t count = 1000;
  int64_t size = 100;
  double rate = 0;  // Per run; 0: as fast as the producer can.
  int64_t duration_s = 120;
};
// `runs` concurrent runs: events/s and partial results/s received by the
// clients, and the latency emitted_at -> receipt of every partial result.
Figures Throughput(const Target& target, const ThroughputParams& p);

struct StreamsParams {
  int64_t streams = 1000;
  // Streams connect evenly over this window (0: all at once): what is
  // measured is how many the system holds; how fast clients may arrive is
  // the burst scenario's.
  int64_t window_ms = 0;
  double hold_s = 3;  // Held open after all are open (heartbeats flow).
  int64_t healthz_samples = 200;
  int64_t duration_s = 120;
};
// `streams` live runs held open: memory per stream (gateway + orchestrator),
// the Synthetic process's memory per idle run, heartbeats seen, and /healthz
// latency while they are open.
Figures Streams(const Target& target, const StreamsParams& p);

struct BurstParams {
  int64_t clients = 1000;
  int64_t window_ms = 1000;  // Connections spread evenly over this window.
  double settle_s = 60;      // Watch threads and RSS this long after.
  int64_t duration_s = 60;
  // Where to write every sample of threads and RSS as CSV (empty: not).
  std::string samples_path;
};
// `clients` new runs connecting within `window_ms`: time to `connected` and
// to a first update per client, refusals, and the gateway's and the
// orchestrator's threads and RSS idle, at the peak, and until back within
// 10% of idle (at most `settle_s`).
Figures Burst(const Target& target, const BurstParams& p);

struct OverloadParams {
  int64_t open = 100;   // Streams held open: the gateway's --max-streams.
  int64_t extra = 100;  // Requests past it, sent at once.
  int64_t duration_s = 60;
};
// With --max-streams streams open, `extra` more: each must be answered 503
// with Retry-After at once (latency of the answer), none left hanging.
Figures Overload(const Target& target, const OverloadParams& p);

struct FirstUpdateParams {
  int64_t runs = 50;  // Sequential, one at a time, 20 ms apart.
};
// A new run on an idle system: request -> `connected`, -> first update,
// -> first Synthetic partial result.
Figures FirstUpdate(const Target& target, const FirstUpdateParams& p);

struct RedisMemoryParams {
  int64_t runs = 1000;  // Ended runs measured (all started at once).
  int64_t count = 80;   // Synthetic updates a run.
  int64_t size = 300;   // Bytes a Synthetic update.
  int64_t live = 1000;  // Live runs measured after them (0: none).
  int64_t duration_s = 120;
};
// Memory in the run store's Redis (Target::redis_port; INFO memory's
// used_memory, after a few warm-up runs):
//  - per ended run with its log (kept --log-ttl): `runs` runs of `count`
//    updates of `size` bytes, run to their end, until no lease is left;
//    MEMORY USAGE of one such run's log, meta and end keys, its log's
//    entries (XLEN);
//  - per tombstone: the same runs' logs and metas deleted (what --log-ttl
//    does when it expires), their end keys left (--tombstone-ttl);
//  - per live run: `live` runs held open (an update now, then one a
//    minute), each with its record, lease and first updates.
Figures RedisMemory(const Target& target, const RedisMemoryParams& p);

}  // namespace agentstream::bench

#endif  // AGENTSTREAM_TESTS_BENCH_SCENARIOS_H_
