// The whole path, with every process real: a question goes in at the
// gateway over HTTP, the orchestrator fans out over gRPC to the built-in
// specialists working on a generated SQLite data set, and the SSE stream that
// comes back is checked event by event.
// (Refusals: whole_path_rejects_test; health and reflection:
// whole_path_services_test.)
#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/whole_path_fixture.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kQuestion[] =
    "Assess the risk and AML compliance of account ACC-1042 over the last 6 "
    "months";

std::vector<const SseEvent*> Messages(const SseResponse& r) {
  std::vector<const SseEvent*> out;
  for (const auto& e : r.events) {
    if (e.event == "message") out.push_back(&e);
  }
  return out;
}

TEST_F(WholePathTest, RealQuestionStreamsEveryKindInOrderWithDenseSeq) {
  const SseResponse r = Ask("message=" + UrlEncode(kQuestion));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_THAT(r.Header("Content-Type"), HasSubstr("text/event-stream"));
  EXPECT_EQ(r.Header("Cache-Control"), "no-cache");
  EXPECT_EQ(r.Header("X-Accel-Buffering"), "no");
  const std::string rid = r.Header("X-Request-Id");
  ASSERT_FALSE(rid.empty());
  ASSERT_TRUE(r.retry_ms.has_value());

  ASSERT_GE(r.events.size(), 3u);
  EXPECT_EQ(r.events.front().event, "connected");
  EXPECT_EQ(r.events.front().json["request_id"], rid);
  EXPECT_EQ(r.events.back().event, "done");
  EXPECT_EQ(r.events.back().json["request_id"], rid);

  std::set<std::string> types;
  uint64_t expected_seq = 1;
  for (const SseEvent* e : Messages(r)) {
    ASSERT_FALSE(e->json.is_discarded()) << e->data;
    EXPECT_EQ(e->json["request_id"], rid) << e->data;
    EXPECT_EQ(e->json["seq"].get<uint64_t>(), expected_seq) << e->data;
    EXPECT_EQ(e->id, absl::StrCat(rid, ":", expected_seq));
    ++expected_seq;
    types.insert(e->json["type"].get<std::string>());
  }
  EXPECT_GT(expected_seq, 20u) << "too few updates for a real run";
  for (const char* type :
       {"status", "specialist_activated", "progress", "thinking", "tool_call",
        "partial_result", "synthesis", "specialist_complete", "complete"}) {
    EXPECT_TRUE(types.count(type)) << "no update of type " << type;
  }
  // The last update is `complete`, with an answer and every specialist.
  const auto msgs = Messages(r);
  const nlohmann::json& last = msgs.back()->json;
  EXPECT_EQ(last["type"], "complete");
  EXPECT_EQ(last["outcome"], "ok");
  EXPECT_FALSE(last["result"]["answer"].get<std::string>().empty());
  std::set<std::string> activated;
  for (const SseEvent* e : msgs) {
    if (e->json["type"] == "specialist_activated") {
      activated.insert(e->json["specialist"].get<std::string>());
    }
  }
  EXPECT_TRUE(activated.count("DataAnalyst"));
  EXPECT_TRUE(activated.count("RiskAnalyst"));
  EXPECT_TRUE(activated.count("ComplianceExpert"));
  EXPECT_FALSE(activated.count("Synthetic")) << "Synthetic only when named";
}

// Updates of at least two specialists are interleaved: some specialist's
// updates are interrupted by another's and then resume.
TEST_F(WholePathTest, SpecialistsStreamsAreMergedLiveNotOneAfterAnother) {
  const SseResponse r = Ask("message=" + UrlEncode(kQuestion));
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> order;
  for (const SseEvent* e : Messages(r)) {
    const std::string type = e->json["type"];
    if (type == "progress" || type == "thinking" || type == "tool_call" ||
        type == "partial_result") {
      if (e->json.contains("specialist")) {
        order.push_back(e->json["specialist"].get<std::string>());
      }
    }
  }
  // Count the runs of consecutive same-specialist updates: a sequential
  // merge gives exactly one run per specialist.
  std::map<std::string, int> runs;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || order[i] != order[i - 1]) ++runs[order[i]];
  }
  int interleaved = 0;
  for (const auto& [name, n] : runs) {
    if (n >= 2) ++interleaved;
  }
  EXPECT_GE(interleaved, 2) << "specialists' updates were not interleaved";

  // And in time: the first update of each of two specialists arrives before
  // the last update of the other.
  std::map<std::string, std::pair<int64_t, int64_t>> span;
  for (const SseEvent* e : Messages(r)) {
    if (!e->json.contains("specialist")) continue;
    const std::string s = e->json["specialist"];
    const int64_t t = e->json["emitted_at_ns"];
    auto [it, inserted] = span.try_emplace(s, t, t);
    if (!inserted) it->second.second = t;
  }
  ASSERT_TRUE(span.count("DataAnalyst") && span.count("RiskAnalyst"));
  EXPECT_LT(span["DataAnalyst"].first, span["RiskAnalyst"].second);
  EXPECT_LT(span["RiskAnalyst"].first, span["DataAnalyst"].second);
}

TEST_F(WholePathTest, PostWithForcedSpecialistsRunsExactlyThose) {
  SseRequest req;
  req.method = "POST";
  req.port = topology_->gateway_port();
  req.path = "/api/chat/stream";
  req.body = nlohmann::json({{"message", "What are the totals for ACC-1042?"},
                             {"specialists", {"DataAnalyst"}}})
                 .dump();
  const SseResponse r = StreamSse(req);
  ASSERT_EQ(r.status, 200) << r.raw;
  std::set<std::string> activated;
  for (const SseEvent* e : Messages(r)) {
    if (e->json["type"] == "specialist_activated") {
      activated.insert(e->json["specialist"].get<std::string>());
    }
  }
  EXPECT_EQ(activated, std::set<std::string>{"DataAnalyst"});
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.back().event, "done");
}

TEST_F(WholePathTest, ManyRunsAtOnceAllComplete) {
  constexpr int kRuns = 6;
  std::vector<SseResponse> results(kRuns);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns; ++i) {
    threads.emplace_back([&, i] {
      results[i] = Ask(absl::StrCat(
          "message=", UrlEncode(absl::StrCat("Risk of account ACC-10", 40 + i,
                                             " over the last 6 months"))));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_EQ(r.status, 200);
    ASSERT_FALSE(r.events.empty());
    EXPECT_EQ(r.events.back().event, "done");
    ids.insert(r.Header("X-Request-Id"));
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRuns));
}

TEST_F(WholePathTest, AClientsRequestIdIsCarriedAsTheCorrelationId) {
  SseRequest req;
  req.port = topology_->gateway_port();
  req.path = "/api/chat/stream?specialists=DataAnalyst&message=" +
             UrlEncode("totals for ACC-1042");
  req.headers.emplace("X-Request-Id", "my-trace.42_A");
  const SseResponse r = StreamSse(req);
  ASSERT_EQ(r.status, 200);
  // The client's id is its correlation id; the run's is the gateway's.
  const std::string rid = r.Header("X-Request-Id");
  EXPECT_THAT(rid, ::testing::MatchesRegex("run_[0-9a-f]{32}"));
  // A whole run, so that the loop below checks every kind of event.
  ASSERT_FALSE(r.events.empty()) << r.error;
  EXPECT_EQ(r.events.front().json.value("correlation_id", ""), "my-trace.42_A");
  EXPECT_EQ(r.events.back().event, "done");
  for (const auto& e : r.events) {
    EXPECT_EQ(e.json["request_id"], rid) << e.data;
    if (e.event == "message") {
      EXPECT_EQ(e.id, absl::StrCat(rid, ":", e.json.value("seq", 0))) << e.data;
    }
  }
}

// DataAnalyst's totals equal an independent SQL query on the same file.
TEST_F(WholePathTest, DataAnalystTotalsEqualAnIndependentQuery) {
  const SseResponse r =
      Ask("specialists=DataAnalyst&message=" + UrlEncode(kQuestion));
  ASSERT_EQ(r.status, 200);
  nlohmann::json totals;
  nlohmann::json tool_params;
  for (const SseEvent* e : Messages(r)) {
    if (e->json["type"] == "partial_result" &&
        e->json["result"].value("query", "") == "totals") {
      totals = e->json["result"];
    }
    if (e->json["type"] == "tool_call" &&
        e->json["parameters"].value("query", "") == "totals") {
      tool_params = e->json["parameters"];
    }
  }
  ASSERT_TRUE(totals.is_object()) << r.raw.substr(0, 4000);
  // The tool call shows the SQL it ran.
  ASSERT_TRUE(tool_params.is_object());
  EXPECT_THAT(tool_params.value("sql", ""), HasSubstr("SELECT"));
  EXPECT_THAT(tool_params.value("sql", ""), HasSubstr("transactions"));

  const auto& scope = totals["scope"];
  ASSERT_EQ(scope.value("account", ""), "ACC-1042") << totals.dump();
  const int64_t from_ts = scope["from_ts"];
  const int64_t to_ts = scope["to_ts"];

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(topology_->db_path().c_str(), &db,
                            SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  auto scalar = [&](const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK)
        << sql;
    int64_t v = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
  };
  // "The last 6 months" ends at the data set's newest transaction and spans
  // about six months.
  const int64_t newest = scalar("SELECT MAX(ts) FROM transactions");
  EXPECT_GT(to_ts, newest);
  EXPECT_LE(to_ts - newest, 31 * 86400);
  EXPECT_NEAR(static_cast<double>(to_ts - from_ts) / 86400.0, 183.0, 4.0);

  const std::string where = absl::StrCat(
      " FROM transactions WHERE account = 'ACC-1042' AND ts >= ", from_ts,
      " AND ts < ", to_ts);
  const int64_t count = scalar("SELECT COUNT(*)" + where);
  const int64_t inflow = scalar("SELECT COALESCE(SUM(amount_cents), 0)" +
                                where + " AND direction = 'credit'");
  const int64_t outflow = scalar("SELECT COALESCE(SUM(amount_cents), 0)" +
                                 where + " AND direction = 'debit'");
  sqlite3_close(db);
  EXPECT_GT(count, 0);
  EXPECT_EQ(totals["count"].get<int64_t>(), count);
  EXPECT_EQ(totals["inflow_cents"].get<int64_t>(), inflow);
  EXPECT_EQ(totals["outflow_cents"].get<int64_t>(), outflow);
  EXPECT_EQ(totals["net_cents"].get<int64_t>(), inflow - outflow);
  EXPECT_NEAR(totals["inflow"].get<double>(), inflow / 100.0, 0.005);
}

// Closing the browser's connection with on_disconnect=cancel stops the
// specialists' work: the gateway notices, cancels its gRPC call, the
// orchestrator cancels the specialist calls, and the specialist's own
// metrics show the analysis cancelled. (By default a disconnect is not a
// cancel: the run lives on for the grace period; cancel_grace_test.)
TEST_F(WholePathTest, ClosingTheClientStopsTheSpecialistsWork) {
  const int metrics = topology_->specialist_metrics_port("synthetic");
  const std::string cancelled_series =
      "agentstream_specialist_analyses_completed_total{specialist="
      "\"Synthetic\","
      "outcome=\"cancelled\"}";
  const std::string active_series = "agentstream_specialist_analyses_active";
  const absl::StatusOr<double> cancelled_before =
      ScrapeMetric(metrics, cancelled_series);
  ASSERT_TRUE(cancelled_before.ok()) << cancelled_before.status();

  SseRequest req;
  req.port = topology_->gateway_port();
  // 100,000 updates at 50/s: a run that would take over half an hour.
  req.path = "/api/chat/stream?specialists=Synthetic&message=stream&options=" +
             UrlEncode(R"({"count":100000,"size":64,"rate":50})") +
             "&on_disconnect=cancel";
  int synthetic_updates = 0;
  double active_before_close = -1;
  req.timeout = absl::Seconds(30);
  req.stop = [&](const SseEvent& e, const SseResponse&) {
    if (e.json.is_object() && e.json.value("specialist", "") == "Synthetic" &&
        e.json.value("type", "") == "partial_result") {
      ++synthetic_updates;
    }
    if (synthetic_updates < 5) return false;
    // Read while the stream is still open: right after the close the
    // cancellation may already have arrived.
    active_before_close = MetricOrFail(metrics, active_series);
    return true;
  };
  const SseResponse r = StreamSse(req);
  const absl::Time closed_at = absl::Now();
  ASSERT_TRUE(r.stopped_by_client) << r.error << r.raw.substr(0, 2000);
  EXPECT_EQ(active_before_close, 1)
      << "the analysis should be running until the close";

  // Timed from the client's close to the first scrape (every 10 ms) that
  // shows the analysis ended, cancelled. Bounded wait; the requirement
  // (within 1 s) is asserted on the measured time, and the figure printed.
  absl::Duration stopped_after = absl::InfiniteDuration();
  while (absl::Now() - closed_at < absl::Seconds(5) && !HasFailure()) {
    if (MetricOrFail(metrics, cancelled_series) > *cancelled_before &&
        MetricOrFail(metrics, active_series) == 0) {
      stopped_after = absl::Now() - closed_at;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::cout << "client close -> specialist stopped: "
            << absl::FormatDuration(stopped_after) << std::endl;
  EXPECT_LE(stopped_after, absl::Seconds(1))
      << ScrapeMetrics(metrics).value_or("(metrics unreadable)");
}

}  // namespace
}  // namespace agentstream::testing
