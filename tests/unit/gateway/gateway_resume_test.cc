// The real gateway against the fake orchestrator, over loopback HTTP: resume
// (Last-Event-ID, last_event_id=, /api/runs/{id}/stream?after=), second
// observers, the pre-stream mapping of Attach's first answer, the endings of
// a stream by the call's status, cancel, on_disconnect, flow control and the
// write timeout.
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gateway/http_server.h"
#include "gateway/orchestrator_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/loopback.h"
#include "tests/testing/sse_client.h"
#include "tests/unit/gateway/fake_orchestrator.h"
#include "tests/unit/gateway/gateway_fixture.h"

namespace agentstream::gateway {
namespace {

using agentstream::testing::SseEvent;
using agentstream::v1::Update;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace agentstream::gateway::testing;  // NOLINT: test helpers.
using agentstream::testing::ConnectLoopback;
using agentstream::testing::ReadUntil;
using agentstream::testing::SendAll;
using agentstream::testing::SendGet;

std::vector<std::string> Ids(const SseResponse& r) {
  std::vector<std::string> ids;
  for (const auto& e : r.events) ids.push_back(e.has_id ? e.id : "-");
  return ids;
}

RunScript Ending(grpc::StatusCode code, const std::string& message) {
  RunScript script;
  script.final_status = grpc::Status(code, message);
  return script;
}

nlohmann::json Json(const std::string& body) {
  return nlohmann::json::parse(body, nullptr, false);
}

class GatewayResumeTest : public GatewayTest {
 protected:
  httplib::Result Delete(const std::string& path) {
    httplib::Client client("127.0.0.1", gateway_->port());
    client.set_read_timeout(10, 0);
    return client.Delete(path.c_str());
  }
  std::string Metrics() {
    auto res = Get("/metrics");
    return res ? res->body : "";
  }
};

TEST_F(GatewayResumeTest, LastEventIdOnTheChatUrlAttachesWithoutANewRun) {
  StartGateway();
  SseResponse r =
      Stream("/api/chat/stream?message=hi", {{"Last-Event-ID", "req_abc:2"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Header("X-Request-Id"), "req_abc");
  EXPECT_EQ(r.Header("Content-Type"), "text/event-stream; charset=utf-8");
  EXPECT_THAT(Names(r), ElementsAre("connected", "message", "error", "message",
                                    "timeout", "message", "done"));
  EXPECT_THAT(Ids(r), ElementsAre("req_abc:2", "req_abc:3", "-", "req_abc:4",
                                  "-", "req_abc:5", "-"));
  EXPECT_EQ(r.events[0].json, Json(R"({"type":"connected","status":"resumed",)"
                                   R"("request_id":"req_abc","after_seq":2})"));
  EXPECT_EQ(r.events.back().json["status"], "complete");
  for (const auto& e : r.events) EXPECT_EQ(e.json["request_id"], "req_abc");
  ASSERT_TRUE(fake_.WaitForAttachCalls(1, absl::Seconds(5)));
  const auto attach = fake_.attach_calls()[0];
  EXPECT_EQ(attach.attach_request.request_id(), "req_abc");
  EXPECT_EQ(attach.attach_request.after_seq(), 2u);
  EXPECT_EQ(attach.metadata_request_id, "req_abc");
  EXPECT_TRUE(fake_.calls().empty()) << "a resume started a run";
  EXPECT_EQ(gateway_->metrics().resumes_total.load(), 1);
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

TEST_F(GatewayResumeTest, QueryParameterAndPostResumeToo) {
  StartGateway();
  // No message needed; the header (newer) wins over the query.
  SseResponse by_query = Stream("/api/chat/stream?last_event_id=r1:4");
  ASSERT_EQ(by_query.status, 200) << by_query.raw;
  EXPECT_THAT(Ids(by_query), ElementsAre("r1:4", "r1:5", "-"));
  SseResponse post = Stream("/api/chat/stream?last_event_id=r2:1",
                            {{"Last-Event-ID", "r2:3"}}, "POST", "");
  ASSERT_EQ(post.status, 200) << post.raw;
  EXPECT_EQ(post.events[0].id, "r2:3");
  ASSERT_TRUE(fake_.WaitForAttachCalls(2, absl::Seconds(5)));
  EXPECT_EQ(fake_.attach_calls()[0].attach_request.after_seq(), 4u);
  EXPECT_EQ(fake_.attach_calls()[1].attach_request.request_id(), "r2");
  EXPECT_EQ(fake_.attach_calls()[1].attach_request.after_seq(), 3u);
  EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(GatewayResumeTest, RunStreamFollowsFromTheStartOrAfterASeq) {
  StartGateway();
  SseResponse all = Stream("/api/runs/r1/stream");
  ASSERT_EQ(all.status, 200) << all.raw;
  EXPECT_EQ(all.Header("X-Request-Id"), "r1");
  EXPECT_EQ(all.events[0].id, "r1:0");
  EXPECT_EQ(all.events[0].json["status"], "connected");
  EXPECT_EQ(all.events.back().json["status"], "complete");
  EXPECT_EQ(all.events.size(), 9u);  // connected, 5 updates, 2 copies, done.

  SseResponse after = Stream("/api/runs/r1/stream?after=3");
  ASSERT_EQ(after.status, 200);
  EXPECT_THAT(Ids(after), ElementsAre("r1:3", "r1:4", "-", "r1:5", "-"));
  EXPECT_EQ(after.events[0].json["status"], "resumed");
  // EventSource's reconnect to that URL sends a newer Last-Event-ID.
  SseResponse header =
      Stream("/api/runs/r1/stream?after=3", {{"Last-Event-ID", "r1:4"}});
  ASSERT_EQ(header.status, 200);
  EXPECT_THAT(Ids(header), ElementsAre("r1:4", "r1:5", "-"));
  ASSERT_TRUE(fake_.WaitForAttachCalls(3, absl::Seconds(5)));
  EXPECT_EQ(fake_.attach_calls()[0].attach_request.after_seq(), 0u);
  EXPECT_EQ(fake_.attach_calls()[2].attach_request.after_seq(), 4u);
  EXPECT_EQ(gateway_->metrics().resumes_total.load(), 2);
}

TEST_F(GatewayResumeTest, AfterTheFinalEventIs204) {
  StartGateway();
  fake_.SetAttachScript([](const auto&) { return RunScript(); });
  for (const auto& [path, header] :
       std::vector<std::pair<std::string, std::string>>{
           {"/api/chat/stream?message=hi", "r1:5"},
           {"/api/runs/r1/stream?after=5", ""}}) {
    std::multimap<std::string, std::string> headers;
    if (!header.empty()) headers.emplace("Last-Event-ID", header);
    SseResponse r = Stream(path, headers);
    EXPECT_EQ(r.status, 204) << path << r.raw;
    EXPECT_TRUE(r.raw.empty()) << r.raw;
  }
  EXPECT_EQ(gateway_->metrics().resumes_total.load(), 2);
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

TEST_F(GatewayResumeTest, APointTheLogNoLongerHoldsIsAGapStream) {
  StartGateway();
  fake_.SetAttachScript([](const auto& request) {
    return request.request_id() == "evicted"
               ? Ending(grpc::StatusCode::OUT_OF_RANGE,
                        "gap: the log starts at seq 900")
               : Ending(grpc::StatusCode::NOT_FOUND, "no such run");
  });
  // Path, Last-Event-ID, run, and the id `connected` carries: the resume
  // point asked for.
  for (const auto& [path, header, rid, connected_id] : std::vector<
           std::tuple<std::string, std::string, std::string, std::string>>{
           {"/api/chat/stream?message=hi", "evicted:3", "evicted", "evicted:3"},
           {"/api/runs/evicted/stream", "", "evicted", "evicted:0"},
           {"/api/chat/stream", "forgotten:7", "forgotten", "forgotten:7"},
           {"/api/runs/forgotten/stream?after=7", "", "forgotten",
            "forgotten:7"}}) {
    std::multimap<std::string, std::string> headers;
    if (!header.empty()) headers.emplace("Last-Event-ID", header);
    SseResponse r = Stream(path, headers);
    ASSERT_EQ(r.status, 200) << path << r.raw;
    ASSERT_THAT(Names(r), ElementsAre("connected", "error", "done")) << path;
    EXPECT_EQ(r.retry_ms, 2000);
    EXPECT_EQ(r.events[0].id, connected_id) << path;
    const nlohmann::json& error = r.events[1].json;
    EXPECT_EQ(error["type"], "error");
    EXPECT_EQ(error["request_id"], rid);
    EXPECT_EQ(error["code"], "gap");
    EXPECT_EQ(error["retryable"], false);
    EXPECT_EQ(error["source"], "gateway");
    EXPECT_THAT(error["message"].get<std::string>(),
                HasSubstr("start the question again"));
    EXPECT_EQ(r.events[2].json["status"], "failed");
  }
  EXPECT_EQ(gateway_->metrics().gaps_total.load(), 4);
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_gateway_gaps_total 4\n"));
}

TEST_F(GatewayResumeTest, PreStreamErrorsAreJson) {
  StartGateway();
  struct Case {
    std::string path;
    std::string last_event_id;
    int status;
    std::string error;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      // Unknown run without a resume point: 404.
      {"/api/runs/unknown1/stream", "", 404, "not_found", "no such run"},
      // after_seq ahead of the run: the orchestrator's INVALID_ARGUMENT.
      {"/api/runs/r1/stream?after=9", "", 400, "invalid_argument", "ahead"},
      {"/api/chat/stream", "r1:9", 400, "invalid_argument", "ahead"},
      // Malformed input never reaches the orchestrator.
      {"/api/chat/stream?message=hi", "garbage", 400, "invalid_argument",
       "Last-Event-ID"},
      {"/api/chat/stream?last_event_id=r1:x", "", 400, "invalid_argument",
       "seq"},
      {"/api/runs/r1/stream?after=-1", "", 400, "invalid_argument", "after"},
      {"/api/runs/r1/stream?after=", "", 400, "invalid_argument", "after"},
      {"/api/runs/r1/stream", "r2:3", 400, "invalid_argument", "r2"},
      {"/api/runs/bad%20id/stream", "", 400, "invalid_argument", "run id"},
      {"/api/runs/r1/stream?heartbeat=loud", "", 400, "invalid_argument",
       "heartbeat"},
  };
  for (const Case& c : cases) {
    httplib::Headers headers;
    if (!c.last_event_id.empty()) {
      headers.emplace("Last-Event-ID", c.last_event_id);
    }
    httplib::Client client("127.0.0.1", gateway_->port());
    client.set_read_timeout(10, 0);
    auto res = client.Get(c.path.c_str(), headers);
    ASSERT_TRUE(res) << c.path;
    EXPECT_EQ(res->status, c.status) << c.path << " " << res->body;
    EXPECT_THAT(res->get_header_value("Content-Type"),
                HasSubstr("application/json"));
    const auto body = Json(res->body);
    ASSERT_FALSE(body.is_discarded()) << res->body;
    EXPECT_EQ(body["error"], c.error) << c.path << " " << res->body;
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(c.message_part))
        << c.path;
  }
  EXPECT_EQ(fake_.attach_calls().size(), 3u);
  EXPECT_TRUE(fake_.calls().empty());
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

TEST_F(GatewayResumeTest, OrchestratorDownIs503WithRetryAfter) {
  GatewayOptions options;
  options.retry_after_seconds = 4;
  StartGateway(options, "127.0.0.1:1");
  for (const auto& [method, path, header] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/api/chat/stream?message=hi", "r1:3"},
           {"GET", "/api/runs/r1/stream?after=3", ""},
           {"GET", "/api/runs/r1/stream", ""},
           {"DELETE", "/api/runs/r1", ""}}) {
    httplib::Client client("127.0.0.1", gateway_->port());
    client.set_read_timeout(10, 0);
    httplib::Headers headers;
    if (!header.empty()) headers.emplace("Last-Event-ID", header);
    auto res = method == "GET" ? client.Get(path.c_str(), headers)
                               : client.Delete(path.c_str(), headers);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 503) << path << " " << res->body;
    EXPECT_EQ(res->get_header_value("Retry-After"), "4") << path;
    EXPECT_EQ(Json(res->body)["error"], "unavailable") << res->body;
  }
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

// A live run with nothing new: the orchestrator accepts the attach with its
// initial metadata at once, so the response starts on that alone, without
// an update and without waiting out attach_first_answer_wait. The fake holds
// the update back until the client has seen `connected`: were the gateway to
// wait for an update, nothing would come before the client gives up.
TEST_F(GatewayResumeTest, IdleLiveRunStreamsAsSoonAsTheAttachIsAccepted) {
  GatewayOptions options;
  options.attach_first_answer_wait = absl::Seconds(30);
  StartGateway(options);
  auto release = std::make_shared<absl::Notification>();
  fake_.SetAttachScript([release](const auto&) {
    RunScript script;
    script.steps.push_back(
        {absl::ZeroDuration(), CompleteUpdate(4, "ok"), release});
    return script;
  });
  SseRequest request;
  request.port = gateway_->port();
  request.path = "/api/runs/r1/stream?after=3";
  request.timeout = absl::Seconds(10);
  request.stop = [release](const SseEvent& e, const SseResponse&) {
    if (e.event == "connected" && !release->HasBeenNotified()) {
      release->Notify();
    }
    return false;
  };
  const absl::Time start = absl::Now();
  SseResponse r = StreamSse(request);
  ASSERT_EQ(r.status, 200) << r.error;
  ASSERT_THAT(Names(r), ElementsAre("connected", "message", "done"));
  EXPECT_EQ(r.events[0].json["status"], "resumed");
  EXPECT_EQ(r.events[1].id, "r1:4");
  // The order above already shows it; the time only says "at once" loosely.
  EXPECT_LT(r.events[0].received_at - start, absl::Seconds(5));
  const auto attach = fake_.WaitForAttachEnd(0, absl::Seconds(5));
  ASSERT_TRUE(attach.has_value());
  EXPECT_TRUE(attach->metadata_sent_at_once);
  EXPECT_FALSE(attach->cancelled);
  EXPECT_EQ(attach->updates_written, 1);
  EXPECT_EQ(gateway_->metrics().resumes_total.load(), 1);
}

// An orchestrator that neither accepts nor refuses within the bound: 503
// with Retry-After, and the call is cancelled.
TEST_F(GatewayResumeTest, AnAttachWithoutAnyAnswerIs503) {
  GatewayOptions options;
  options.attach_first_answer_wait = absl::Milliseconds(200);
  options.retry_after_seconds = 3;
  StartGateway(options);
  auto never = std::make_shared<absl::Notification>();
  fake_.SetAttachScript([never](const auto&) {
    RunScript script;
    script.initial_metadata = InitialMetadata::kWithFirstUpdate;
    script.steps.push_back(
        {absl::ZeroDuration(), CompleteUpdate(4, "ok"), never});
    return script;
  });
  auto res = Get("/api/runs/r1/stream?after=3");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(res->get_header_value("Retry-After"), "3");
  EXPECT_EQ(Json(res->body)["error"], "unavailable") << res->body;
  const auto attach = fake_.WaitForAttachEnd(0, absl::Seconds(5));
  ASSERT_TRUE(attach.has_value());
  EXPECT_TRUE(attach->cancelled);
  EXPECT_EQ(attach->updates_written, 0);
  EXPECT_EQ(StreamsOpenSettled(), 0);
}

TEST_F(GatewayResumeTest, UnknownRunAfterAnIdleStartIsAGapOnResume) {
  GatewayOptions options;
  options.attach_first_answer_wait = absl::Milliseconds(100);
  StartGateway(options);
  fake_.SetAttachScript([](const auto&) {
    RunScript script = Ending(grpc::StatusCode::NOT_FOUND, "no such run");
    script.final_delay = absl::Milliseconds(400);
    return script;
  });
  SseResponse r = Stream("/api/runs/r1/stream?after=2");
  ASSERT_EQ(r.status, 200);
  ASSERT_THAT(Names(r), ElementsAre("connected", "error", "done"));
  EXPECT_EQ(r.events[1].json["code"], "gap");
}

TEST_F(GatewayResumeTest, SlowConsumerCutOffEndsWithoutDone) {
  StartGateway();
  fake_.SetScript([](const auto&) {
    RunScript script;
    script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "x")});
    script.steps.push_back(
        {absl::Milliseconds(20), ProgressUpdate(2, "A", 5, "y")});
    script.final_status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "slow_consumer: 1025 updates behind");
    return script;
  });
  SseResponse r =
      Stream("/api/chat/stream?message=hi", {{"X-Request-Id", "req_slow"}});
  ASSERT_EQ(r.status, 200);
  const std::string rid = r.Header("X-Request-Id");
  EXPECT_TRUE(r.error.empty()) << r.error;  // A clean end of the response.
  ASSERT_THAT(Names(r),
              ElementsAre("connected", "message", "message", "error"));
  EXPECT_EQ(r.events[3].json["code"], "slow_consumer");
  EXPECT_EQ(r.events[3].json["retryable"], true);
  EXPECT_THAT(r.events[3].json["message"].get<std::string>(),
              HasSubstr("Last-Event-ID: " + rid + ":2"));
  EXPECT_EQ(gateway_->metrics().slow_consumer_cutoffs_total.load(), 1);
  // What EventSource then does by itself: reconnect with the last id.
  SseResponse again = Stream("/api/chat/stream?message=hi",
                             {{"Last-Event-ID", r.events[2].id}});
  ASSERT_EQ(again.status, 200);
  EXPECT_THAT(Ids(again), ElementsAre(rid + ":2", rid + ":3", "-", rid + ":4",
                                      "-", rid + ":5", "-"));
  EXPECT_EQ(fake_.calls().size(), 1u);
}

TEST_F(GatewayResumeTest, OrchestratorLostMidStreamEndsCleanlyWithoutDone) {
  StartGateway();
  fake_.SetScript(OneUpdateThen(
      1, absl::Milliseconds(50),
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed")));
  SseResponse r = Stream("/api/chat/stream?message=hi");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.error.empty()) << r.error;
  ASSERT_THAT(Names(r), ElementsAre("connected", "message", "error"));
  EXPECT_EQ(r.events[2].json["code"], "unavailable");
  EXPECT_EQ(r.events[2].json["retryable"], true);
  EXPECT_THAT(r.events[2].json["message"].get<std::string>(),
              HasSubstr("Socket closed"));
  EXPECT_EQ(gateway_->metrics().upstream_failures_total.load(), 1);
  EXPECT_THAT(Metrics(),
              HasSubstr("agentstream_gateway_upstream_failures_total 1\n"));
}

TEST_F(GatewayResumeTest, GapMidStreamIsAnErrorThenFailedDone) {
  StartGateway();
  fake_.SetAttachScript(OneUpdateThen(
      3, absl::ZeroDuration(),
      grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "gap: seq 4 evicted")));
  SseResponse r = Stream("/api/runs/r1/stream?after=2");
  ASSERT_EQ(r.status, 200);
  ASSERT_THAT(Names(r), ElementsAre("connected", "message", "error", "done"));
  EXPECT_EQ(r.events[2].json["code"], "gap");
  EXPECT_EQ(r.events[3].json["status"], "failed");
}

// A client that goes away ends its Attach call, never the run: no Cancel.
TEST_F(GatewayResumeTest, ClientGoneEndsTheAttachCallOnly) {
  StartGateway();
  fake_.SetAttachScript(OneUpdateThen(2, absl::InfiniteDuration()));
  const int fd = ConnectLoopback(gateway_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendGet(fd, "/api/runs/r1/stream?after=1"));
  ASSERT_THAT(ReadUntil(fd, "event: message", absl::Seconds(10)),
              HasSubstr("id: r1:2"));
  ::close(fd);
  auto call = fake_.WaitForAttachEnd(0, absl::Seconds(5));
  ASSERT_TRUE(call.has_value()) << "the Attach call was never cancelled";
  EXPECT_TRUE(call->cancelled);
  EXPECT_TRUE(fake_.cancel_calls().empty());
  ExpectOneClientGoneAndNoStreamOpen();
}

TEST_F(GatewayResumeTest, DeleteCancelsTheRun) {
  StartGateway();
  auto accepted = Delete("/api/runs/req_1");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202);
  EXPECT_EQ(Json(accepted->body),
            Json(R"({"request_id":"req_1","cancelled":true})"));
  EXPECT_EQ(accepted->get_header_value("X-Request-Id"), "req_1");
  EXPECT_EQ(fake_.cancel_calls(), std::vector<std::string>{"req_1"});

  auto ended = Delete("/api/runs/ended_1");
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->status, 409);
  EXPECT_EQ(Json(ended->body)["error"], "failed_precondition");
  EXPECT_THAT(Json(ended->body)["message"].get<std::string>(),
              HasSubstr("already ended"));

  auto unknown = Delete("/api/runs/unknown_1");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(Json(unknown->body)["error"], "not_found");

  auto bad = Delete("/api/runs/bad%3Cid%3E");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(Json(bad->body)["error"], "invalid_argument");
  EXPECT_EQ(fake_.cancel_calls().size(), 3u);  // The bad id never went out.

  EXPECT_EQ(gateway_->metrics().cancels_total.load(), 1);
  EXPECT_THAT(Metrics(), HasSubstr("agentstream_gateway_cancels_total 1\n"));
}

TEST_F(GatewayResumeTest, DeleteOfASlowOrchestratorIs503) {
  GatewayOptions options;
  options.cancel_timeout = absl::Milliseconds(200);
  StartGateway(options);
  fake_.SetCancel([](const std::string&) {
    return CancelAnswer{.delay = absl::Seconds(1)};
  });
  auto res = Delete("/api/runs/req_1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
}

TEST_F(GatewayResumeTest, OnDisconnectTravelsInTheRunRequest) {
  StartGateway();
  Stream("/api/chat/stream?message=hi&on_disconnect=cancel");
  Stream("/api/chat/stream", {}, "POST",
         R"({"message":"hi","on_disconnect":"continue"})");
  Stream("/api/chat/stream?message=hi");
  ASSERT_TRUE(fake_.WaitForCalls(3, absl::Seconds(5)));
  const auto calls = fake_.calls();
  EXPECT_EQ(calls[0].request.on_disconnect(),
            agentstream::v1::DISCONNECT_POLICY_CANCEL);
  EXPECT_EQ(calls[1].request.on_disconnect(),
            agentstream::v1::DISCONNECT_POLICY_CONTINUE);
  EXPECT_EQ(calls[2].request.on_disconnect(),
            agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED);
  auto bad = Get("/api/chat/stream?message=hi&on_disconnect=later");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("on_disconnect"));
  EXPECT_EQ(fake_.calls().size(), 3u);
}

// A client that stops reading: its writes block, and after the write
// timeout the gateway drops it and ends its call.
TEST_F(GatewayResumeTest, AClientThatTakesNoBytesIsDroppedAfterTheTimeout) {
  GatewayOptions options;
  options.write_timeout = absl::Milliseconds(300);
  options.heartbeat_interval = absl::Seconds(60);
  StartGateway(options);
  fake_.SetScript([](const auto&) {
    RunScript script;
    const std::string big(64 * 1024, 'x');
    for (int i = 1; i <= 150; ++i) {
      script.steps.push_back(
          {absl::ZeroDuration(), ProgressUpdate(i, "A", i % 100, big)});
    }
    script.final_delay = absl::InfiniteDuration();
    return script;
  });
  const int fd = ConnectLoopback(gateway_->port());
  ASSERT_GE(fd, 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(SendGet(fd, "/api/chat/stream?message=hi"));
  // Never read: ~10 MB cannot fit in the sockets' buffers, a write blocks,
  // and 300 ms later the client is dropped (cpp-httplib's default would be
  // 5 s) and its call cancelled.
  auto call = fake_.WaitForEnd(0, absl::Seconds(10));
  ::close(fd);
  ASSERT_NO_FATAL_FAILURE(ExpectCancelledWithin(
      call, start, absl::Seconds(3), "the stuck client was never dropped"));
  ExpectOneClientGoneAndNoStreamOpen();
}

// The bounded per-stream queue: while the HTTP side does not take updates,
// the gateway stops reading and gRPC's flow control holds the orchestrator
// back; nothing is lost once it reads again.
// Both forms of the call (docs/CONTRACT.md): the gateway uses the batched
// one; the single-update one stays usable.
class OrchestratorClientTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Forms, OrchestratorClientTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Batched" : "Single";
                         });

TEST_P(OrchestratorClientTest, FullQueuePausesReadingWithoutLoss) {
  FakeOrchestrator fake;
  ASSERT_GT(fake.Start(), 0);
  constexpr int kUpdates = 200;
  fake.SetScript([](const auto&) {
    RunScript script;
    const std::string big(256 * 1024, 'x');
    for (int i = 1; i <= kUpdates; ++i) {
      script.steps.push_back(
          {absl::ZeroDuration(), ProgressUpdate(i, "A", i % 100, big)});
    }
    return script;
  });
  auto client =
      NewGrpcOrchestratorClient(NewOrchestratorChannel(fake.address()),
                                {.queue_capacity = 4, .batched = GetParam()});
  RunParams params;
  params.request_id = "req_flow";
  params.message = "hi";
  auto run = client->StartRun(params);
  ASSERT_TRUE(fake.WaitForCalls(1, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(700));
  const int written_while_paused = fake.calls()[0].updates_written;
  // 4 queued plus what gRPC's windows hold (a few MiB at most).
  EXPECT_LT(written_while_paused, kUpdates / 2) << written_while_paused;
  std::vector<Update> all;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    std::vector<Update> batch;
    const RunStream::Next next = run->Wait(absl::Milliseconds(200), &batch);
    EXPECT_LE(batch.size(), 4u);
    for (auto& u : batch) all.push_back(std::move(u));
    if (next == RunStream::Next::kFinished) break;
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kUpdates));
  for (int i = 0; i < kUpdates; ++i) EXPECT_EQ(all[i].seq(), i + 1u);
  EXPECT_TRUE(run->status().ok()) << run->status();
}

TEST_F(GatewayResumeTest, MetricsNameEveryCounter) {
  StartGateway();
  const std::string metrics = Metrics();
  for (const char* name :
       {"streams_open", "streams_total", "events_sent_total", "resumes_total",
        "gaps_total", "slow_consumer_cutoffs_total", "upstream_failures_total",
        "cancels_total", "client_disconnects_total", "heartbeats_sent_total"}) {
    EXPECT_THAT(metrics,
                HasSubstr(absl::StrCat("\nagentstream_gateway_", name, " ")))
        << name;
  }
}

}  // namespace
}  // namespace agentstream::gateway
