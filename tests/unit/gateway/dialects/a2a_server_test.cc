// A2A through the real gateway (in-process, real HTTP and gRPC) against the
// fake orchestrator: the card, JSON-RPC errors on the wire, a streamed task,
// GetTask, CancelTask and a resubscribe that reads the log and attaches
// after it.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/auth/token_file.h"
#include "gateway/dialects/a2a_rpc.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/gateway_fixture.h"

namespace agentstream::gateway::testing {
namespace {

using dialects::Json;

class A2aServerTest : public GatewayTest {
 protected:
  // POST /api/a2a with `body`: the status and the JSON answer.
  std::pair<int, Json> Rpc(const std::string& body) {
    httplib::Client client("127.0.0.1", gateway_->port());
    client.set_read_timeout(10, 0);
    auto r = client.Post("/api/a2a", body, "application/json");
    if (!r) return {0, nullptr};
    return {r->status, Json::parse(r->body, nullptr, false)};
  }
  static std::string Call(const std::string& method, const std::string& params,
                          int id = 1) {
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":")" +
           method + R"(","params":)" + params + "}";
  }
  SseResponse RpcStream(const std::string& body) {
    return Stream("/api/a2a", {{"Accept", "text/event-stream"}}, "POST", body);
  }
};

TEST_F(A2aServerTest, AgentCardNamesTheEndpointAndTheSpecialists) {
  StartGateway();
  auto r = Get("/.well-known/agent-card.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const Json card = Json::parse(r->body);
  const std::string url =
      "http://127.0.0.1:" + std::to_string(gateway_->port()) + "/api/a2a";
  EXPECT_EQ(card["supportedInterfaces"][0]["url"], url);
  EXPECT_EQ(card["url"], url);
  ASSERT_EQ(card["skills"].size(), 2u);
  EXPECT_EQ(card["skills"][0]["id"], "DataAnalyst");
  EXPECT_EQ(card["skills"][0]["name"], "DataAnalyst (fake)");
  EXPECT_EQ(card["skills"][0]["tags"], Json::parse(R"(["risk"])"));
}

TEST_F(A2aServerTest, PublicUrlWins) {
  GatewayOptions options;
  options.public_url = "https://agents.example.com/";
  StartGateway(options);
  auto r = Get("/.well-known/agent-card.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(Json::parse(r->body)["supportedInterfaces"][0]["url"],
            "https://agents.example.com/api/a2a");
}

TEST_F(A2aServerTest, JsonRpcErrorsOnTheWire) {
  StartGateway();
  auto [status, body] = Rpc("{nope");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body["error"]["code"], dialects::kJsonRpcParseError);
  EXPECT_TRUE(body["id"].is_null());
  std::tie(status, body) = Rpc(Call("tasks/list", "{}", 3));
  EXPECT_EQ(body["error"]["code"], dialects::kJsonRpcMethodNotFound);
  EXPECT_EQ(body["id"], 3);
  std::tie(status, body) = Rpc(Call("GetTask", R"({"id":"unknown_1"})"));
  EXPECT_EQ(body["error"]["code"], dialects::kA2aTaskNotFound);
  EXPECT_EQ(body["error"]["message"], "task not found: unknown_1");
  // Not even an id a run can have: as unknown.
  std::tie(status, body) = Rpc(Call("GetTask", R"({"id":"no such/id"})"));
  EXPECT_EQ(body["error"]["code"], dialects::kA2aTaskNotFound);
  std::tie(status, body) = Rpc(Call("CancelTask", R"({"id":"ended_1"})"));
  EXPECT_EQ(body["error"]["code"], dialects::kA2aTaskNotCancelable);
  std::tie(status, body) = Rpc(
      Call("SendStreamingMessage", R"({"message":{"parts":[{"text":""}]}})"));
  EXPECT_EQ(body["error"]["code"], dialects::kJsonRpcInvalidParams);
  std::tie(status, body) = Rpc(Call(
      "SendMessage", R"({"message":{"parts":[{"text":"hi"}],"taskId":"t"}})"));
  EXPECT_EQ(body["error"]["code"], dialects::kA2aUnsupportedOperation);
  EXPECT_TRUE(fake_.calls().empty());  // No run came of any of them.
}

TEST_F(A2aServerTest, StreamsATaskToCompleted) {
  fake_.SetScript(StandardScript(absl::Milliseconds(5)));
  StartGateway();
  const SseResponse r = RpcStream(Call(
      "SendStreamingMessage",
      R"({"message":{"messageId":"m","role":"ROLE_USER","contextId":"c-9",)"
      R"("parts":[{"text":"Assess ACC-1042"}],)"
      R"("metadata":{"agentstream":{"specialists":["DataAnalyst"]}}}})",
      11));
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_GE(r.events.size(), 3u) << r.raw;
  const Json first = Json::parse(r.events.front().data);
  EXPECT_EQ(first["id"], 11);
  const Json& task = first["result"]["task"];
  EXPECT_EQ(task["contextId"], "c-9");
  const std::string task_id = task["id"];
  EXPECT_EQ(r.Header("X-Request-Id"), task_id);
  const Json last = Json::parse(r.events.back().data);
  EXPECT_EQ(last["result"]["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED");
  bool answer = false;
  for (const auto& e : r.events) {
    const Json j = Json::parse(e.data);
    if (j["result"].contains("artifactUpdate") &&
        j["result"]["artifactUpdate"]["artifact"]["artifactId"] == "answer") {
      EXPECT_EQ(j["result"]["artifactUpdate"]["artifact"]["parts"][0]["text"],
                "all good — ✓");
      answer = true;
    }
  }
  EXPECT_TRUE(answer);
  ASSERT_EQ(fake_.calls().size(), 1u);
  EXPECT_EQ(fake_.calls()[0].request.message(), "Assess ACC-1042");
  EXPECT_EQ(fake_.calls()[0].request.specialists(0), "DataAnalyst");
  EXPECT_EQ(fake_.calls()[0].request.request_id(), task_id);

  // GetTask reads the run's log (replay_only) and keeps the contextId.
  auto [status, got] = Rpc(Call("GetTask", "{\"id\":\"" + task_id + "\"}"));
  EXPECT_EQ(got["result"]["contextId"], "c-9");
  EXPECT_EQ(got["result"]["status"]["state"], "TASK_STATE_COMPLETED");
  ASSERT_FALSE(fake_.attach_calls().empty());
  EXPECT_TRUE(fake_.attach_calls().back().attach_request.replay_only());
  EXPECT_EQ(fake_.attach_calls().back().attach_request.after_seq(), 0u);
}

TEST_F(A2aServerTest, SendMessageAnswersTheTaskAtOnceAndTheRunGoesOn) {
  fake_.SetScript(SlowScript(absl::Seconds(1), 5));
  StartGateway();
  auto [status, body] =
      Rpc(Call("message/send",
               R"({"message":{"kind":"message","messageId":"m","role":"user",)"
               R"("parts":[{"kind":"text","text":"hi"}]}})"));
  EXPECT_EQ(status, 200);
  const Json& task = body["result"];
  EXPECT_EQ(task["kind"], "task");
  EXPECT_EQ(task["status"]["state"], "working");
  EXPECT_EQ(task["contextId"], task["id"]);  // None given: the run id.
  ASSERT_EQ(fake_.calls().size(), 1u);
  EXPECT_EQ(fake_.calls()[0].request.request_id(), task["id"]);
  // Nobody follows it: it must not end for that.
  EXPECT_EQ(fake_.calls()[0].request.on_disconnect(),
            agentstream::v1::DISCONNECT_POLICY_CONTINUE);
  std::tie(status, body) =
      Rpc(Call("SendMessage", R"({"message":{"parts":[{"text":"hi"}]}})"));
  EXPECT_EQ(body["result"]["task"]["status"]["state"], "TASK_STATE_WORKING");
  // The gateway's call ends once the task is answered.
  const auto call = fake_.WaitForEnd(0, absl::Seconds(5));
  ASSERT_TRUE(call.has_value());
  EXPECT_TRUE(call->cancelled);
}

TEST_F(A2aServerTest, CancelTaskAnswersTheTaskCanceled) {
  fake_.SetAttachScript(OneUpdateThen(1, absl::ZeroDuration()));
  StartGateway();
  auto [status, body] = Rpc(Call("tasks/cancel", R"({"id":"run_live"})"));
  EXPECT_EQ(body["result"]["kind"], "task");
  EXPECT_EQ(body["result"]["status"]["state"], "canceled");
  EXPECT_EQ(fake_.cancel_calls(), std::vector<std::string>{"run_live"});
}

TEST_F(A2aServerTest, ResubscribeSendsTheStateThenWhatFollows) {
  // The log holds seq 1..2 when read; the attach after it plays 3..5.
  const RunScript whole = StandardScript(absl::Milliseconds(5));
  fake_.SetAttachScript([whole](const agentstream::v1::AttachRequest& a) {
    if (a.replay_only()) {
      RunScript head;
      head.steps = {whole.steps[0], whole.steps[1]};
      return head;
    }
    return After(whole, a.after_seq());
  });
  StartGateway();
  const SseResponse r =
      RpcStream(Call("SubscribeToTask", R"({"id":"run_resub"})"));
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(fake_.attach_calls().size(), 2u);
  EXPECT_TRUE(fake_.attach_calls()[0].attach_request.replay_only());
  EXPECT_FALSE(fake_.attach_calls()[1].attach_request.replay_only());
  EXPECT_EQ(fake_.attach_calls()[1].attach_request.after_seq(), 2u);
  ASSERT_GE(r.events.size(), 3u) << r.raw;
  const Json first = Json::parse(r.events.front().data);
  EXPECT_EQ(first["result"]["task"]["status"]["state"], "TASK_STATE_WORKING");
  EXPECT_EQ(r.events.front().id, "run_resub:2");
  // Nothing at or before seq 2 again; the run's end closes the stream.
  for (size_t i = 1; i + 1 < r.events.size(); ++i) {
    const std::string& id = r.events[i].id;
    EXPECT_GT(std::stoi(id.substr(id.find(':') + 1)), 2) << r.events[i].data;
  }
  const Json last = Json::parse(r.events.back().data);
  EXPECT_EQ(last["result"]["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED");
}

TEST_F(A2aServerTest, ResubscribeToAnEndedTaskIsItsTaskAndItsEnd) {
  StartGateway();  // The default attach plays the whole standard run.
  const SseResponse r =
      RpcStream(Call("tasks/resubscribe", R"({"id":"run_done"})"));
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.events.size(), 2u) << r.raw;
  EXPECT_EQ(Json::parse(r.events[0].data)["result"]["status"]["state"],
            "completed");
  const Json end = Json::parse(r.events[1].data)["result"];
  EXPECT_EQ(end["kind"], "status-update");
  EXPECT_EQ(end["final"], true);
  EXPECT_EQ(fake_.attach_calls().size(), 1u);  // The read only.
}

TEST_F(A2aServerTest, WithAuthTheCardIsOpenAndSaysBearerAndCallsNeedIt) {
  absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("a2a");
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<auth::NewToken> token = auth::MakeToken("alice", {});
  ASSERT_TRUE(token.ok());
  std::ofstream(dir->path() + "/tokens") << token->line << "\n";
  GatewayOptions options;
  options.auth.mode = auth::AuthMode::kToken;
  options.auth.token_file = dir->path() + "/tokens";
  StartGateway(options);
  auto card = Get("/.well-known/agent-card.json");
  ASSERT_TRUE(card);
  EXPECT_EQ(card->status, 200);
  EXPECT_EQ(Json::parse(card->body)["securitySchemes"]["bearer"]["scheme"],
            "bearer");
  httplib::Client client("127.0.0.1", gateway_->port());
  client.set_read_timeout(10, 0);
  const std::string get = Call("GetTask", R"({"id":"unknown_1"})");
  auto refused = client.Post("/api/a2a", get, "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto answered =
      client.Post("/api/a2a", {{"Authorization", "Bearer " + token->token}},
                  get, "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200);
  EXPECT_EQ(Json::parse(answered->body)["error"]["code"],
            dialects::kA2aTaskNotFound);
}

}  // namespace
}  // namespace agentstream::gateway::testing
