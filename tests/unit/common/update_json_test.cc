#include "common/update_json.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream {
namespace {

using agentstream::v1::Update;

TEST(UpdateJsonTest, ProgressIsFlatWithEnvelopeFields) {
  Update u;
  u.set_request_id("req_1");
  u.set_seq(7);
  u.set_emitted_at(1795000000123456789);
  u.set_specialist("DataAnalyst");
  u.mutable_progress()->set_progress(65);
  u.mutable_progress()->set_current_action("Processing historical data");
  const nlohmann::json j = UpdateToJson(u);
  EXPECT_EQ(j["type"], "progress");
  EXPECT_EQ(j["request_id"], "req_1");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["emitted_at_ns"], 1795000000123456789);
  EXPECT_EQ(j["specialist"], "DataAnalyst");
  EXPECT_EQ(j["progress"], 65);
  EXPECT_EQ(j["current_action"], "Processing historical data");
  EXPECT_FALSE(j.contains("instance"));
}

TEST(UpdateJsonTest, StructsRoundTripWithIntegersKept) {
  const nlohmann::json in = {{"sql", "SELECT 1"},
                             {"params", {"ACC-1042", 6, 2.5, true, nullptr}},
                             {"nested", {{"a", {{"b", "c"}}}}}};
  const google::protobuf::Struct s = JsonToStruct(in);
  EXPECT_EQ(StructToJson(s), in);
}

TEST(UpdateJsonTest, EnumsAreLowerCaseWords) {
  Update u;
  u.mutable_status()->set_status(agentstream::v1::RUN_STATUS_SYNTHESIZING);
  EXPECT_EQ(UpdateToJson(u)["status"], "synthesizing");
  u.mutable_complete()->set_outcome(agentstream::v1::OUTCOME_PARTIAL);
  EXPECT_EQ(UpdateToJson(u)["type"], "complete");
  EXPECT_EQ(UpdateToJson(u)["outcome"], "partial");
  u.mutable_timeout()->set_action(agentstream::v1::TIMEOUT_ACTION_CONTINUING);
  EXPECT_EQ(UpdateToJson(u)["action"], "continuing");
  u.mutable_specialist_complete()->set_outcome(
      agentstream::v1::OUTCOME_TIMED_OUT);
  EXPECT_EQ(UpdateToJson(u)["outcome"], "timed_out");
}

TEST(UpdateJsonTest, SynthesisListsAreArraysEvenWhenEmpty) {
  Update u;
  u.mutable_synthesis()->set_message("1 of 2 done");
  u.mutable_synthesis()->add_specialists_complete("DataAnalyst");
  const nlohmann::json j = UpdateToJson(u);
  EXPECT_EQ(j["specialists_complete"], nlohmann::json::array({"DataAnalyst"}));
  EXPECT_TRUE(j["specialists_pending"].is_array());
  EXPECT_TRUE(j["specialists_pending"].empty());
}

TEST(UpdateJsonTest, EveryKindHasItsTypeName) {
  Update u;
  EXPECT_EQ(UpdateType(u), "unknown");
  u.mutable_specialist_activated();
  EXPECT_EQ(UpdateType(u), "specialist_activated");
  u.mutable_thinking();
  EXPECT_EQ(UpdateType(u), "thinking");
  u.mutable_tool_call();
  EXPECT_EQ(UpdateType(u), "tool_call");
  u.mutable_partial_result();
  EXPECT_EQ(UpdateType(u), "partial_result");
  u.mutable_specialist_complete();
  EXPECT_EQ(UpdateType(u), "specialist_complete");
  u.mutable_error();
  EXPECT_EQ(UpdateType(u), "error");
  u.mutable_timeout();
  EXPECT_EQ(UpdateType(u), "timeout");
}

// The document path, dumped as the gateway dumped it before the direct
// encoder: the reference AppendUpdateJson must match byte for byte.
std::string DocumentText(const Update& u, const std::string& request_id) {
  nlohmann::ordered_json j = UpdateToJson(u);
  j["request_id"] = request_id;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string DirectText(const Update& u, const std::string& request_id) {
  std::string out = "prefix:";
  AppendUpdateJson(u, request_id, &out);
  EXPECT_EQ(out.rfind("prefix:", 0), 0u);
  return out.substr(7);
}

TEST(AppendUpdateJsonTest, MatchesTheDocumentForEveryKindAndAwkwardText) {
  const std::vector<std::string> texts = {
      "",
      "plain ascii",
      "quote \" backslash \\ slash / tab \t nl \n cr \r",
      std::string("nul \0 bell \x07 del \x7f",
                  sizeof("nul \0 bell \x07 del \x7f") - 1),
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",  // valid UTF-8
      "bad \xff\xfe utf8 \xc3",                     // invalid UTF-8
      "</script><script>alert(1)</script>",
  };
  google::protobuf::Struct nested;
  {
    auto& f = *nested.mutable_fields();
    f["zeta"].set_number_value(1.5);
    f["alpha"].set_number_value(42);
    f["Beta"].set_number_value(-0.0);
    f["big"].set_number_value(1e300);
    f["huge_int"].set_number_value(9.5e15);
    f["tiny"].set_number_value(1e-7);
    f["inf"].set_number_value(std::numeric_limits<double>::infinity());
    f["nan"].set_number_value(std::nan(""));
    f["t"].set_bool_value(true);
    f["n"].set_null_value(google::protobuf::NULL_VALUE);
    f["\xc3\xa9key \"q\""].set_string_value("v\n");
    auto* list = f["list"].mutable_list_value();
    list->add_values()->set_number_value(3);
    list->add_values()->set_string_value("bad \xff");
    list->add_values()->mutable_struct_value();
    list->add_values()->mutable_list_value();
    (*f["inner"].mutable_struct_value()->mutable_fields())["k"]
        .set_string_value("x");
    f["unset"];  // KIND_NOT_SET
  }
  std::vector<Update> updates;
  for (const std::string& t : texts) {
    Update base;
    base.set_request_id("producer's own id");
    base.set_seq(18446744073709551615ull);
    base.set_emitted_at(-5);
    base.set_specialist(t);
    base.set_instance(t);
    Update u = base;
    u.mutable_status()->set_status(agentstream::v1::RUN_STATUS_SYNTHESIZING);
    u.mutable_status()->set_message(t);
    updates.push_back(u);
    u = base;
    u.mutable_specialist_activated()->set_task(t);
    u.mutable_specialist_activated()->set_icon(t);
    u.mutable_specialist_activated()->set_display_name(t);
    updates.push_back(u);
    u = base;
    u.mutable_progress()->set_progress(-3);
    u.mutable_progress()->set_current_action(t);
    updates.push_back(u);
    u = base;
    u.mutable_thinking()->set_agent(t);
    u.mutable_thinking()->set_thought(t);
    u.mutable_thinking()->set_visible(true);
    updates.push_back(u);
    u = base;
    u.mutable_tool_call()->set_tool(t);
    *u.mutable_tool_call()->mutable_parameters() = nested;
    updates.push_back(u);
    u = base;
    *u.mutable_partial_result()->mutable_result() = nested;
    (*u.mutable_partial_result()->mutable_result()->mutable_fields())[t]
        .set_string_value(t);
    updates.push_back(u);
    u = base;
    u.mutable_synthesis()->set_message(t);
    u.mutable_synthesis()->add_specialists_complete(t);
    u.mutable_synthesis()->add_specialists_complete("B");
    updates.push_back(u);
    u = base;
    u.mutable_specialist_complete()->set_outcome(
        agentstream::v1::OUTCOME_TIMED_OUT);
    u.mutable_specialist_complete()->set_duration_ms(12345);
    updates.push_back(u);
    u = base;
    *u.mutable_complete()->mutable_result() = nested;
    u.mutable_complete()->set_outcome(agentstream::v1::OUTCOME_PARTIAL);
    updates.push_back(u);
    u = base;
    u.mutable_error()->set_code(t);
    u.mutable_error()->set_message(t);
    u.mutable_error()->set_retryable(true);
    updates.push_back(u);
    u = base;
    u.mutable_timeout()->set_message(t);
    u.mutable_timeout()->set_action(agentstream::v1::TIMEOUT_ACTION_ABANDONED);
    updates.push_back(u);
    updates.push_back(base);  // No kind.
  }
  for (const std::string& rid : {std::string("req_1"), std::string("r\"x")}) {
    for (const Update& u : updates) {
      EXPECT_EQ(DirectText(u, rid), DocumentText(u, rid)) << u.DebugString();
    }
  }
}

}  // namespace
}  // namespace agentstream
