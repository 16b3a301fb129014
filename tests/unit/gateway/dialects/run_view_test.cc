#include "gateway/dialects/run_view.h"

#include "gtest/gtest.h"
#include "tests/unit/gateway/dialects/updates.h"

namespace agentstream::gateway::dialects {
namespace {

using namespace testing;  // NOLINT: the test's update builders.

// Applies an RFC 6902 patch of add/replace operations (what RunView emits)
// to `doc`, independently of RunView: a JSON Pointer walk per operation.
void ApplyPatch(const Json& patch, Json& doc) {
  for (const Json& op : patch) {
    const std::string path = op["path"];
    ASSERT_TRUE(op["op"] == "add" || op["op"] == "replace") << op.dump();
    const nlohmann::json::json_pointer pointer(
        path.size() >= 2 && path.substr(path.size() - 2) == "/-"
            ? path.substr(0, path.size() - 2)
            : path);
    nlohmann::json plain = nlohmann::json::parse(doc.dump());
    if (path.size() >= 2 && path.substr(path.size() - 2) == "/-") {
      ASSERT_TRUE(plain.at(pointer).is_array()) << path;
      plain.at(pointer).push_back(nlohmann::json::parse(op["value"].dump()));
    } else {
      if (op["op"] == "replace") {
        ASSERT_TRUE(plain.contains(pointer)) << "replace of a missing " << path;
      } else {
        ASSERT_TRUE(plain.contains(pointer.parent_pointer())) << path;
      }
      plain[pointer] = nlohmann::json::parse(op["value"].dump());
    }
    doc = Json::parse(plain.dump());
  }
}

TEST(RunViewTest, TheStateOfAWholeRun) {
  RunView view;
  for (const Update& u : TwoSpecialistRun()) view.Apply(u);
  const Json& s = view.state();
  EXPECT_EQ(s["status"], "complete");
  EXPECT_EQ(s["outcome"], "ok");
  EXPECT_EQ(s["answer"], "Account ACC-1042 looks risky.");
  EXPECT_EQ(s["order"], Json::array({"DataAnalyst", "RiskAnalyst"}));
  const Json& data = s["specialists"]["DataAnalyst"];
  EXPECT_EQ(data["progress"], 100);
  EXPECT_EQ(data["currentAction"], "Done");
  EXPECT_EQ(data["displayName"], "DataAnalyst (display)");
  EXPECT_EQ(data["toolCalls"], 1);
  EXPECT_EQ(data["outcome"], "ok");
  EXPECT_EQ(data["durationMs"], 1234);
  EXPECT_EQ(s["results"]["RiskAnalyst"]["score"], 0.7);
  EXPECT_EQ(s["results"]["DataAnalyst"]["rows"], 3);
  EXPECT_TRUE(view.ended());
}

TEST(RunViewTest, ThePatchesTurnEachStateIntoTheNext) {
  RunView view;
  Json mirror = view.state();
  for (const Update& u : TwoSpecialistRun()) {
    const ViewChange change = view.Apply(u);
    ApplyPatch(change.patch, mirror);
    // Compared as unordered objects: a patch says nothing of key order.
    ASSERT_EQ(nlohmann::json::parse(mirror.dump()),
              nlohmann::json::parse(view.state().dump()))
        << "after seq " << u.seq();
  }
}

TEST(RunViewTest, AReplayChangesNothingTwice) {
  RunView view;
  const auto run = TwoSpecialistRun();
  for (const Update& u : run) view.Apply(u);
  const Json before = view.state();
  for (const Update& u : run) {
    EXPECT_TRUE(view.Apply(u).patch.empty()) << u.seq();
  }
  EXPECT_EQ(view.state(), before);
}

TEST(RunViewTest, WhatEachUpdateTouches) {
  RunView view;
  EXPECT_TRUE(
      view.Apply(Status(1, agentstream::v1::RUN_STATUS_ANALYZING)).status);
  ViewChange c = view.Apply(Progress(2, "A/B~C", 40, "x"));
  EXPECT_EQ(c.specialist, "A/B~C");
  // A name with / and ~ is escaped in the pointer.
  EXPECT_EQ(c.patch[0]["path"], "/specialists/A~1B~0C");
  c = view.Apply(Partial(3, "A/B~C", {{"k", 1}}));
  EXPECT_TRUE(c.result);
  c = view.Apply(Complete(4, "done", agentstream::v1::OUTCOME_CANCELLED));
  EXPECT_TRUE(c.answer);
  EXPECT_EQ(view.state()["status"], "cancelled");
  // An unchanged value is no operation.
  EXPECT_TRUE(view.Apply(Progress(5, "A/B~C", 40, "x")).patch.empty());
}

TEST(RunViewTest, ErrorsAndTimeoutsAreListed) {
  RunView view;
  view.Apply(Error(1, "DataAnalyst", "unavailable", "down"));
  view.Apply(Error(2, "", "internal", "run-level"));
  ASSERT_EQ(view.state()["errors"].size(), 2u);
  EXPECT_EQ(view.state()["errors"][0]["specialist"], "DataAnalyst");
  EXPECT_TRUE(view.state()["errors"][1]["specialist"].is_null());
}

}  // namespace
}  // namespace agentstream::gateway::dialects
