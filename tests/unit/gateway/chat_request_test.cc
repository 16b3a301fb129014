#include "gateway/chat_request.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::gateway {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Params = std::multimap<std::string, std::string>;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
constexpr auto kTooLarge = absl::StatusCode::kOutOfRange;

TEST(ParseChatQueryTest, MessageOnly) {
  auto r = ParseChatQuery({{"message", "Assess ACC-1042"}});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->message, "Assess ACC-1042");
  EXPECT_TRUE(r->specialists.empty());
  EXPECT_EQ(r->options, nlohmann::json::object());
  EXPECT_EQ(r->format.heartbeat, HeartbeatStyle::kComment);
}

TEST(ParseChatQueryTest, AllParameters) {
  auto r = ParseChatQuery({{"message", "hi"},
                           {"specialists", " DataAnalyst, RiskAnalyst ,,"},
                           {"specialists", "Synthetic,DataAnalyst"},
                           {"options", R"({"count": 3, "nested": {"a": [1]}})"},
                           {"heartbeat", "event"}});
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->specialists,
              ElementsAre("DataAnalyst", "RiskAnalyst", "Synthetic"));
  EXPECT_EQ(r->options["count"], 3);
  EXPECT_EQ(r->format.heartbeat, HeartbeatStyle::kEvent);
}

TEST(ParseChatQueryTest, BadInputMatrix) {
  struct Case {
    Params params;
    absl::StatusCode code;
    const char* message_part;
  };
  const std::vector<Case> cases = {
      {{}, kInvalid, "message is required"},
      {{{"message", ""}}, kInvalid, "message"},
      {{{"message", "  \t\n "}}, kInvalid, "message"},
      {{{"message", std::string(kMaxGetMessageBytes + 1, 'a')}},
       kTooLarge,
       "16384"},
      {{{"message", "bad \xc3\x28 utf8"}}, kInvalid, "UTF-8"},
      {{{"message", "ok"}, {"options", "{not json"}}, kInvalid, "JSON"},
      {{{"message", "ok"}, {"options", "[1,2]"}}, kInvalid, "object"},
      {{{"message", "ok"}, {"options", "3"}}, kInvalid, "object"},
      {{{"message", "ok"},
        {"options", std::string(40, '[') + std::string(40, ']')}},
       kInvalid,
       "nested"},
      {{{"message", "ok"}, {"heartbeat", "loud"}}, kInvalid, "heartbeat"},
      {{{"message", "ok"}, {"specialists", std::string(200, 'x')}},
       kInvalid,
       "specialist"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseChatQuery(c.params),
                StatusIs(c.code, HasSubstr(c.message_part)))
        << ::testing::PrintToString(c.params);
  }
}

TEST(ParseChatQueryTest, MessageAtTheLimitIsAccepted) {
  EXPECT_THAT(
      ParseChatQuery({{"message", std::string(kMaxGetMessageBytes, 'a')}}),
      IsOk());
}

TEST(ParseChatQueryTest, UnicodeMessage) {
  auto r = ParseChatQuery({{"message", "Prüfe 账户 🚀"}});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->message, "Prüfe 账户 🚀");
}

TEST(ParseChatBodyTest, FullBody) {
  auto r = ParseChatBody(
      R"({"message":"hi","specialists":["RiskAnalyst"],"options":{"n":1},)"
      R"("heartbeat":"event","unknown":true})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->message, "hi");
  EXPECT_THAT(r->specialists, ElementsAre("RiskAnalyst"));
  EXPECT_EQ(r->options["n"], 1);
  EXPECT_EQ(r->format.heartbeat, HeartbeatStyle::kEvent);
}

TEST(ParseChatBodyTest, NullsMeanAbsent) {
  auto r = ParseChatBody(
      R"({"message":"hi","specialists":null,"options":null,"heartbeat":null})");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->specialists.empty());
}

TEST(ParseChatBodyTest, LongMessageAllowedUpToTheBodyLimit) {
  const std::string message(100 * 1024, 'a');
  EXPECT_THAT(ParseChatBody(R"({"message":")" + message + "\"}"), IsOk());
}

TEST(ParseChatBodyTest, BadInputMatrix) {
  struct Case {
    std::string body;
    absl::StatusCode code;
    const char* message_part;
  };
  const std::vector<Case> cases = {
      {"", kInvalid, "JSON"},
      {"{bad", kInvalid, "JSON"},
      {"[1]", kInvalid, "object"},
      {"\"hi\"", kInvalid, "object"},
      {"{}", kInvalid, "message is required"},
      {R"({"message":null})", kInvalid, "message is required"},
      {R"({"message":""})", kInvalid, "message"},
      {R"({"message":42})", kInvalid, "message must be a string"},
      {R"({"message":["a"]})", kInvalid, "message must be a string"},
      {R"({"message":"a","specialists":"RiskAnalyst"})", kInvalid,
       "specialists must be an array"},
      {R"({"message":"a","specialists":[1]})", kInvalid,
       "specialists must be an array"},
      {R"({"message":"a","options":[1]})", kInvalid, "options must be"},
      {R"({"message":"a","options":"x"})", kInvalid, "options must be"},
      {R"({"message":"a","heartbeat":1})", kInvalid, "heartbeat"},
      {R"({"message":"a","heartbeat":"x"})", kInvalid, "heartbeat"},
      {R"({"message":"bad \xc3\x28"})", kInvalid, "JSON"},
      {R"({"message":"a","options":)" + std::string(100000, '[') +
           std::string(100000, ']') + "}",
       kInvalid, "nested"},
      {std::string(kMaxPostBodyBytes + 1, ' '), kTooLarge, "262144"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseChatBody(c.body),
                StatusIs(c.code, HasSubstr(c.message_part)))
        << c.body.substr(0, 80);
  }
}

TEST(ParseChatBodyTest, TooManySpecialists) {
  std::string list;
  for (size_t i = 0; i <= kMaxSpecialists; ++i) {
    if (i > 0) list += ",";
    list += "\"S" + std::to_string(i) + "\"";
  }
  EXPECT_THAT(ParseChatBody(R"({"message":"a","specialists":[)" + list + "]}"),
              StatusIs(kInvalid, HasSubstr("at most")));
}

// Found by tests/fuzz/chat_request_fuzz.cc: nlohmann::json stops at a NUL
// byte, so that a body with anything after one parsed as the JSON before it.
TEST(ParseChatBodyTest, NulByteIsNotJson) {
  using std::string_literals::operator""s;
  EXPECT_THAT(ParseChatBody("{\"message\":\"hi\"}\0{\"message\":\"x\"}"s),
              StatusIs(kInvalid, HasSubstr("not valid JSON")));
  EXPECT_THAT(ParseChatBody("{\"message\":\"hi\"}\0"s),
              StatusIs(kInvalid, HasSubstr("not valid JSON")));
  EXPECT_THAT(ParseChatQuery({{"message", "hi"}, {"options", "{}\0[[["s}}),
              StatusIs(kInvalid, HasSubstr("not valid JSON")));
  // An escaped NUL inside a string is JSON.
  EXPECT_THAT(ParseChatBody(R"({"message":"a\u0000b"})"), IsOk());
}

TEST(Utf8Test, Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("Grüße 你好 🚀"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // Overlong '/'.
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // A surrogate.
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // Past U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("\xe4\xbd"));          // Truncated.
}

TEST(JsonNestingDepthTest, CountsOutsideStrings) {
  EXPECT_EQ(JsonNestingDepth("1"), 0);
  EXPECT_EQ(JsonNestingDepth("{\"a\":[1,{\"b\":2}]}"), 3);
  EXPECT_EQ(JsonNestingDepth("{\"a\":\"[[[[\\\"[[\"}"), 1);
}

TEST(DisconnectPolicyTest, QueryAndBody) {
  using agentstream::v1::DISCONNECT_POLICY_CANCEL;
  using agentstream::v1::DISCONNECT_POLICY_CONTINUE;
  using agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED;
  EXPECT_EQ(ParseChatQuery({{"message", "hi"}})->on_disconnect,
            DISCONNECT_POLICY_UNSPECIFIED);
  EXPECT_EQ(ParseChatQuery({{"message", "hi"}, {"on_disconnect", "grace"}})
                ->on_disconnect,
            DISCONNECT_POLICY_UNSPECIFIED);
  EXPECT_EQ(ParseChatQuery({{"message", "hi"}, {"on_disconnect", "cancel"}})
                ->on_disconnect,
            DISCONNECT_POLICY_CANCEL);
  EXPECT_EQ(ParseChatQuery({{"message", "hi"}, {"on_disconnect", "continue"}})
                ->on_disconnect,
            DISCONNECT_POLICY_CONTINUE);
  EXPECT_EQ(ParseChatBody(R"({"message":"hi","on_disconnect":"continue"})")
                ->on_disconnect,
            DISCONNECT_POLICY_CONTINUE);
  EXPECT_EQ(
      ParseChatBody(R"({"message":"hi","on_disconnect":null})")->on_disconnect,
      DISCONNECT_POLICY_UNSPECIFIED);
  EXPECT_THAT(ParseChatQuery({{"message", "hi"}, {"on_disconnect", "Cancel"}}),
              StatusIs(kInvalid, HasSubstr("on_disconnect")));
  EXPECT_THAT(ParseChatBody(R"({"message":"hi","on_disconnect":"never"})"),
              StatusIs(kInvalid, HasSubstr("on_disconnect")));
  EXPECT_THAT(ParseChatBody(R"({"message":"hi","on_disconnect":1})"),
              StatusIs(kInvalid, HasSubstr("on_disconnect must be a string")));
}

TEST(ChatRequestTypesTest, QueryAndBodyNameTheTypes) {
  auto get = ParseChatQuery({{"message", "q"}, {"types", "progress,complete"}});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_THAT(get->format.types.Names(), ElementsAre("progress", "complete"));
  auto absent = ParseChatQuery({{"message", "q"}});
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->format.types.all());
  auto array = ParseChatBody(R"({"message":"q","types":["thinking"]})");
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_THAT(array->format.types.Names(), ElementsAre("thinking"));
  auto text = ParseChatBody(R"({"message":"q","types":"thinking,progress"})");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(text->format.types.Names(), ElementsAre("progress", "thinking"));
}

TEST(ChatRequestTypesTest, BadTypesAreRefused) {
  auto unknown = ParseChatQuery({{"message", "q"}, {"types", "progress,nope"}});
  EXPECT_THAT(unknown, StatusIs(kInvalid));
  EXPECT_THAT(unknown.status().message(), HasSubstr("nope"));
  EXPECT_THAT(ParseChatBody(R"({"message":"q","types":[1]})"),
              StatusIs(kInvalid));
  EXPECT_THAT(ParseChatBody(R"({"message":"q","types":{}})"),
              StatusIs(kInvalid));
  EXPECT_THAT(ParseChatBody(R"({"message":"q","types":[]})"),
              StatusIs(kInvalid));
}

TEST(ParseHeartbeatQueryTest, AloneWithoutAMessage) {
  EXPECT_EQ(*ParseHeartbeatQuery({}), HeartbeatStyle::kComment);
  EXPECT_EQ(*ParseHeartbeatQuery({{"heartbeat", "event"}}),
            HeartbeatStyle::kEvent);
  EXPECT_THAT(ParseHeartbeatQuery({{"heartbeat", "loud"}}), StatusIs(kInvalid));
}

}  // namespace
}  // namespace agentstream::gateway
