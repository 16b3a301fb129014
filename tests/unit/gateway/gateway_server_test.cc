// The real gateway (in-process and the binary) against the fake
// orchestrator: a client that goes away, the stream cap, stopping, the
// non-stream endpoints, static files and small thread stacks.
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

using agentstream::testing::UrlEncode;
using ::testing::HasSubstr;
using namespace agentstream::gateway::testing;  // NOLINT: test helpers.
using agentstream::testing::ConnectLoopback;
using agentstream::testing::ReadUntil;
using agentstream::testing::SendAll;
using agentstream::testing::SendGet;

TEST_F(GatewayTest, ClientDisconnectCancelsTheRunWithinOneSecond) {
  GatewayOptions options;
  options.heartbeat_interval = absl::Seconds(60);  // No write to fail.
  StartGateway(options);
  fake_.SetScript(OneUpdateThen(1, absl::InfiniteDuration()));
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
  ASSERT_NO_FATAL_FAILURE(ExpectCancelledWithin(
      call, closed, absl::Seconds(1), "the Run call was never cancelled"));
  ExpectOneClientGoneAndNoStreamOpen();
}

TEST_F(GatewayTest, StreamsPastTheCapGet503AndHealthStaysUp) {
  GatewayOptions options;
  options.max_streams = 2;
  options.handler_threads = 4;
  StartGateway(options);
  fake_.SetScript(OneUpdateThen(1, absl::InfiniteDuration()));
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectLoopback(gateway_->port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_TRUE(SendGet(fd, "/api/chat/stream?message=hi"));
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

// A gateway that stops ends its streams with a retryable error and no
// `done` (EventSource reconnects, through another gateway, and resumes); the
// gRPC call ends, but the run is not cancelled.
TEST_F(GatewayTest, StopEndsOpenStreamsWithARetryableErrorAndNoDone) {
  StartGateway();
  fake_.SetScript(OneUpdateThen(1, absl::InfiniteDuration()));
  const int fd = ConnectLoopback(gateway_->port());
  ASSERT_TRUE(SendGet(fd, "/api/chat/stream?message=hi"));
  ASSERT_THAT(ReadUntil(fd, "event: message", absl::Seconds(10)),
              HasSubstr("event: message"));
  const absl::Time start = absl::Now();
  gateway_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // Everything up to the end of the chunked body ("0\r\n\r\n").
  const std::string rest = ReadUntil(fd, "\r\n0\r\n\r\n", absl::Seconds(5));
  ::close(fd);
  EXPECT_THAT(rest, HasSubstr("event: error"));
  EXPECT_THAT(rest, HasSubstr("the gateway is shutting down; reconnect"));
  EXPECT_THAT(rest, HasSubstr("\"retryable\":true"));
  EXPECT_THAT(rest, ::testing::Not(HasSubstr("event: done")));
  EXPECT_TRUE(absl::EndsWith(rest, "\r\n0\r\n\r\n")) << rest;
  auto call = fake_.WaitForEnd(0, absl::Seconds(5));
  ASSERT_TRUE(call.has_value());
  EXPECT_TRUE(call->cancelled);               // The call, and only the call:
  EXPECT_TRUE(fake_.cancel_calls().empty());  // no Cancel RPC.
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
  const absl::StatusOr<agentstream::testing::ScopedTempDir> made =
      agentstream::testing::ScopedTempDir::Make("gw_web_");
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string& base = made->path();
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
  const absl::StatusOr<agentstream::testing::ScopedTempDir> made =
      agentstream::testing::ScopedTempDir::Make("gw_bin_");
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string& dir = made->path();
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
        "--web-root", "--log-level", "--write-timeout-ms", "--stream-queue",
        "AGENTSTREAM_WRITE_TIMEOUT_MS", "AGENTSTREAM_STREAM_QUEUE"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }

  auto proc = agentstream::testing::Subprocess::Start(
      {.binary = "gateway",
       .args = {"--port", "0", "--port-file", dir + "/port", "--orchestrator",
                fake_.address(), "--heartbeat-ms", "100", "--write-timeout-ms",
                "5000", "--stream-queue", "8"},
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
