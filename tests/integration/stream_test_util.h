// Small helpers shared by the stream-survival integration tests (resume,
// observers, cancel, faults, heartbeats, slow readers): request paths for
// Synthetic runs, metric reads, waits with deadlines. Header-only.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_STREAM_TEST_UTIL_H_
#define AGENTSTREAM_TESTS_INTEGRATION_STREAM_TEST_UTIL_H_

#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/resumable_sse.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {

// GET /api/chat/stream for a Synthetic-only run with `options` (JSON object)
// and extra query parameters ("&on_disconnect=cancel").
inline std::string SyntheticChatPath(
    const nlohmann::json& options, const std::string& extra_query = "",
    const std::string& specialists = "Synthetic") {
  return absl::StrCat("/api/chat/stream?specialists=", specialists,
                      "&message=", UrlEncode("synthetic load"),
                      "&options=", UrlEncode(options.dump()), extra_query);
}

inline std::string RunStreamPath(const std::string& rid,
                                 const std::string& query = "") {
  return absl::StrCat("/api/runs/", rid, "/stream", query);
}

// A GET of `path` with one extra request header.
inline RawSseRequest SseGet(int port, const std::string& path,
                            std::pair<std::string, std::string> header,
                            absl::Duration timeout) {
  RawSseRequest req;
  req.port = port;
  req.path = path;
  req.headers = {std::move(header)};
  req.timeout = timeout;
  return req;
}

// A request that starts a run at `path`, with `rid` as its X-Request-Id:
// the client's correlation id, never the run's id, which is the gateway's
// (RawSseResult::RunId(), ResumeResult::run_id; docs/SECURITY.md).
inline RawSseRequest NewRunRequest(int port, const std::string& path,
                                   const std::string& rid,
                                   absl::Duration timeout = absl::Seconds(60)) {
  return SseGet(port, path, {"X-Request-Id", rid}, timeout);
}

// A reconnect to `path` from `last_event_id` (sent as Last-Event-ID).
inline RawSseRequest ResumeRequest(int port, const std::string& path,
                                   const std::string& last_event_id,
                                   absl::Duration timeout) {
  return SseGet(port, path, {"Last-Event-ID", last_event_id}, timeout);
}

// A metric of a process of `t` (MetricOrFail: one that cannot be read fails
// the test and reads NaN, never 0). `name` without the process's prefix,
// with labels if it has several samples:
// "runs_cancelled_total{reason=\"grace\"}".
inline double OrchestratorMetric(Topology& t, const std::string& name) {
  return MetricOrFail(t.orchestrator_metrics_port(),
                      "agentstream_orchestrator_" + name);
}

inline double GatewayMetric(Topology& t, const std::string& name) {
  return MetricOrFail(t.gateway_port(), "agentstream_gateway_" + name);
}

inline double SpecialistMetric(Topology& t, const std::string& process,
                               const std::string& name) {
  return MetricOrFail(t.specialist_metrics_port(process),
                      "agentstream_specialist_" + name);
}

// Polls `pred` every 10 ms until it holds or `timeout` passes. Gives up at
// once when the test fails meanwhile (e.g. `pred` read a metric that could
// not be read), instead of failing the same way until the deadline.
inline bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const bool failed_before = ::testing::Test::HasFailure();
  while (true) {
    if (pred()) return true;
    if (!failed_before && ::testing::Test::HasFailure()) return false;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// The updates of a whole run, read from the start through
// /api/runs/{id}/stream (a late observer); the run's log must still hold it.
inline RawSseResult ReplayRun(int gateway_port, const std::string& rid,
                              absl::Duration timeout = absl::Seconds(60)) {
  RawSseRequest req;
  req.port = gateway_port;
  req.path = RunStreamPath(rid);
  req.timeout = timeout;
  return RawSse(req);
}

// The `complete` update among `messages`, or a discarded json.
inline nlohmann::json FindUpdate(const std::vector<SseEvent>& messages,
                                 const std::string& type) {
  for (const SseEvent& e : messages) {
    if (e.json.is_object() && e.json.value("type", "") == type) return e.json;
  }
  return nlohmann::json(nlohmann::json::value_t::discarded);
}

inline std::vector<SseEvent> MessagesOf(const RawSseResult& r) {
  std::vector<SseEvent> out;
  for (const SseEvent& e : r.events) {
    if (e.event == "message") out.push_back(e);
  }
  return out;
}

// The updates of a dropped connection followed by those of the connection
// that resumed it.
inline std::vector<SseEvent> JoinedMessages(const RawSseResult& first,
                                            const RawSseResult& rest) {
  std::vector<SseEvent> joined = MessagesOf(first);
  for (const SseEvent& e : MessagesOf(rest)) joined.push_back(e);
  return joined;
}

// Joins a thread when it goes out of scope, so that an ASSERT returning
// early from a test body waits for the thread (every reader has its own
// deadline) instead of destroying a joinable std::thread (std::terminate,
// which loses the failure's report and the processes' logs).
class JoinOnExit final {
 public:
  explicit JoinOnExit(std::thread& thread) : thread_(thread) {}
  JoinOnExit(const JoinOnExit&) = delete;
  JoinOnExit& operator=(const JoinOnExit&) = delete;
  ~JoinOnExit() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread& thread_;
};

// A fixed seed, overridable by AGENTSTREAM_TEST_SEED.
inline uint64_t TestSeed(uint64_t fallback) {
  if (const char* s = std::getenv("AGENTSTREAM_TEST_SEED")) {
    return std::strtoull(s, nullptr, 10);
  }
  return fallback;
}

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_INTEGRATION_STREAM_TEST_UTIL_H_
