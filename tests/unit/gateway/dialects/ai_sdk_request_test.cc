#include "gateway/dialects/ai_sdk_request.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::dialects {
namespace {

using nlohmann::json;

// What DefaultChatTransport.sendMessages POSTs (docs/PROTOCOLS.md).
json Body() {
  return json::parse(R"({
    "id": "chat-1",
    "messages": [
      {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "old"}]},
      {"id": "a1", "role": "assistant",
       "parts": [{"type": "text", "text": "an answer"}]},
      {"id": "u2", "role": "user",
       "parts": [{"type": "step-start"}, {"type": "text", "text": "Assess"},
                 {"type": "file", "url": "x", "mediaType": "text/plain"},
                 {"type": "text", "text": "ACC-1042"}]}],
    "trigger": "submit-message"})");
}

TEST(AiSdkRequestTest, TheLastUserMessageIsTheQuestion) {
  auto r = ParseAiSdkChatBody(Body().dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->chat_id, "chat-1");
  EXPECT_FALSE(r->regenerate);
  EXPECT_EQ(r->chat.message, "Assess\nACC-1042");
  EXPECT_TRUE(r->chat.specialists.empty());
}

TEST(AiSdkRequestTest, ExtraBodyFieldsAreOurs) {
  json body = Body();
  body["specialists"] = {"Synthetic"};
  body["options"] = {{"count", 3}};
  body["on_disconnect"] = "cancel";
  body["trigger"] = "regenerate-message";
  body["messageId"] = "a2";
  body["types"] = "progress";  // Our wire's stream format: not read here.
  auto r = ParseAiSdkChatBody(body.dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->regenerate);
  EXPECT_EQ(r->chat.specialists, std::vector<std::string>{"Synthetic"});
  EXPECT_EQ(r->chat.options, json({{"count", 3}}));
  EXPECT_EQ(r->chat.on_disconnect, agentstream::v1::DISCONNECT_POLICY_CANCEL);
}

TEST(AiSdkRequestTest, BadBodiesAreInvalidArguments) {
  std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      R"({"messages": []})",
  };
  auto with = [](auto edit) {
    json b = Body();
    edit(b);
    return b.dump();
  };
  bad.push_back(with([](json& b) { b["id"] = 7; }));
  bad.push_back(with([](json& b) { b["id"] = ""; }));
  bad.push_back(with([](json& b) { b["id"] = "a/b"; }));
  bad.push_back(with([](json& b) { b["id"] = ".."; }));
  bad.push_back(with([](json& b) { b["id"] = std::string(129, 'a'); }));
  bad.push_back(with([](json& b) { b.erase("messages"); }));
  bad.push_back(with([](json& b) { b["messages"] = json::array(); }));
  bad.push_back(with([](json& b) { b["messages"] = "hi"; }));
  bad.push_back(
      with([](json& b) { b["messages"][2]["parts"] = json::array(); }));
  bad.push_back(with([](json& b) { b["messages"][2].erase("role"); }));
  bad.push_back(
      with([](json& b) { b["messages"][2]["parts"][1]["text"] = 3; }));
  bad.push_back(with([](json& b) {
    b["messages"] = json::array({b["messages"][1]});  // No user message.
  }));
  bad.push_back(with([](json& b) { b["trigger"] = "resume"; }));
  bad.push_back(with([](json& b) { b["specialists"] = "DataAnalyst"; }));
  bad.push_back(with([](json& b) { b["options"] = json::array(); }));
  bad.push_back(with([](json& b) { b["on_disconnect"] = "never"; }));
  for (const std::string& body : bad) {
    auto r = ParseAiSdkChatBody(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << body << " -> " << r.status();
  }
}

TEST(AiSdkRequestTest, OversizedBodyIsOutOfRange) {
  json body = Body();
  body["messages"][2]["parts"][1]["text"] =
      std::string(kMaxPostBodyBytes + 1, 'a');
  auto r = ParseAiSdkChatBody(body.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(AiSdkRequestTest, ChatIds) {
  EXPECT_TRUE(IsValidChatId("chat-1"));
  EXPECT_TRUE(IsValidChatId("AbC_09.x"));
  EXPECT_TRUE(IsValidChatId(std::string(kMaxChatIdBytes, 'z')));
  EXPECT_FALSE(IsValidChatId(std::string(kMaxChatIdBytes + 1, 'z')));
  EXPECT_FALSE(IsValidChatId(""));
  EXPECT_FALSE(IsValidChatId("."));
  EXPECT_FALSE(IsValidChatId(".."));
  EXPECT_FALSE(IsValidChatId("a b"));
  EXPECT_FALSE(IsValidChatId("a%2F"));
  EXPECT_FALSE(IsValidChatId("é"));
}

}  // namespace
}  // namespace agentstream::gateway::dialects
