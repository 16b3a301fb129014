#include "gateway/dialects/a2a_rpc.h"

#include <string>
#include <variant>

#include "common/clock.h"
#include "gateway/chat_request.h"
#include "gateway/dialects/a2a_contexts.h"
#include "gtest/gtest.h"

namespace agentstream::gateway::dialects {
namespace {

A2aError ErrorOf(std::string_view body) {
  auto parsed = ParseA2aRequest(body);
  EXPECT_TRUE(std::holds_alternative<A2aError>(parsed)) << body;
  return std::holds_alternative<A2aError>(parsed) ? std::get<A2aError>(parsed)
                                                  : A2aError{};
}

A2aRequest RequestOf(std::string_view body) {
  auto parsed = ParseA2aRequest(body);
  EXPECT_TRUE(std::holds_alternative<A2aRequest>(parsed)) << body;
  return std::holds_alternative<A2aRequest>(parsed)
             ? std::get<A2aRequest>(parsed)
             : A2aRequest{};
}

TEST(A2aRpcTest, MethodsAndTheirVersions) {
  struct Case {
    const char* name;
    A2aMethod method;
    A2aVersion version;
  } cases[] = {
      {"SendStreamingMessage", A2aMethod::kSendStreamingMessage,
       A2aVersion::kV1},
      {"message/stream", A2aMethod::kSendStreamingMessage, A2aVersion::kV03},
      {"SendMessage", A2aMethod::kSendMessage, A2aVersion::kV1},
      {"message/send", A2aMethod::kSendMessage, A2aVersion::kV03},
      {"SubscribeToTask", A2aMethod::kSubscribeToTask, A2aVersion::kV1},
      {"tasks/resubscribe", A2aMethod::kSubscribeToTask, A2aVersion::kV03},
      {"GetTask", A2aMethod::kGetTask, A2aVersion::kV1},
      {"tasks/get", A2aMethod::kGetTask, A2aVersion::kV03},
      {"CancelTask", A2aMethod::kCancelTask, A2aVersion::kV1},
      {"tasks/cancel", A2aMethod::kCancelTask, A2aVersion::kV03},
  };
  for (const Case& c : cases) {
    const A2aRequest r =
        RequestOf(std::string(R"({"jsonrpc":"2.0","id":4,"method":")") +
                  c.name + R"(","params":{"id":"run_x"}})");
    EXPECT_EQ(r.method, c.method) << c.name;
    EXPECT_EQ(r.version, c.version) << c.name;
    EXPECT_EQ(r.id, 4);
    EXPECT_EQ(r.params["id"], "run_x");
  }
  EXPECT_EQ(RequestOf(R"({"jsonrpc":"2.0","id":"s","method":"GetTask"})").id,
            "s");
}

TEST(A2aRpcTest, Errors) {
  EXPECT_EQ(ErrorOf("{nope").code, kJsonRpcParseError);
  EXPECT_EQ(ErrorOf("").code, kJsonRpcParseError);
  const A2aError batch =
      ErrorOf(R"([{"jsonrpc":"2.0","id":1,"method":"GetTask"}])");
  EXPECT_EQ(batch.code, kJsonRpcInvalidRequest);
  EXPECT_NE(batch.message.find("batch"), std::string::npos);
  EXPECT_EQ(ErrorOf(R"({"id":1,"method":"GetTask"})").code,
            kJsonRpcInvalidRequest);
  EXPECT_EQ(ErrorOf(R"({"jsonrpc":"1.0","id":1,"method":"GetTask"})").code,
            kJsonRpcInvalidRequest);
  EXPECT_EQ(ErrorOf(R"({"jsonrpc":"2.0","id":1})").code,
            kJsonRpcInvalidRequest);
  EXPECT_EQ(ErrorOf(R"({"jsonrpc":"2.0","id":[1],"method":"GetTask"})").code,
            kJsonRpcInvalidRequest);
  // A notification (no id) is not served.
  const A2aError notification =
      ErrorOf(R"({"jsonrpc":"2.0","method":"GetTask"})");
  EXPECT_EQ(notification.code, kJsonRpcInvalidRequest);
  EXPECT_TRUE(notification.id.is_null());
  const A2aError unknown =
      ErrorOf(R"({"jsonrpc":"2.0","id":9,"method":"tasks/list"})");
  EXPECT_EQ(unknown.code, kJsonRpcMethodNotFound);
  EXPECT_EQ(unknown.id, 9);
  EXPECT_EQ(
      ErrorOf(R"({"jsonrpc":"2.0","id":9,"method":"GetTask","params":[1]})")
          .code,
      kJsonRpcInvalidParams);
  // Too deep to be read safely.
  EXPECT_EQ(ErrorOf(std::string(100, '[') + std::string(100, ']')).code,
            kJsonRpcInvalidRequest);

  const Json response = A2aErrorResponse(unknown);
  EXPECT_EQ(response["jsonrpc"], "2.0");
  EXPECT_EQ(response["id"], 9);
  EXPECT_EQ(response["error"]["code"], -32601);
}

TEST(A2aRpcTest, TaskIds) {
  auto id = ParseA2aTaskId(
      RequestOf(R"({"jsonrpc":"2.0","id":1,"method":"GetTask",)"
                R"("params":{"id":"run_a","historyLength":3}})"));
  ASSERT_TRUE(std::holds_alternative<std::string>(id));
  EXPECT_EQ(std::get<std::string>(id), "run_a");
  auto missing = ParseA2aTaskId(
      RequestOf(R"({"jsonrpc":"2.0","id":1,"method":"GetTask"})"));
  ASSERT_TRUE(std::holds_alternative<A2aError>(missing));
  EXPECT_EQ(std::get<A2aError>(missing).code, kJsonRpcInvalidParams);
  EXPECT_EQ(std::get<A2aError>(missing).id, 1);
}

A2aRequest Stream(const std::string& params) {
  return RequestOf(R"({"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage",)"
                   R"("params":)" +
                   params + "}");
}

TEST(A2aRpcTest, MessagesInBothVersions) {
  auto v1 = ParseA2aMessage(Stream(
      R"({"message":{"messageId":"m","role":"ROLE_USER","contextId":"c-1",)"
      R"("parts":[{"text":"Assess"},{"text":"ACC-1042"}],)"
      R"("metadata":{"agentstream":{"specialists":["Synthetic"],)"
      R"("options":{"count":3},"on_disconnect":"cancel"}}},"configuration":{}})"));
  ASSERT_TRUE(std::holds_alternative<A2aMessage>(v1));
  const A2aMessage& m = std::get<A2aMessage>(v1);
  EXPECT_EQ(m.context_id, "c-1");
  EXPECT_EQ(m.chat["message"], "Assess\n\nACC-1042");
  // Our chat request reads it, with our limits.
  auto chat = ChatRequestFromJson(nlohmann::json(m.chat));
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(chat->specialists, std::vector<std::string>{"Synthetic"});
  EXPECT_EQ(chat->options["count"], 3);
  EXPECT_EQ(chat->on_disconnect, agentstream::v1::DISCONNECT_POLICY_CANCEL);

  auto v03 = ParseA2aMessage(
      Stream(R"({"message":{"kind":"message","messageId":"m","role":"user",)"
             R"("parts":[{"kind":"text","text":"hi"}]}})"));
  ASSERT_TRUE(std::holds_alternative<A2aMessage>(v03));
  EXPECT_EQ(std::get<A2aMessage>(v03).chat["message"], "hi");
  EXPECT_TRUE(std::get<A2aMessage>(v03).context_id.empty());
}

TEST(A2aRpcTest, BadMessages) {
  auto code = [](const std::string& params) {
    auto parsed = ParseA2aMessage(Stream(params));
    EXPECT_TRUE(std::holds_alternative<A2aError>(parsed)) << params;
    return std::holds_alternative<A2aError>(parsed)
               ? std::get<A2aError>(parsed).code
               : 0;
  };
  EXPECT_EQ(code(R"({})"), kJsonRpcInvalidParams);
  EXPECT_EQ(code(R"({"message":{"parts":[]}})"), kJsonRpcInvalidParams);
  EXPECT_EQ(code(R"({"message":{"role":"ROLE_AGENT","parts":[{"text":"x"}]}})"),
            kJsonRpcInvalidParams);
  EXPECT_EQ(code(R"({"message":{"parts":[{"data":{"a":1}}]}})"),
            kA2aContentTypeNotSupported);
  EXPECT_EQ(code(R"({"message":{"taskId":"run_a","parts":[{"text":"x"}]}})"),
            kA2aUnsupportedOperation);
  EXPECT_EQ(code(R"({"message":{"contextId":"","parts":[{"text":"x"}]}})"),
            kJsonRpcInvalidParams);
  EXPECT_EQ(code(R"({"message":{"contextId":")" + std::string(300, 'c') +
                 R"(","parts":[{"text":"x"}]}})"),
            kJsonRpcInvalidParams);
  EXPECT_EQ(code(R"({"message":{"parts":[{"text":"x"}],)"
                 R"("metadata":{"agentstream":[1]}}})"),
            kJsonRpcInvalidParams);
}

TEST(A2aRpcTest, AgentCardFromTheSpecialists) {
  agentstream::v1::ListSpecialistsResponse list;
  auto* a = list.add_specialists()->mutable_card();
  a->set_name("DataAnalyst");
  a->set_display_name("Data Analyst");
  a->set_description("Runs queries");
  a->add_skills("sql");
  a->add_keywords("transactions");
  a->add_keywords("sql");
  auto* s = list.add_specialists()->mutable_card();
  s->set_name("Synthetic");
  s->set_description("Load");
  s->set_explicit_only(true);

  const Json card = A2aAgentCard(list, "http://gw:8080", /*bearer=*/false);
  EXPECT_EQ(card["name"], "agentstream");
  EXPECT_EQ(card["supportedInterfaces"][0]["url"], "http://gw:8080/api/a2a");
  EXPECT_EQ(card["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
  EXPECT_EQ(card["supportedInterfaces"][0]["protocolVersion"], "1.0");
  EXPECT_EQ(card["url"], "http://gw:8080/api/a2a");
  EXPECT_EQ(card["preferredTransport"], "JSONRPC");
  EXPECT_EQ(card["capabilities"]["streaming"], true);
  ASSERT_EQ(card["skills"].size(), 2u);
  EXPECT_EQ(card["skills"][0]["id"], "DataAnalyst");
  EXPECT_EQ(card["skills"][0]["name"], "Data Analyst");
  EXPECT_EQ(card["skills"][0]["tags"],
            Json::parse(R"(["sql","transactions"])"));
  EXPECT_EQ(card["skills"][1]["name"], "Synthetic");
  EXPECT_NE(card["skills"][1]["description"].get<std::string>().find(
                "metadata.agentstream.specialists"),
            std::string::npos);
  EXPECT_FALSE(card.contains("securitySchemes"));

  const Json secured = A2aAgentCard(list, "https://x", /*bearer=*/true);
  EXPECT_EQ(secured["securitySchemes"]["bearer"]["scheme"], "bearer");
  EXPECT_EQ(secured["security"][0].contains("bearer"), true);
}

TEST(A2aRpcTest, SafeHosts) {
  EXPECT_TRUE(IsSafeHost("127.0.0.1:8080"));
  EXPECT_TRUE(IsSafeHost("[::1]:80"));
  EXPECT_TRUE(IsSafeHost("agents.example.com"));
  EXPECT_FALSE(IsSafeHost(""));
  EXPECT_FALSE(IsSafeHost("evil.com/path"));
  EXPECT_FALSE(IsSafeHost("a b"));
  EXPECT_FALSE(IsSafeHost("x\"y"));
}

TEST(A2aContextsTest, RemembersBoundedAndExpires) {
  FakeClock clock;
  A2aContexts contexts(&clock, {.max_entries = 2, .ttl = absl::Minutes(1)});
  EXPECT_EQ(contexts.Get("run_a"), "run_a");  // Unknown: the run id.
  contexts.Put("run_a", "ctx-a");
  contexts.Put("run_b", "run_b");  // The default: not kept.
  EXPECT_EQ(contexts.size(), 1u);
  EXPECT_EQ(contexts.Get("run_a"), "ctx-a");
  contexts.Put("run_c", "ctx-c");
  contexts.Put("run_d", "ctx-d");  // Over the bound: the oldest goes.
  EXPECT_EQ(contexts.size(), 2u);
  EXPECT_EQ(contexts.Get("run_a"), "run_a");
  EXPECT_EQ(contexts.Get("run_d"), "ctx-d");
  clock.Advance(absl::Minutes(2));
  EXPECT_EQ(contexts.Get("run_c"), "run_c");
  contexts.Put("run_e", "ctx-e");  // Drops the expired ones.
  EXPECT_EQ(contexts.size(), 1u);
}

}  // namespace
}  // namespace agentstream::gateway::dialects
