// The benchmark's load client: many SSE streams on one epoll loop over raw
// non-blocking sockets, so that the client costs little next to the system
// under test, and what each stream saw and when.
//
// Each connection comes from its own loopback source address (127.1.0.1,
// 127.1.0.2, ... over 2^20 addresses), as that many clients would: the
// gateway bounds streams, connections and run starts per client address
// (docs/GATEWAY.md, "Limits"), and one (source, destination) pair has only
// ~28,000 ephemeral ports.
#ifndef AGENTSTREAM_TESTS_BENCH_BENCH_CLIENT_H_
#define AGENTSTREAM_TESTS_BENCH_BENCH_CLIENT_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace agentstream::bench {

int64_t NowNs();

// One client connection and what it saw. Times are NowNs() readings; 0 when
// the moment did not come.
struct Conn {
  int64_t start_ns = 0;  // Connect at or after this time (0: at once).
  std::string out;       // Request bytes still to send.
  std::string in;        // Unparsed response bytes.
  int fd = -1;
  bool headers_done = false;
  bool done = false;         // Nothing more will come (any reason).
  bool failed = false;       // Closed before `done`, never connected, or hung.
  int status = 0;            // HTTP status of the answer.
  bool retry_after = false;  // The answer carried Retry-After.
  int64_t sent_ns = 0;       // connect() issued.
  int64_t headers_ns = 0;    // Response head complete.
  int64_t connected_ns = 0;  // `event: connected` received.
  int64_t first_update_ns = 0;   // First `event: message`.
  int64_t first_partial_ns = 0;  // First Synthetic partial result.
  int64_t messages = 0;
  int64_t partials = 0;
  int64_t heartbeats = 0;  // `: heartbeat` comments or heartbeat events.
  std::string current_event = "message";
  // Why it ended badly: the first `error` event's data, or the body of a
  // non-200 answer (truncated), for the failure reports.
  std::string error;
};

// "N x <why>" for the conns that were refused (status and body), failed
// (their `error` event), or are unfinished (unless `open_ok` and connected),
// most frequent first, at most `max` kinds: why a scenario failed.
std::string FailureSummary(const std::vector<Conn>& conns, bool open_ok,
                           int max = 3);

struct LoopOptions {
  absl::Time deadline;
  // Receives emitted_at -> receipt of every Synthetic partial result.
  std::vector<int64_t>* latencies_ns = nullptr;
  enum class Until {
    kAllDone,         // Every stream ended (or the deadline).
    kAllConnected,    // Every stream got `connected` or ended.
    kAllFirstUpdate,  // Every stream got an update or ended.
    kDeadline,        // Keep reading until the deadline.
  };
  Until until = Until::kAllDone;
  // Called about every 100 ms while the loop runs (e.g. to sample memory).
  std::function<void()> tick;
};

struct LoopResult {
  int64_t events = 0;    // `message` events received by all streams.
  int64_t partials = 0;  // Of which Synthetic partial results.
  int completed = 0;     // Ended with `done`.
  int refused = 0;       // Answered with a status other than 200.
  int failed = 0;        // Never connected, closed before `done`.
  double seconds = 0;    // From the loop's start to its end.
};

// Drives every connection of `conns` (connecting each at its start_ns)
// against 127.0.0.1:port until `options.until` or the deadline. Connections
// stay open when the loop returns before they are done; CloseAll ends them.
// A non-200 answer ends its connection (`refused`, not `failed`).
LoopResult RunLoop(int port, std::vector<Conn>& conns,
                   const LoopOptions& options);
void CloseAll(std::vector<Conn>& conns);

// GET /api/chat/stream for one Synthetic run of `count` updates of `size`
// bytes at `rate` per second, plus `extra_query` ("a=b&c=d") when not empty.
std::string StreamRequest(int port, int64_t count, int64_t size, double rate,
                          const std::string& extra_query);

// Latencies of `n` sequential GET /healthz answered 200 (a refused or failed
// request is no latency), each on a new connection, 5 s deadline each.
std::vector<int64_t> HealthzSamples(int port, int n);

// The p-quantile (0..1) of `v` in ms; nullopt without samples: a percentile
// of nothing is not a figure.
std::optional<double> PercentileMs(std::vector<int64_t> v, double p);

// A process's thread count and resident memory (/proc/PID/status).
struct ProcSample {
  int64_t threads = 0;
  int64_t rss_kib = 0;
};
std::optional<ProcSample> ReadProc(pid_t pid);

// Raises RLIMIT_NOFILE to `want` (or as far as allowed); returns the soft
// limit now in force. Children started after inherit it.
int64_t RaiseFileLimit(int64_t want);

}  // namespace agentstream::bench

#endif  // AGENTSTREAM_TESTS_BENCH_BENCH_CLIENT_H_
