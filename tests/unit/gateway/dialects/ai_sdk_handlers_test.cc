// The AI SDK endpoints (gateway/ai_sdk_handlers.cc) of the real gateway
// against the fake orchestrator, over loopback HTTP: the chat's run found
// again by its chat id, replayed or continued, and 204 when nothing is left
// to send (docs/PROTOCOLS.md, "AI SDK UI message stream").
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/gateway/dialects/updates.h"
#include "tests/unit/gateway/fake_orchestrator.h"
#include "tests/unit/gateway/gateway_fixture.h"

namespace agentstream::gateway {
namespace {

using namespace agentstream::gateway::testing;  // NOLINT: the fixture.
using agentstream::testing::SseEvent;
using agentstream::v1::Update;

RunScript Script(const std::vector<Update>& updates,
                 grpc::Status ending = grpc::Status::OK) {
  RunScript script;
  for (const Update& u : updates)
    script.steps.emplace_back(absl::ZeroDuration(), u);
  script.final_status = std::move(ending);
  return script;
}

std::vector<Update> FirstOf(size_t n) {
  std::vector<Update> run = dialects::testing::TwoSpecialistRun();
  run.resize(n);
  return run;
}

std::string Body(const std::string& chat_id,
                 const std::string& question = "Assess ACC-1042") {
  return nlohmann::json{
      {"id", chat_id},
      {"messages",
       {{{"id", "u1"},
         {"role", "user"},
         {"parts", {{{"type", "text"}, {"text", question}}}}}}},
      {"trigger", "submit-message"}}
      .dump();
}

std::string Type(const SseEvent& e) {
  return e.data == "[DONE]" ? "[DONE]" : e.json.value("type", "");
}

std::vector<std::string> Types(const SseResponse& r) {
  std::vector<std::string> types;
  for (const SseEvent& e : r.events) types.push_back(Type(e));
  return types;
}

bool Has(const SseResponse& r, const std::string& type) {
  for (const SseEvent& e : r.events) {
    if (Type(e) == type) return true;
  }
  return false;
}

class AiSdkHandlersTest : public GatewayTest {
 protected:
  SseResponse Post(const std::string& body) {
    return Stream("/api/ai-sdk/chat", {{"Content-Type", "application/json"}},
                  "POST", body);
  }
  SseResponse Reconnect(const std::string& chat_id,
                        const std::string& last_event_id = "") {
    std::multimap<std::string, std::string> headers;
    if (!last_event_id.empty()) headers.emplace("Last-Event-ID", last_event_id);
    return Stream(absl::StrCat("/api/ai-sdk/chat/", chat_id, "/stream"),
                  headers);
  }
};

TEST_F(AiSdkHandlersTest, AWholeRunThenNothingToReconnectTo) {
  fake_.SetScript(Script(dialects::testing::TwoSpecialistRun()));
  StartGateway();
  SseResponse r = Post(Body("chat-1"));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Header("x-vercel-ai-ui-message-stream"), "v1");
  const std::string run = r.Header("X-Request-Id");
  ASSERT_TRUE(absl::StartsWith(run, "run_")) << run;
  ASSERT_GE(r.events.size(), 5u);
  EXPECT_EQ(r.events[0].json["messageId"], "msg_" + run);
  EXPECT_EQ(Type(r.events.back()), "[DONE]");
  EXPECT_EQ(r.events[r.events.size() - 2].json["finishReason"], "stop");
  EXPECT_EQ(r.events.back().id, run + ":17");
  ASSERT_TRUE(fake_.WaitForCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.calls()[0].request.message(), "Assess ACC-1042");

  // Sent to the end: 204, without asking the orchestrator.
  SseResponse again = Reconnect("chat-1");
  EXPECT_EQ(again.status, 204) << again.raw;
  EXPECT_EQ(Reconnect("chat-1", run + ":17").status, 204);
  EXPECT_EQ(Reconnect("chat-unknown").status, 204);
  EXPECT_TRUE(fake_.attach_calls().empty());
}

TEST_F(AiSdkHandlersTest, ACutStreamIsReplayedFromTheStartThenIs204) {
  // The orchestrator is lost after 9 updates: the stream ends without
  // finish, for the client to reconnect.
  fake_.SetScript(
      Script(FirstOf(9), grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone")));
  fake_.SetAttachScript(Script(dialects::testing::TwoSpecialistRun()));
  StartGateway();
  SseResponse cut = Post(Body("chat-2"));
  ASSERT_EQ(cut.status, 200) << cut.raw;
  const std::string run = cut.Header("X-Request-Id");
  EXPECT_FALSE(Has(cut, "finish")) << cut.raw;
  EXPECT_FALSE(Has(cut, "[DONE]")) << cut.raw;
  EXPECT_TRUE(absl::StrContains(cut.raw, "\n: unavailable: ")) << cut.raw;

  SseResponse replay = Reconnect("chat-2");
  ASSERT_EQ(replay.status, 200) << replay.raw;
  EXPECT_EQ(replay.Header("X-Request-Id"), run);
  ASSERT_TRUE(fake_.WaitForAttachCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.attach_calls()[0].attach_request.request_id(), run);
  EXPECT_EQ(fake_.attach_calls()[0].attach_request.after_seq(), 0u);
  // The same message from the start: the client starts it over.
  EXPECT_EQ(Type(replay.events[0]), "start");
  EXPECT_EQ(replay.events[0].json["messageId"], "msg_" + run);
  EXPECT_TRUE(Has(replay, "tool-input-available"));
  EXPECT_EQ(Type(replay.events.back()), "[DONE]");

  EXPECT_EQ(Reconnect("chat-2").status, 204);
}

TEST_F(AiSdkHandlersTest, LastEventIdContinuesAfterThePoint) {
  fake_.SetScript(Script(dialects::testing::TwoSpecialistRun()));
  fake_.SetAttachScript(Script(dialects::testing::TwoSpecialistRun()));
  StartGateway();
  SseResponse whole = Post(Body("chat-3"));
  ASSERT_EQ(whole.status, 200) << whole.raw;
  const std::string run = whole.Header("X-Request-Id");

  SseResponse rest = Reconnect("chat-3", run + ":9");
  ASSERT_EQ(rest.status, 200) << rest.raw;
  ASSERT_TRUE(fake_.WaitForAttachCalls(1, absl::Seconds(5)));
  // Attached from the start, to rebuild the state; sent from seq 10 on.
  EXPECT_EQ(fake_.attach_calls()[0].attach_request.after_seq(), 0u);
  EXPECT_FALSE(Has(rest, "start"));
  EXPECT_FALSE(Has(rest, "tool-input-available"));  // seq 7
  for (const SseEvent& e : rest.events) {
    const uint64_t seq = std::stoull(e.id.substr(run.size() + 1));
    EXPECT_GE(seq, 9u) << e.data;
  }
  // The reasoning of seq 10, RiskAnalyst's result of seq 13, the answer.
  EXPECT_THAT(Types(rest),
              ::testing::IsSupersetOf({"reasoning-start", "data-result",
                                       "text-delta", "finish", "[DONE]"}));
  // A cursor before the end gets the rest; at the end, 204.
  SseResponse last = Reconnect("chat-3", run + ":16");
  ASSERT_EQ(last.status, 200);
  EXPECT_THAT(Types(last), ::testing::Contains("text-delta"));
  EXPECT_EQ(Reconnect("chat-3", run + ":17").status, 204);
}

TEST_F(AiSdkHandlersTest, ARunTheOrchestratorNoLongerHoldsIsAGapStream) {
  fake_.SetScript(
      Script(FirstOf(3), grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone")));
  fake_.SetAttachScript(
      Script({}, grpc::Status(grpc::StatusCode::NOT_FOUND, "no such run")));
  StartGateway();
  ASSERT_EQ(Post(Body("chat-4")).status, 200);
  SseResponse gap = Reconnect("chat-4");
  ASSERT_EQ(gap.status, 200) << gap.raw;
  EXPECT_THAT(Types(gap),
              ::testing::ElementsAre("start", "start-step", "error",
                                     "finish-step", "finish", "[DONE]"));
  EXPECT_TRUE(absl::StartsWith(
      gap.events[2].json["errorText"].get<std::string>(), "gap: "));
  EXPECT_EQ(gap.events[4].json["finishReason"], "error");
  EXPECT_EQ(Reconnect("chat-4").status, 204);
}

TEST_F(AiSdkHandlersTest, ARegenerateIsANewRunAndTheChatFollowsIt) {
  fake_.SetScript(Script(dialects::testing::TwoSpecialistRun()));
  fake_.SetAttachScript(Script(dialects::testing::TwoSpecialistRun()));
  StartGateway();
  SseResponse first = Post(Body("chat-6"));
  ASSERT_EQ(first.status, 200) << first.raw;
  nlohmann::json regenerate = nlohmann::json::parse(Body("chat-6"));
  regenerate["trigger"] = "regenerate-message";
  regenerate["messageId"] = "msg_old";
  fake_.SetScript(
      Script(FirstOf(4), grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone")));
  SseResponse second = Post(regenerate.dump());
  ASSERT_EQ(second.status, 200) << second.raw;
  const std::string run = second.Header("X-Request-Id");
  EXPECT_NE(run, first.Header("X-Request-Id"));
  ASSERT_TRUE(fake_.WaitForCalls(2, absl::Seconds(5)));
  EXPECT_EQ(fake_.calls()[1].request.message(), "Assess ACC-1042");
  // The chat's run is the new one, cut before its end: replayed.
  SseResponse replay = Reconnect("chat-6");
  ASSERT_EQ(replay.status, 200) << replay.raw;
  ASSERT_TRUE(fake_.WaitForAttachCalls(1, absl::Seconds(5)));
  EXPECT_EQ(fake_.attach_calls()[0].attach_request.request_id(), run);
}

TEST_F(AiSdkHandlersTest, ARefusedRunIsNotTheChatsRun) {
  fake_.SetScript(Script({}, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "unknown specialist")));
  StartGateway();
  SseResponse refused = Post(Body("chat-5"));
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_EQ(Reconnect("chat-5").status, 204);
  EXPECT_TRUE(fake_.attach_calls().empty());
}

TEST_F(AiSdkHandlersTest, BadRequestsAre400Json) {
  StartGateway();
  for (const std::string& body :
       {std::string("{"), std::string(R"({"id":"c","messages":[]})"),
        Body("a b"), Body("c", "")}) {
    SseResponse r = Post(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(nlohmann::json::parse(r.raw, nullptr, false).value("error", ""),
              "invalid_argument")
        << r.raw;
  }
  EXPECT_EQ(Reconnect("a%20b").status, 400);
  EXPECT_EQ(Reconnect("..").status, 400);
  EXPECT_EQ(Reconnect("c", "not-an-id").status, 400);
  EXPECT_TRUE(fake_.calls().empty());
}

}  // namespace
}  // namespace agentstream::gateway
