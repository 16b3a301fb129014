// The real gateway against the fake orchestrator, over loopback HTTP: the
// SSE wire byte for byte, heartbeats, the bad-input matrix, request ids end
// to end, an orchestrator that is down or fails mid-stream.
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/http_server.h"
#include "gateway/orchestrator_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/loopback.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/fake_orchestrator.h"
#include "tests/unit/gateway/gateway_fixture.h"

namespace agentstream::gateway {
namespace {

using agentstream::testing::SseEvent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using namespace agentstream::gateway::testing;  // NOLINT: test helpers.
using agentstream::testing::ConnectLoopback;
using agentstream::testing::ReadUntil;
using agentstream::testing::SendAll;
using agentstream::testing::SendGet;

TEST_F(GatewayTest, WireShape) {
  GatewayOptions options;
  options.retry_ms = 2000;
  StartGateway(options);
  SseResponse r = Stream("/api/chat/stream?message=hello",
                         {{"X-Request-Id", "req_4f1c9a"},
                          {"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Header("Content-Type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.Header("Cache-Control"), "no-cache");
  EXPECT_EQ(r.Header("X-Accel-Buffering"), "no");
  // The run's id is the gateway's (128 random bits); the client's
  // X-Request-Id is its correlation id, in `connected`.
  const std::string rid = r.Header("X-Request-Id");
  EXPECT_THAT(rid, MatchesRegex("run_[0-9a-f]{32}"));
  EXPECT_EQ(r.Header("Content-Encoding"), "");
  EXPECT_EQ(r.Header("Transfer-Encoding"), "chunked");

  const std::string expected_start =
      "retry: 2000\n\n"
      "id: " +
      rid +
      ":0\n"
      "event: connected\n"
      "data: {\"type\":\"connected\",\"status\":\"connected\","
      "\"request_id\":\"" +
      rid +
      "\",\"correlation_id\":\"req_4f1c9a\"}\n\n"
      "id: " +
      rid +
      ":1\n"
      "event: message\n"
      "data: {\"type\":\"status\",";
  EXPECT_EQ(r.raw.substr(0, expected_start.size()), expected_start);
  EXPECT_EQ(r.retry_ms, 2000);
  EXPECT_THAT(Names(r),
              ElementsAre("connected", "message", "message", "message", "error",
                          "message", "timeout", "message", "done"));
  std::vector<std::string> ids;
  for (const auto& e : r.events) ids.push_back(e.has_id ? e.id : "-");
  EXPECT_THAT(ids, ElementsAre(rid + ":0", rid + ":1", rid + ":2", rid + ":3",
                               "-", rid + ":4", "-", rid + ":5", "-"));
  // The named copies carry their message's payload.
  EXPECT_EQ(r.events[4].data, r.events[3].data);
  EXPECT_EQ(r.events[6].data, r.events[5].data);
  // Multi-line and unicode payload text survives inside JSON.
  EXPECT_EQ(r.events[2].json["current_action"], "Processing\nhistory ✓");
  EXPECT_EQ(r.events[2].json["progress"], 65);
  EXPECT_EQ(r.events[7].json["result"]["answer"], "all good — ✓");
  for (const auto& e : r.events) {
    EXPECT_EQ(e.json["request_id"], rid) << e.data;
  }
  EXPECT_EQ(r.events.back().json, nlohmann::json({{"type", "done"},
                                                  {"status", "complete"},
                                                  {"request_id", rid}}));
  EXPECT_TRUE(absl::EndsWith(
      r.raw,
      "event: done\ndata: {\"type\":\"done\",\"status\":\"complete\","
      "\"request_id\":\"" +
          rid + "\"}\n\n"));
  EXPECT_EQ(StreamsOpenSettled(), 0);
  EXPECT_EQ(gateway_->metrics().streams_total.load(), 1);
  EXPECT_EQ(gateway_->metrics().events_sent_total.load(), 9);
}

TEST_F(GatewayTest, PostStreamsToo) {
  StartGateway();
  SseResponse r = Stream("/api/chat/stream", {}, "POST",
                         R"({"message":"hi","specialists":["RiskAnalyst"],)"
                         R"("options":{"count":2}})");
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(Names(r).back(), "done");
  ASSERT_TRUE(fake_.WaitForCalls(1, absl::Seconds(5)));
  const auto call = fake_.calls()[0];
  EXPECT_EQ(call.request.message(), "hi");
  EXPECT_THAT(call.request.specialists(), ElementsAre("RiskAnalyst"));
  EXPECT_EQ(call.request.options().fields().at("count").number_value(), 2);
}

TEST_F(GatewayTest, HeartbeatsCarryNoIds) {
  GatewayOptions options;
  options.heartbeat_interval = absl::Milliseconds(100);
  StartGateway(options);
  fake_.SetScript(
      [](const auto&) { return SlowScript(absl::Milliseconds(250), 3); });
  SseResponse comments = Stream("/api/chat/stream?message=hi");
  ASSERT_EQ(comments.status, 200);
  // ~1 s of stream at 100 ms: about 10 heartbeats (scheduling slack aside).
  EXPECT_GE(comments.comments, 6) << comments.raw;
  EXPECT_LE(comments.comments, 12) << comments.raw;
  EXPECT_THAT(comments.raw, HasSubstr("\n\n: heartbeat\n\n"));
  EXPECT_EQ(gateway_->metrics().heartbeats_sent_total.load(),
            comments.comments);
  EXPECT_THAT(Names(comments),
              ::testing::Not(::testing::Contains("heartbeat")));

  SseResponse events = Stream("/api/chat/stream?message=hi&heartbeat=event");
  ASSERT_EQ(events.status, 200);
  int heartbeats = 0;
  for (const SseEvent& e : events.events) {
    if (e.event != "heartbeat") continue;
    ++heartbeats;
    EXPECT_FALSE(e.has_id);
    EXPECT_EQ(e.json["type"], "heartbeat");
  }
  EXPECT_GE(heartbeats, 6);
  EXPECT_EQ(events.comments, 0);
  // Heartbeats never move the resume point: the raw stream has no id line
  // right before a heartbeat.
  EXPECT_THAT(events.raw, ::testing::Not(HasSubstr(":0\nevent: heartbeat")));
}

TEST_F(GatewayTest, BadInputMatrix) {
  StartGateway();
  httplib::Client client("127.0.0.1", gateway_->port());
  client.set_read_timeout(10, 0);
  struct Case {
    std::string method;
    std::string path;
    std::string body;
    int status;
    std::string error;
    std::string message_part;
  };
  const std::string big_get(17 * 1024, 'a');
  const std::string big_post =
      R"({"message":")" + std::string(300 * 1024, 'a') + "\"}";
  const std::vector<Case> cases = {
      {"GET", "/api/chat/stream", "", 400, "invalid_argument", "message"},
      {"GET", "/api/chat/stream?message=", "", 400, "invalid_argument",
       "message"},
      {"GET", "/api/chat/stream?message=" + big_get, "", 413,
       "payload_too_large", "POST"},
      {"POST", "/api/chat/stream", big_post, 413, "payload_too_large",
       "262144"},
      {"POST", "/api/chat/stream", "{nope", 400, "invalid_argument", "JSON"},
      {"POST", "/api/chat/stream", R"({"message":7})", 400, "invalid_argument",
       "string"},
      {"POST", "/api/chat/stream", R"({"message":"a","specialists":"x"})", 400,
       "invalid_argument", "array"},
      {"GET", "/api/chat/stream?message=hi&options=%5B1%5D", "", 400,
       "invalid_argument", "object"},
      {"GET", "/api/chat/stream?message=hi&specialists=RiskAnalyst,UnknownX",
       "", 400, "invalid_argument", "unknown specialist: UnknownX"},
      {"POST", "/api/chat/stream",
       R"({"message":"hi","specialists":["UnknownY"]})", 400,
       "invalid_argument", "unknown specialist: UnknownY"},
      {"GET", "/no/such/path", "", 404, "not_found", "/no/such/path"},
      {"DELETE", "/api/chat/stream", "", 405, "method_not_allowed",
       "allowed: GET, OPTIONS, POST"},
  };
  for (const Case& c : cases) {
    httplib::Result res =
        c.method == "GET" ? client.Get(c.path.c_str())
        : c.method == "POST"
            ? client.Post(c.path.c_str(), c.body, "application/json")
            : client.Delete(c.path.c_str());
    ASSERT_TRUE(res) << c.path.substr(0, 60) << " " << res.error();
    EXPECT_EQ(res->status, c.status)
        << c.path.substr(0, 60) << " " << c.body.substr(0, 60);
    EXPECT_THAT(res->get_header_value("Content-Type"),
                HasSubstr("application/json"));
    const auto body = nlohmann::json::parse(res->body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << res->body;
    EXPECT_EQ(body["error"], c.error) << res->body;
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(c.message_part));
    EXPECT_THAT(res->get_header_value("X-Request-Id"),
                MatchesRegex("req_[0-9a-f]{16}"));
  }
  // Only the two unknown-specialist requests reached the orchestrator.
  EXPECT_EQ(fake_.calls().size(), 2u);
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

TEST_F(GatewayTest, InvalidRequestIdIsReplacedAndNeverEchoed) {
  StartGateway();
  const std::string bad = "evil id<script>";
  SseResponse r =
      Stream("/api/chat/stream?message=hi", {{"X-Request-Id", bad}});
  ASSERT_EQ(r.status, 200);
  const std::string rid = r.Header("X-Request-Id");
  EXPECT_THAT(rid, MatchesRegex("run_[0-9a-f]{32}"));
  EXPECT_EQ(r.raw.find("evil"), std::string::npos);
  for (const auto& [k, v] : r.headers)
    EXPECT_EQ(v.find("evil"), std::string::npos);
  for (const auto& e : r.events) EXPECT_EQ(e.json["request_id"], rid);
  ASSERT_TRUE(fake_.WaitForCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.calls()[0].metadata_request_id, rid);
  EXPECT_EQ(fake_.calls()[0].request.request_id(), rid);
  EXPECT_EQ(r.events.front().json.value("correlation_id", "").find("evil"),
            std::string::npos);

  // Also on error responses.
  auto res = [&] {
    httplib::Client client("127.0.0.1", gateway_->port());
    return client.Get("/api/chat/stream", {{"X-Request-Id", bad}});
  }();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->body.find("evil"), std::string::npos);
  EXPECT_THAT(res->get_header_value("X-Request-Id"),
              MatchesRegex("req_[0-9a-f]{16}"));
}

// A client's X-Request-Id is its correlation id, never the run's id
// (docs/SECURITY.md): it comes back in `connected` and goes to the
// orchestrator as `x-correlation-id`; the run's id is the gateway's, on
// every event.
TEST_F(GatewayTest, AClientsRequestIdIsACorrelationIdAndTheRunIdIsOurs) {
  StartGateway();
  const std::string correlation = "client.ID_42-x";
  SseResponse r =
      Stream("/api/chat/stream?message=hi", {{"X-Request-Id", correlation}});
  ASSERT_EQ(r.status, 200);
  const std::string rid = r.Header("X-Request-Id");
  EXPECT_THAT(rid, MatchesRegex("run_[0-9a-f]{32}"));
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.front().json.value("correlation_id", ""), correlation);
  int messages = 0;
  for (const auto& e : r.events) {
    EXPECT_EQ(e.json["request_id"], rid) << e.data;
    // Exactly "<rid>:<seq>" on updates, "<rid>:0" on `connected`.
    if (e.event == "message") {
      ++messages;
      EXPECT_EQ(e.id, absl::StrCat(rid, ":", e.json.value("seq", -1)))
          << e.data;
    } else if (e.event == "connected") {
      EXPECT_EQ(e.id, rid + ":0");
    }
  }
  EXPECT_GT(messages, 0);
  ASSERT_TRUE(fake_.WaitForCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.calls()[0].metadata_request_id, rid);
  EXPECT_EQ(fake_.calls()[0].request.request_id(), rid);
}

TEST_F(GatewayTest, OrchestratorDownIs503WithRetryAfter) {
  GatewayOptions options;
  options.retry_after_seconds = 3;
  StartGateway(options, "127.0.0.1:1");
  for (const std::string path :
       {"/api/chat/stream?message=hi", "/readyz", "/api/specialists"}) {
    auto res = Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 503) << path;
    EXPECT_EQ(res->get_header_value("Retry-After"), "3") << path;
    const auto body = nlohmann::json::parse(res->body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << res->body;
    EXPECT_EQ(body["error"], "unavailable") << res->body;
    EXPECT_FALSE(body["message"].get<std::string>().empty());
  }
  auto health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

TEST_F(GatewayTest, SlowFirstUpdateIs503AndTheCallIsCancelled) {
  GatewayOptions options;
  options.first_update_timeout = absl::Milliseconds(300);
  StartGateway(options);
  fake_.SetScript([](const auto&) {
    RunScript script = StandardScript(absl::Milliseconds(10));
    script.steps[0].delay = absl::Seconds(10);
    return script;
  });
  auto res = Get("/api/chat/stream?message=hi");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
  EXPECT_THAT(res->body, HasSubstr("deadline_exceeded"));
  auto call = fake_.WaitForEnd(0, absl::Seconds(5));
  ASSERT_TRUE(call.has_value());
  EXPECT_TRUE(call->cancelled);
}

TEST_F(GatewayTest, FailureAfterStartIsAnErrorEventThenDone) {
  StartGateway();
  fake_.SetScript(OneUpdateThen(
      1, absl::Milliseconds(50),
      grpc::Status(grpc::StatusCode::INTERNAL, "the merge broke")));
  SseResponse r = Stream("/api/chat/stream?message=hi");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(Names(r), ElementsAre("connected", "message", "error", "done"));
  EXPECT_FALSE(r.events[2].has_id);
  EXPECT_EQ(r.events[2].json["code"], "internal");
  EXPECT_EQ(r.events[2].json["retryable"], false);
  EXPECT_EQ(r.events[2].json["message"], "the merge broke");
  EXPECT_EQ(r.events[3].json["status"], "failed");
}

}  // namespace
}  // namespace agentstream::gateway
