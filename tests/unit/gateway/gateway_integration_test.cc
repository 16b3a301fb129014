// The real gateway (in-process GatewayServer, and the binary) against the
// fake orchestrator, over loopback HTTP: the SSE wire byte for byte, the
// bad-input matrix, request ids end to end, an orchestrator that is down,
// a client that goes away, and the stream cap.
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
#include "tests/testing/sse_client.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/fake_orchestrator.h"
#include "tests/unit/gateway/loopback.h"

namespace agentstream::gateway {
namespace {

using agentstream::testing::SseEvent;
using agentstream::testing::SseRequest;
using agentstream::testing::SseResponse;
using agentstream::testing::StreamSse;
using agentstream::testing::UrlEncode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using namespace agentstream::gateway::testing;  // NOLINT: test helpers.

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GT(fake_.Start(), 0); }
  void TearDown() override {
    if (gateway_) gateway_->Stop();
    gateway_.reset();
    fake_.Shutdown();
  }

  void StartGateway(GatewayOptions options = {},
                    std::string orchestrator = "") {
    options.host = "127.0.0.1";
    options.port = 0;
    if (orchestrator.empty()) orchestrator = fake_.address();
    gateway_ = std::make_unique<GatewayServer>(
        options,
        NewGrpcOrchestratorClient(NewOrchestratorChannel(orchestrator)));
    ASSERT_TRUE(gateway_->Start().ok());
    ASSERT_GT(gateway_->port(), 0);
  }

  SseResponse Stream(const std::string& path,
                     std::multimap<std::string, std::string> headers = {},
                     const std::string& method = "GET",
                     const std::string& body = "") {
    SseRequest request;
    request.port = gateway_->port();
    request.path = path;
    request.method = method;
    request.body = body;
    request.headers = std::move(headers);
    request.timeout = absl::Seconds(20);
    return StreamSse(request);
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", gateway_->port());
    client.set_read_timeout(10, 0);
    return client.Get(path.c_str());
  }

  // The server side finishes a stream just after the client saw its end.
  int64_t StreamsOpenSettled() const {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (gateway_->metrics().streams_open.load() != 0 &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return gateway_->metrics().streams_open.load();
  }

  static std::vector<std::string> Names(const SseResponse& r) {
    std::vector<std::string> names;
    for (const auto& e : r.events) names.push_back(e.event);
    return names;
  }

  FakeOrchestrator fake_;
  std::unique_ptr<GatewayServer> gateway_;
};

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
  EXPECT_EQ(r.Header("X-Request-Id"), "req_4f1c9a");
  EXPECT_EQ(r.Header("Content-Encoding"), "");
  EXPECT_EQ(r.Header("Transfer-Encoding"), "chunked");

  const std::string expected_start =
      "retry: 2000\n\n"
      "id: req_4f1c9a:0\n"
      "event: connected\n"
      "data: {\"type\":\"connected\",\"status\":\"connected\","
      "\"request_id\":\"req_4f1c9a\"}\n\n"
      "id: req_4f1c9a:1\n"
      "event: message\n"
      "data: {\"type\":\"status\",";
  EXPECT_EQ(r.raw.substr(0, expected_start.size()), expected_start);
  EXPECT_EQ(r.retry_ms, 2000);
  EXPECT_THAT(Names(r),
              ElementsAre("connected", "message", "message", "message", "error",
                          "message", "timeout", "message", "done"));
  std::vector<std::string> ids;
  for (const auto& e : r.events) ids.push_back(e.has_id ? e.id : "-");
  EXPECT_THAT(ids, ElementsAre("req_4f1c9a:0", "req_4f1c9a:1", "req_4f1c9a:2",
                               "req_4f1c9a:3", "-", "req_4f1c9a:4", "-",
                               "req_4f1c9a:5", "-"));
  // The named copies carry their message's payload.
  EXPECT_EQ(r.events[4].data, r.events[3].data);
  EXPECT_EQ(r.events[6].data, r.events[5].data);
  // Multi-line and unicode payload text survives inside JSON.
  EXPECT_EQ(r.events[2].json["current_action"], "Processing\nhistory ✓");
  EXPECT_EQ(r.events[2].json["progress"], 65);
  EXPECT_EQ(r.events[7].json["result"]["answer"], "all good — ✓");
  for (const auto& e : r.events) {
    EXPECT_EQ(e.json["request_id"], "req_4f1c9a") << e.data;
  }
  EXPECT_EQ(r.events.back().json,
            nlohmann::json::parse(R"({"type":"done","status":"complete",)"
                                  R"("request_id":"req_4f1c9a"})"));
  EXPECT_TRUE(absl::EndsWith(
      r.raw,
      "event: done\ndata: {\"type\":\"done\",\"status\":\"complete\","
      "\"request_id\":\"req_4f1c9a\"}\n\n"));
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
      {"DELETE", "/api/chat/stream", "", 404, "not_found", ""},
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
  EXPECT_THAT(rid, MatchesRegex("req_[0-9a-f]{16}"));
  EXPECT_EQ(r.raw.find("evil"), std::string::npos);
  for (const auto& [k, v] : r.headers)
    EXPECT_EQ(v.find("evil"), std::string::npos);
  for (const auto& e : r.events) EXPECT_EQ(e.json["request_id"], rid);
  ASSERT_TRUE(fake_.WaitForCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.calls()[0].metadata_request_id, rid);
  EXPECT_EQ(fake_.calls()[0].request.request_id(), rid);

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

TEST_F(GatewayTest, ValidRequestIdTravelsEverywhere) {
  StartGateway();
  const std::string rid = "client.ID_42-x";
  SseResponse r =
      Stream("/api/chat/stream?message=hi", {{"X-Request-Id", rid}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Request-Id"), rid);
  ASSERT_FALSE(r.events.empty());
  for (const auto& e : r.events) {
    EXPECT_EQ(e.json["request_id"], rid) << e.data;
    if (e.has_id) {
      EXPECT_TRUE(absl::StartsWith(e.id, rid + ":")) << e.id;
    }
  }
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
  fake_.SetScript([](const auto&) {
    RunScript script;
    script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "x")});
    script.final_delay = absl::Milliseconds(50);
    script.final_status =
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "specialists gone");
    return script;
  });
  SseResponse r = Stream("/api/chat/stream?message=hi");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(Names(r), ElementsAre("connected", "message", "error", "done"));
  EXPECT_FALSE(r.events[2].has_id);
  EXPECT_EQ(r.events[2].json["code"], "unavailable");
  EXPECT_EQ(r.events[2].json["retryable"], true);
  EXPECT_EQ(r.events[2].json["message"], "specialists gone");
  EXPECT_EQ(r.events[3].json["status"], "failed");
}

TEST_F(GatewayTest, ClientDisconnectCancelsTheRunWithinOneSecond) {
  GatewayOptions options;
  options.heartbeat_interval = absl::Seconds(60);  // No write to fail.
  StartGateway(options);
  fake_.SetScript([](const auto&) {
    RunScript script;
    script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "x")});
    script.final_delay = absl::InfiniteDuration();
    return script;
  });
  const int fd = ConnectLoopback(gateway_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd,
                      "GET /api/chat/stream?message=hi HTTP/1.1\r\n"
                      "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"));
  const std::string head = ReadUntil(fd, "event: message", absl::Seconds(10));
  ASSERT_THAT(head, HasSubstr("event: message"));
  absl::SleepFor(absl::Milliseconds(300));  // Now idle, waiting for events.
  ::close(fd);
  const absl::Time closed = absl::Now();
  auto call = fake_.WaitForEnd(0, absl::Seconds(5));
  ASSERT_TRUE(call.has_value()) << "the Run call was never cancelled";
  EXPECT_TRUE(call->cancelled);
  EXPECT_LT(call->cancelled_at - closed, absl::Seconds(1))
      << absl::FormatDuration(call->cancelled_at - closed);
  EXPECT_EQ(StreamsOpenSettled(), 0);
  EXPECT_EQ(gateway_->metrics().client_disconnects_total.load(), 1);
}

TEST_F(GatewayTest, StreamsPastTheCapGet503AndHealthStaysUp) {
  GatewayOptions options;
  options.max_streams = 2;
  options.headroom_threads = 4;
  StartGateway(options);
  fake_.SetScript([](const auto&) {
    RunScript script;
    script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "x")});
    script.final_delay = absl::InfiniteDuration();
    return script;
  });
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectLoopback(gateway_->port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_TRUE(SendAll(fd,
                        "GET /api/chat/stream?message=hi HTTP/1.1\r\n"
                        "Host: x\r\n\r\n"));
    ASSERT_THAT(ReadUntil(fd, "event: message", absl::Seconds(10)),
                HasSubstr("event: message"));
  }
  EXPECT_EQ(gateway_->metrics().streams_open.load(), 2);
  auto res = Get("/api/chat/stream?message=hi");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
  EXPECT_THAT(res->body, HasSubstr("too many open streams"));
  // Short requests still have threads.
  for (int i = 0; i < 10; ++i) {
    auto health = Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  auto metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              HasSubstr("agentstream_gateway_stream_rejections_total 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("agentstream_gateway_streams_open 2\n"));
  EXPECT_THAT(
      metrics->body,
      HasSubstr("agentstream_gateway_http_requests_total{code=\"503\"} 1"));
  for (int fd : fds) ::close(fd);
}

TEST_F(GatewayTest, StopEndsOpenStreamsWithDone) {
  StartGateway();
  fake_.SetScript([](const auto&) {
    RunScript script;
    script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "x")});
    script.final_delay = absl::InfiniteDuration();
    return script;
  });
  const int fd = ConnectLoopback(gateway_->port());
  ASSERT_TRUE(SendAll(fd,
                      "GET /api/chat/stream?message=hi HTTP/1.1\r\n"
                      "Host: x\r\n\r\n"));
  ASSERT_THAT(ReadUntil(fd, "event: message", absl::Seconds(10)),
              HasSubstr("event: message"));
  const absl::Time start = absl::Now();
  gateway_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  const std::string rest =
      ReadUntil(fd, "\"status\":\"cancelled\"", absl::Seconds(5));
  EXPECT_THAT(rest, HasSubstr("event: done"));
  ::close(fd);
  auto call = fake_.WaitForEnd(0, absl::Seconds(5));
  ASSERT_TRUE(call.has_value());
  EXPECT_TRUE(call->cancelled);
}

TEST_F(GatewayTest, SpecialistsReadyHealthAndMetrics) {
  StartGateway();
  auto specialists = Get("/api/specialists");
  ASSERT_TRUE(specialists);
  EXPECT_EQ(specialists->status, 200);
  const auto list = nlohmann::json::parse(specialists->body);
  ASSERT_EQ(list["specialists"].size(), 2u);
  EXPECT_EQ(list["specialists"][0]["name"], "DataAnalyst");
  EXPECT_EQ(list["specialists"][0]["icon"], "📊");
  EXPECT_EQ(list["specialists"][0]["available"], true);

  auto ready = Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(nlohmann::json::parse(ready->body)["status"], "ready");

  auto health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "ok");

  auto metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->get_header_value("Content-Type"),
              HasSubstr("text/plain"));
  for (const char* name :
       {"streams_open", "streams_total", "events_sent_total",
        "stream_rejections_total", "http_requests_total{code=\"200\"}"}) {
    EXPECT_THAT(metrics->body,
                HasSubstr(absl::StrCat("agentstream_gateway_", name)));
  }
}

TEST_F(GatewayTest, StaticFilesWithoutTraversal) {
  const std::string base = agentstream::testing::MakeTempDir("gw_web_");
  const std::string root = base + "/web";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  { std::ofstream(root + "/index.html") << "<!doctype html><title>x</title>"; }
  { std::ofstream(root + "/app.js") << "export {};"; }
  { std::ofstream(base + "/secret.txt") << "secret"; }
  GatewayOptions options;
  options.web_root = root;
  StartGateway(options);
  auto index = Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("Content-Type"),
            "text/html; charset=utf-8");
  EXPECT_THAT(index->body, HasSubstr("<title>x</title>"));
  auto js = Get("/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->get_header_value("Content-Type"),
            "text/javascript; charset=utf-8");
  for (const std::string raw_path :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
        "/%2E%2E%2Fsecret.txt"}) {
    const int fd = ConnectLoopback(gateway_->port());
    ASSERT_TRUE(
        SendAll(fd, "GET " + raw_path +
                        " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const std::string reply = ReadUntil(fd, "\r\n\r\n{", absl::Seconds(5));
    ::close(fd);
    EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 404")) << raw_path;
    EXPECT_EQ(reply.find("secret\n"), std::string::npos);
  }
}

// Connection threads run on small stacks: the heaviest request paths (a
// near-limit POST with the deepest options accepted, streamed; a rejected
// deep body; the specialists list) work on 64 KiB, half the default.
TEST_F(GatewayTest, SmallStacksServeTheHeaviestRequests) {
  GatewayOptions options;
  options.thread_stack_bytes = 64 * 1024;
  StartGateway(options);
  std::string nested = "1";
  for (int i = 0; i < 31; ++i) nested = "{\"k\":" + nested + "}";
  std::string body = R"({"message":")" + std::string(200 * 1024, 'm') +
                     R"(","options":)" + nested + "}";
  SseResponse r = Stream("/api/chat/stream", {}, "POST", body);
  ASSERT_EQ(r.status, 200) << r.raw.substr(0, 300);
  EXPECT_EQ(r.events.back().event, "done");
  ASSERT_TRUE(fake_.WaitForCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.calls()[0].request.message().size(), 200u * 1024);

  std::string deep = R"({"message":"a","options":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  SseResponse rejected = Stream("/api/chat/stream", {}, "POST", deep);
  EXPECT_EQ(rejected.status, 400);
  auto specialists = Get("/api/specialists");
  ASSERT_TRUE(specialists);
  EXPECT_EQ(specialists->status, 200);
}

// The binary: flags, --port-file, --help, a stream, SIGTERM.
TEST_F(GatewayTest, BinaryServesAndStopsOnSigterm) {
  const std::string dir = agentstream::testing::MakeTempDir("gw_bin_");
  auto help =
      agentstream::testing::Subprocess::Start({.binary = "gateway",
                                               .args = {"--help"},
                                               .log_path = dir + "/help.log",
                                               .env = {}});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ((*help)->Wait(absl::Seconds(10)).value_or(-1), 0);
  const std::string usage = (*help)->ReadLog();
  for (const char* flag :
       {"--host", "--port", "--port-file", "--orchestrator", "--heartbeat-ms",
        "--retry-ms", "--max-streams", "--first-update-timeout-ms",
        "--web-root", "--log-level"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }

  auto proc = agentstream::testing::Subprocess::Start(
      {.binary = "gateway",
       .args = {"--port", "0", "--port-file", dir + "/port", "--orchestrator",
                fake_.address(), "--heartbeat-ms", "100"},
       .log_path = dir + "/gateway.log",
       .env = {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto port =
      agentstream::testing::WaitForPortFile(dir + "/port", absl::Seconds(10));
  ASSERT_TRUE(port.ok()) << port.status() << (*proc)->ReadLog();
  SseRequest request;
  request.port = *port;
  request.path = "/api/chat/stream?message=" + UrlEncode("Assess ACC-1042");
  request.timeout = absl::Seconds(10);
  SseResponse r = StreamSse(request);
  ASSERT_EQ(r.status, 200) << (*proc)->ReadLog();
  EXPECT_EQ(r.events.front().event, "connected");
  EXPECT_EQ(r.events.back().event, "done");
  (*proc)->Signal(SIGTERM);
  EXPECT_EQ((*proc)->Wait(absl::Seconds(10)).value_or(-1), 0)
      << (*proc)->ReadLog();
}

}  // namespace
}  // namespace agentstream::gateway
