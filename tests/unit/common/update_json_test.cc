#include "common/update_json.h"

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

}  // namespace
}  // namespace agentstream
