#include "tests/bench/scenarios.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "orchestrator/store/redis_connection.h"
#include "tests/bench/bench_client.h"

namespace agentstream::bench {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

absl::Time Deadline(int64_t seconds) {
  return absl::Now() + absl::Seconds(seconds);
}

// Conns that each ask for one Synthetic run, connecting evenly over
// `window_ns` from now (0: all at once).
std::vector<Conn> MakeConns(const Target& t, int64_t n, int64_t count,
                            int64_t size, double rate, int64_t window_ns) {
  std::vector<Conn> conns(n);
  const int64_t now = NowNs();
  const std::string request =
      StreamRequest(t.port, count, size, rate, t.extra_query);
  for (int64_t i = 0; i < n; ++i) {
    conns[i].out = request;
    conns[i].start_ns = window_ns > 0 ? now + window_ns * i / n : 0;
  }
  return conns;
}

// Latencies from each conn's connect to the moment `field` picks; conns
// without that moment are left out.
std::vector<int64_t> Since(const std::vector<Conn>& conns,
                           int64_t Conn::*field) {
  std::vector<int64_t> v;
  for (const Conn& c : conns) {
    if (c.*field > 0 && c.sent_ns > 0) v.push_back(c.*field - c.sent_ns);
  }
  return v;
}

std::optional<double> KiB(std::optional<ProcSample> s) {
  if (!s.has_value()) return std::nullopt;
  return static_cast<double>(s->rss_kib);
}

std::optional<double> PerItem(std::optional<ProcSample> before,
                              std::optional<ProcSample> after, int64_t n) {
  if (!before.has_value() || !after.has_value() || n <= 0) return std::nullopt;
  return static_cast<double>(after->rss_kib - before->rss_kib) / n;
}

using orchestrator::store::RedisConnection;
using orchestrator::store::RedisReply;

// INFO memory's used_memory (bytes the allocator holds for Redis), read
// once the AOF buffer (appendfsync everysec: up to a second of writes, in
// used_memory) has been written out.
std::optional<double> UsedMemory(RedisConnection& c) {
  absl::SleepFor(absl::Milliseconds(1200));
  absl::StatusOr<RedisReply> r = c.Command({"INFO", "memory"});
  if (!r.ok() || r->is_error()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(r->str, '\n')) {
    if (absl::ConsumePrefix(&line, "used_memory:")) {
      int64_t v = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &v)) {
        return static_cast<double>(v);
      }
    }
  }
  return std::nullopt;
}

// Every key matching `pattern` (SCAN; the store's keys only, a test Redis).
std::set<std::string> Keys(RedisConnection& c, const std::string& pattern) {
  std::set<std::string> keys;
  std::string cursor = "0";
  do {
    absl::StatusOr<RedisReply> r =
        c.Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!r.ok() || r->elements.size() != 2) return keys;
    cursor = r->elements[0].str;
    for (const RedisReply& k : r->elements[1].elements) keys.insert(k.str);
  } while (cursor != "0");
  return keys;
}

std::optional<double> Integer(RedisConnection& c,
                              const orchestrator::store::RedisArgv& argv) {
  absl::StatusOr<RedisReply> r = c.Command(argv);
  if (!r.ok() || r->type != RedisReply::Type::kInteger) return std::nullopt;
  return static_cast<double>(r->integer);
}

}  // namespace

void Figures::Set(const std::string& name, std::optional<double> value) {
  values_.emplace_back(name, value);
}

void Figures::Fail(const std::string& why) { failures_.push_back(why); }

bool Figures::all_measured() const {
  return std::all_of(values_.begin(), values_.end(),
                     [](const auto& v) { return v.second.has_value(); });
}

std::string Figures::Text() const {
  std::string out;
  for (const auto& [name, value] : values_) {
    absl::StrAppend(&out, "  ", name, ": ",
                    value.has_value() ? absl::StrFormat("%.6g", *value)
                                      : std::string("not measured"),
                    "\n");
  }
  for (const std::string& f : failures_) {
    absl::StrAppend(&out, "  FAILED: ", f, "\n");
  }
  return out;
}

std::string Figures::Json() const {
  std::vector<std::string> figures, failures;
  for (const auto& [name, value] : values_) {
    figures.push_back(absl::StrCat(JsonString(name), ":",
                                   value.has_value() && std::isfinite(*value)
                                       ? absl::StrFormat("%.9g", *value)
                                       : std::string("null")));
  }
  for (const std::string& f : failures_) failures.push_back(JsonString(f));
  return absl::StrCat("{\"ok\":", ok() ? "true" : "false", ",\"failures\":[",
                      absl::StrJoin(failures, ","), "],\"figures\":{",
                      absl::StrJoin(figures, ","), "}}");
}

Figures Throughput(const Target& t, const ThroughputParams& p) {
  Figures f;
  std::vector<Conn> conns = MakeConns(t, p.runs, p.count, p.size, p.rate, 0);
  std::vector<int64_t> latencies;
  latencies.reserve(p.runs * p.count);
  LoopOptions options;
  options.deadline = Deadline(p.duration_s);
  options.latencies_ns = &latencies;
  const LoopResult r = RunLoop(t.port, conns, options);
  CloseAll(conns);
  if (r.completed != p.runs) {
    f.Fail(absl::StrCat(r.completed, " of ", p.runs, " runs complete (",
                        r.failed, " failed, ", r.refused,
                        " refused): ", FailureSummary(conns, false)));
  }
  const bool any = r.completed > 0 && r.seconds > 0;
  // A rate over runs that did not all complete is not the rate asked for.
  f.Set("events_per_s", f.ok() && any
                            ? std::optional<double>(r.events / r.seconds)
                            : std::nullopt);
  f.Set("partials_per_s", f.ok() && any
                              ? std::optional<double>(r.partials / r.seconds)
                              : std::nullopt);
  f.Set("latency_p50_ms", PercentileMs(latencies, 0.50));
  f.Set("latency_p99_ms", PercentileMs(latencies, 0.99));
  f.Set("latency_max_ms", PercentileMs(latencies, 1.0));
  f.Set("latency_samples", static_cast<double>(latencies.size()));
  f.Set("seconds", r.seconds);
  return f;
}

Figures Streams(const Target& t, const StreamsParams& p) {
  Figures f;
  absl::SleepFor(absl::Milliseconds(500));  // Let start-up settle.
  const auto gw0 = ReadProc(t.gateway), or0 = ReadProc(t.orchestrator),
             sy0 = ReadProc(t.synthetic);
  // Each stream a live run: an update now, then one a minute at most;
  // heartbeats keep it going (the gateway's --heartbeat-ms).
  std::vector<Conn> conns =
      MakeConns(t, p.streams, 10, 16, 0.01, p.window_ms * 1'000'000);
  LoopOptions options;
  options.deadline = Deadline(p.duration_s);
  options.until = LoopOptions::Until::kAllConnected;
  const LoopResult opened = RunLoop(t.port, conns, options);
  int64_t open = 0;
  for (const Conn& c : conns) open += c.connected_ns > 0 && !c.done;
  f.Set("streams_open", static_cast<double>(open));
  f.Set("open_seconds", opened.seconds);
  if (open != p.streams) {
    f.Fail(absl::StrCat(open, " of ", p.streams, " streams open (",
                        opened.failed, " failed, ", opened.refused,
                        " refused): ", FailureSummary(conns, true)));
  }
  options.until = LoopOptions::Until::kDeadline;
  options.deadline = absl::Now() + absl::Seconds(p.hold_s);
  RunLoop(t.port, conns, options);
  int64_t still_open = 0, beating = 0;
  for (const Conn& c : conns) {
    still_open += c.connected_ns > 0 && !c.done;
    beating += c.heartbeats > 0;
  }
  if (still_open != open) {
    f.Fail(absl::StrCat(open - still_open, " streams ended while held"));
  }
  f.Set("streams_with_heartbeat", static_cast<double>(beating));
  const auto gw1 = ReadProc(t.gateway), or1 = ReadProc(t.orchestrator),
             sy1 = ReadProc(t.synthetic);
  const std::vector<int64_t> healthz =
      HealthzSamples(t.port, static_cast<int>(p.healthz_samples));
  CloseAll(conns);
  // Per stream only when every stream asked for is open: a delta spread
  // over fewer streams is another figure.
  const int64_t n = f.ok() ? open : 0;
  std::optional<double> both;
  if (auto g = PerItem(gw0, gw1, n), o = PerItem(or0, or1, n);
      g.has_value() && o.has_value()) {
    both = *g + *o;
  }
  f.Set("gw_orch_kib_per_stream", both);
  f.Set("gateway_kib_per_stream", PerItem(gw0, gw1, n));
  f.Set("orchestrator_kib_per_stream", PerItem(or0, or1, n));
  f.Set("synthetic_kib_per_run", PerItem(sy0, sy1, n));
  f.Set("gateway_rss_kib", KiB(gw1));
  f.Set("healthz_p50_ms", PercentileMs(healthz, 0.50));
  f.Set("healthz_p99_ms", PercentileMs(healthz, 0.99));
  if (static_cast<int64_t>(healthz.size()) != p.healthz_samples) {
    f.Fail(absl::StrCat(p.healthz_samples - healthz.size(), " of ",
                        p.healthz_samples, " /healthz not answered 200"));
  }
  return f;
}

// Runs served before the burst's idle baseline is read.
constexpr int kWarmUpRuns = 20;

Figures Burst(const Target& t, const BurstParams& p) {
  Figures f;
  // Idle is a system that has served: a few runs first, so that what is
  // made once on first use (gRPC's callback threads, its channel to the
  // Synthetic process) is in the baseline rather than counted as growth.
  {
    std::vector<Conn> warm = MakeConns(t, kWarmUpRuns, 3, 100, 0, 0);
    LoopOptions warm_options;
    warm_options.deadline = Deadline(30);
    const LoopResult w = RunLoop(t.port, warm, warm_options);
    CloseAll(warm);
    if (w.completed != kWarmUpRuns) {
      f.Fail(absl::StrCat(
          w.completed, " of ", kWarmUpRuns,
          " warm-up runs complete: ", FailureSummary(warm, false)));
    }
  }
  absl::SleepFor(absl::Seconds(2));
  const auto gw0 = ReadProc(t.gateway), or0 = ReadProc(t.orchestrator);
  if (!gw0.has_value() || !or0.has_value()) {
    f.Fail("no gateway or orchestrator PID to sample");
  }
  ProcSample gw_peak = gw0.value_or(ProcSample{}),
             or_peak = or0.value_or(ProcSample{});
  // Every sample, for --samples-out: seconds since the idle one.
  const absl::Time idle_at = absl::Now();
  std::string csv = "t_s,gw_threads,gw_rss_kib,orch_threads,orch_rss_kib\n";
  auto sample = [&] {
    const auto g = ReadProc(t.gateway), o = ReadProc(t.orchestrator);
    if (g.has_value()) {
      gw_peak.threads = std::max(gw_peak.threads, g->threads);
      gw_peak.rss_kib = std::max(gw_peak.rss_kib, g->rss_kib);
    }
    if (o.has_value()) {
      or_peak.threads = std::max(or_peak.threads, o->threads);
      or_peak.rss_kib = std::max(or_peak.rss_kib, o->rss_kib);
    }
    if (g.has_value() && o.has_value()) {
      absl::StrAppendFormat(&csv, "%.2f,%d,%d,%d,%d\n",
                            absl::ToDoubleSeconds(absl::Now() - idle_at),
                            g->threads, g->rss_kib, o->threads, o->rss_kib);
    }
  };
  // Short live runs: three updates over a second, then done.
  std::vector<Conn> conns =
      MakeConns(t, p.clients, 3, 100, 2.0, p.window_ms * 1'000'000);
  LoopOptions options;
  options.deadline = Deadline(p.duration_s);
  options.tick = sample;
  const LoopResult r = RunLoop(t.port, conns, options);
  const absl::Time burst_end = absl::Now();
  CloseAll(conns);
  int64_t first_sent = INT64_MAX, last_sent = 0, within_5s = 0;
  for (const Conn& c : conns) {
    if (c.sent_ns == 0) continue;
    first_sent = std::min(first_sent, c.sent_ns);
    last_sent = std::max(last_sent, c.sent_ns);
    within_5s +=
        c.first_update_ns > 0 && c.first_update_ns - c.sent_ns <= 5'000'000'000;
  }
  f.Set("clients", static_cast<double>(p.clients));
  f.Set("connect_spread_ms",
        last_sent >= first_sent && last_sent > 0
            ? std::optional<double>((last_sent - first_sent) / 1e6)
            : std::nullopt);
  f.Set("refused", r.refused);
  f.Set("failed", r.failed);
  f.Set("first_update_within_5s", static_cast<double>(within_5s));
  const auto connected = Since(conns, &Conn::connected_ns);
  const auto first = Since(conns, &Conn::first_update_ns);
  f.Set("connected_p50_ms", PercentileMs(connected, 0.5));
  f.Set("connected_p99_ms", PercentileMs(connected, 0.99));
  f.Set("first_update_p50_ms", PercentileMs(first, 0.5));
  f.Set("first_update_p99_ms", PercentileMs(first, 0.99));
  f.Set("first_update_max_ms", PercentileMs(first, 1.0));
  if (r.completed != p.clients) {
    f.Fail(absl::StrCat(r.completed, " of ", p.clients, " runs complete (",
                        r.failed, " failed, ", r.refused,
                        " refused): ", FailureSummary(conns, false)));
  }
  // Back within 10% of idle: threads and RSS of both processes.
  auto within = [](int64_t v, int64_t idle) { return v <= idle * 1.10; };
  std::optional<ProcSample> gw1, or1;
  std::optional<double> settled_after;
  const absl::Time settle_deadline = burst_end + absl::Seconds(p.settle_s);
  while (true) {
    sample();
    gw1 = ReadProc(t.gateway);
    or1 = ReadProc(t.orchestrator);
    if (gw0 && or0 && gw1 && or1 && within(gw1->threads, gw0->threads) &&
        within(gw1->rss_kib, gw0->rss_kib) &&
        within(or1->threads, or0->threads) &&
        within(or1->rss_kib, or0->rss_kib)) {
      settled_after = absl::ToDoubleSeconds(absl::Now() - burst_end);
      break;
    }
    if (absl::Now() >= settle_deadline) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  auto pct = [](std::optional<ProcSample> idle, std::optional<ProcSample> now,
                int64_t ProcSample::*field) -> std::optional<double> {
    if (!idle || !now || (*idle).*field == 0) return std::nullopt;
    return 100.0 * ((*now).*field - (*idle).*field) / (*idle).*field;
  };
  f.Set("gw_threads_idle",
        gw0 ? std::optional<double>(gw0->threads) : std::nullopt);
  f.Set("gw_threads_peak", static_cast<double>(gw_peak.threads));
  f.Set("gw_rss_idle_kib", KiB(gw0));
  f.Set("gw_rss_peak_kib", static_cast<double>(gw_peak.rss_kib));
  f.Set("orch_threads_idle",
        or0 ? std::optional<double>(or0->threads) : std::nullopt);
  f.Set("orch_threads_peak", static_cast<double>(or_peak.threads));
  f.Set("orch_rss_idle_kib", KiB(or0));
  f.Set("orch_rss_peak_kib", static_cast<double>(or_peak.rss_kib));
  // After the watch: how far above idle each still is (0 or less: back).
  f.Set("gw_threads_after_pct", pct(gw0, gw1, &ProcSample::threads));
  f.Set("gw_rss_after_pct", pct(gw0, gw1, &ProcSample::rss_kib));
  f.Set("orch_threads_after_pct", pct(or0, or1, &ProcSample::threads));
  f.Set("orch_rss_after_pct", pct(or0, or1, &ProcSample::rss_kib));
  if (!p.samples_path.empty() && !(std::ofstream(p.samples_path) << csv)) {
    f.Fail("cannot write " + p.samples_path);
  }
  f.Set("settled", settled_after.has_value() ? 1.0 : 0.0);
  // Seconds until back within 10%; the whole watch when it never was
  // (`settled` 0 tells the two apart).
  f.Set("settle_s", settled_after.value_or(p.settle_s));
  return f;
}

Figures Overload(const Target& t, const OverloadParams& p) {
  Figures f;
  std::vector<Conn> held = MakeConns(t, p.open, 10, 16, 0.01, 0);
  LoopOptions options;
  options.deadline = Deadline(p.duration_s);
  options.until = LoopOptions::Until::kAllConnected;
  RunLoop(t.port, held, options);
  int64_t open = 0;
  for (const Conn& c : held) open += c.connected_ns > 0 && !c.done;
  f.Set("held_open", static_cast<double>(open));
  if (open != p.open) {
    f.Fail(absl::StrCat(open, " of ", p.open,
                        " streams open before the "
                        "extra requests"));
  }
  // Two bursts past the bound: the first meets a system that has just
  // served its first max-streams runs (gRPC's thread pools, arenas and the
  // allocator's heaps grow on first use), the second one a second later.
  for (const std::string_view round : {"", "second_"}) {
    if (!round.empty()) absl::SleepFor(absl::Seconds(1));
    std::vector<Conn> extra = MakeConns(t, p.extra, 10, 16, 0.01, 0);
    options.until = LoopOptions::Until::kAllDone;
    options.deadline = Deadline(10);  // An answer later than this is a hang.
    RunLoop(t.port, extra, options);
    CloseAll(extra);
    int64_t refused_503 = 0, with_retry = 0, hung = 0, other = 0;
    std::vector<int64_t> answer;
    for (const Conn& c : extra) {
      if (!c.headers_done) {
        ++hung;
        continue;
      }
      answer.push_back(c.headers_ns - c.sent_ns);
      if (c.status == 503) {
        ++refused_503;
        with_retry += c.retry_after;
      } else {
        ++other;
      }
    }
    const std::string r(round);
    f.Set(r + "extra", static_cast<double>(p.extra));
    f.Set(r + "answered_503", static_cast<double>(refused_503));
    f.Set(r + "with_retry_after", static_cast<double>(with_retry));
    f.Set(r + "other_answers", static_cast<double>(other));
    f.Set(r + "unanswered_10s", static_cast<double>(hung));
    f.Set(r + "answer_p50_ms", PercentileMs(answer, 0.5));
    f.Set(r + "answer_p99_ms", PercentileMs(answer, 0.99));
    f.Set(r + "answer_max_ms", PercentileMs(answer, 1.0));
    if (refused_503 != p.extra || with_retry != p.extra) {
      f.Fail(absl::StrCat(r, "burst: ", refused_503, " of ", p.extra,
                          " answered 503, ", with_retry, " with Retry-After, ",
                          other, " other answers, ", hung, " unanswered"));
    }
  }
  CloseAll(held);
  return f;
}

Figures FirstUpdate(const Target& t, const FirstUpdateParams& p) {
  Figures f;
  std::vector<int64_t> connected, first, partial;
  int64_t failed = 0;
  for (int64_t i = 0; i < p.runs; ++i) {
    absl::SleepFor(absl::Milliseconds(20));  // Idle between runs.
    std::vector<Conn> one = MakeConns(t, 1, 1, 100, 0, 0);
    LoopOptions options;
    options.deadline = Deadline(10);
    const LoopResult r = RunLoop(t.port, one, options);
    CloseAll(one);
    if (r.completed != 1) {
      ++failed;
      continue;
    }
    const Conn& c = one[0];
    if (c.connected_ns > 0) connected.push_back(c.connected_ns - c.sent_ns);
    if (c.first_update_ns > 0) first.push_back(c.first_update_ns - c.sent_ns);
    if (c.first_partial_ns > 0) {
      partial.push_back(c.first_partial_ns - c.sent_ns);
    }
  }
  if (failed > 0) f.Fail(absl::StrCat(failed, " of ", p.runs, " runs failed"));
  f.Set("runs", static_cast<double>(p.runs));
  f.Set("connected_p50_ms", PercentileMs(connected, 0.5));
  f.Set("first_update_p50_ms", PercentileMs(first, 0.5));
  f.Set("first_update_p99_ms", PercentileMs(first, 0.99));
  f.Set("first_partial_p50_ms", PercentileMs(partial, 0.5));
  return f;
}

Figures RedisMemory(const Target& t, const RedisMemoryParams& p) {
  Figures f;
  orchestrator::store::RedisAddress address;
  address.host = "127.0.0.1";
  address.port = t.redis_port;
  auto connected = RedisConnection::Connect(address, {});
  if (t.redis_port == 0 || !connected.ok()) {
    f.Fail(
        absl::StrCat("no run store Redis to read (port ", t.redis_port, ")"));
    return f;
  }
  RedisConnection& c = **connected;
  const std::string prefix = t.redis_prefix;
  const std::string leases = prefix + ":leases";
  // Redis's slow log keeps the arguments of slow commands (appends with
  // updates in them, on a busy machine): memory that is not the runs'.
  (void)c.Command({"CONFIG", "SET", "slowlog-log-slower-than", "-1"});
  (void)c.Command({"SLOWLOG", "RESET"});
  // A few runs first: what is made once (scripts, the leases' sorted set,
  // the connections' buffers) is in the baseline.
  {
    std::vector<Conn> warm = MakeConns(t, kWarmUpRuns, 3, 100, 0, 0);
    LoopOptions options;
    options.deadline = Deadline(30);
    const LoopResult w = RunLoop(t.port, warm, options);
    CloseAll(warm);
    if (w.completed != kWarmUpRuns) {
      f.Fail(absl::StrCat(
          w.completed, " of ", kWarmUpRuns,
          " warm-up runs complete: ", FailureSummary(warm, false)));
    }
  }
  // Every run's end is written once no lease is left.
  auto wait_ended = [&](int seconds) {
    const absl::Time deadline = Deadline(seconds);
    while (absl::Now() < deadline) {
      if (Integer(c, {"ZCARD", leases}).value_or(-1) == 0) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  };
  if (!wait_ended(10)) f.Fail("the warm-up runs' leases are still held");
  const std::set<std::string> before = Keys(c, prefix + ":{*}:*");
  const std::optional<double> base = UsedMemory(c);

  // Ended runs, their logs kept.
  std::vector<Conn> conns = MakeConns(t, p.runs, p.count, p.size, 0, 0);
  LoopOptions options;
  options.deadline = Deadline(p.duration_s);
  const LoopResult r = RunLoop(t.port, conns, options);
  CloseAll(conns);
  if (r.completed != p.runs) {
    f.Fail(absl::StrCat(r.completed, " of ", p.runs, " runs complete (",
                        r.failed, " failed, ", r.refused,
                        " refused): ", FailureSummary(conns, false)));
  }
  if (!wait_ended(30)) f.Fail("leases still held 30 s after the runs");
  const std::optional<double> ended = UsedMemory(c);
  std::vector<std::string> logs_and_metas, ends;
  for (const std::string& k : Keys(c, prefix + ":{*}:*")) {
    if (before.count(k) != 0) continue;
    (absl::EndsWith(k, ":end") ? ends : logs_and_metas).push_back(k);
  }
  if (static_cast<int64_t>(ends.size()) != p.runs) {
    f.Fail(absl::StrCat(ends.size(), " end keys for ", p.runs, " runs"));
  }
  auto per = [](std::optional<double> a, std::optional<double> b,
                int64_t n) -> std::optional<double> {
    if (!a || !b || n <= 0) return std::nullopt;
    return (*b - *a) / n;
  };
  const int64_t n = f.ok() ? p.runs : 0;
  f.Set("runs", static_cast<double>(p.runs));
  f.Set("bytes_per_ended_run", per(base, ended, n));
  // One run's keys, exactly (SAMPLES 0: every element).
  std::optional<double> log_bytes, meta_bytes, end_bytes, entries;
  if (!ends.empty()) {
    const std::string id_keys =
        ends.front().substr(0, ends.front().size() - 3);  // "P:{ID}:"
    log_bytes =
        Integer(c, {"MEMORY", "USAGE", id_keys + "log", "SAMPLES", "0"});
    meta_bytes =
        Integer(c, {"MEMORY", "USAGE", id_keys + "meta", "SAMPLES", "0"});
    end_bytes = Integer(c, {"MEMORY", "USAGE", id_keys + "end"});
    entries = Integer(c, {"XLEN", id_keys + "log"});
  }
  f.Set("one_run_log_bytes", log_bytes);
  f.Set("one_run_meta_bytes", meta_bytes);
  f.Set("one_run_end_bytes", end_bytes);
  f.Set("one_run_log_entries", entries);

  // Tombstones: what --log-ttl leaves.
  for (size_t i = 0; i < logs_and_metas.size(); i += 500) {
    orchestrator::store::RedisArgv del = {"DEL"};
    for (size_t k = i; k < std::min(i + 500, logs_and_metas.size()); ++k) {
      del.push_back(logs_and_metas[k]);
    }
    (void)c.Command(del);
  }
  const std::optional<double> tombs = UsedMemory(c);
  f.Set("bytes_per_tombstone", per(base, tombs, n));

  // Live runs.
  if (p.live > 0) {
    std::vector<Conn> live = MakeConns(t, p.live, 10, 16, 0.01, 0);
    LoopOptions held;
    held.deadline = Deadline(p.duration_s);
    held.until = LoopOptions::Until::kAllConnected;
    RunLoop(t.port, live, held);
    // Their first updates written: a moment more.
    held.until = LoopOptions::Until::kDeadline;
    held.deadline = absl::Now() + absl::Seconds(1);
    RunLoop(t.port, live, held);
    int64_t open = 0;
    for (const Conn& lc : live) open += lc.first_update_ns > 0 && !lc.done;
    const std::optional<double> with_live = UsedMemory(c);
    CloseAll(live);
    if (open != p.live) {
      f.Fail(absl::StrCat(open, " of ", p.live, " live runs open"));
    }
    f.Set("bytes_per_live_run", per(tombs, with_live, f.ok() ? p.live : 0));
  }
  f.Set("used_memory_base", base);
  return f;
}

}  // namespace agentstream::bench
