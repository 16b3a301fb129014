#include "gateway/cli/run_view.h"

#include "gtest/gtest.h"

namespace agentstream::cli {
namespace {

using Json = nlohmann::json;

RunView Fold(const std::vector<Json>& updates) {
  RunView view;
  for (const Json& u : updates) Reduce(view, u);
  return view;
}

TEST(RunViewTest, FoldsARunIntoTheScreensModel) {
  RunView view = Fold({
      {{"type", "connected"},
       {"status", "connected"},
       {"request_id", "run_1"},
       {"correlation_id", "c1"}},
      {{"type", "status"},
       {"seq", 1},
       {"status", "delegating"},
       {"message", "Delegating"}},
      {{"type", "specialist_activated"},
       {"seq", 2},
       {"specialist", "B"},
       {"display_name", "Bee"},
       {"icon", "b"},
       {"task", "t"}},
      {{"type", "progress"},
       {"seq", 3},
       {"specialist", "A"},
       {"progress", 44.6},
       {"current_action", "Running query"}},
      {{"type", "tool_call"},
       {"seq", 4},
       {"specialist", "A"},
       {"tool", "data_query"},
       {"parameters", {{"sql", "SELECT 1"}}}},
      {{"type", "partial_result"},
       {"seq", 5},
       {"specialist", "A"},
       {"result", {{"query", "totals"}, {"n", 3}}}},
      {{"type", "partial_result"},
       {"seq", 6},
       {"specialist", "A"},
       {"result", {{"n", 4}}}},
      {{"type", "thinking"},
       {"seq", 7},
       {"agent", "Orchestrator"},
       {"thought", "planning"},
       {"visible", true}},
      {{"type", "thinking"},
       {"seq", 8},
       {"agent", "A"},
       {"specialist", "A"},
       {"thought", "hidden"},
       {"visible", false}},
      {{"type", "specialist_complete"},
       {"seq", 9},
       {"specialist", "A"},
       {"outcome", "ok"},
       {"duration_ms", 1500}},
      {{"type", "synthesis"}, {"seq", 10}, {"message", "2 of 2"}},
      {{"type", "complete"},
       {"seq", 11},
       {"outcome", "ok"},
       {"result", {{"answer", "Forty-two."}}}},
      {{"type", "done"}, {"status", "complete"}},
  });
  EXPECT_EQ(view.run_id, "run_1");
  EXPECT_EQ(view.correlation_id, "c1");
  EXPECT_EQ(view.status, "complete");
  ASSERT_EQ(view.specialists.size(), 2u);
  // Activation order: B was activated first, A first seen in a progress.
  EXPECT_EQ(view.specialists[0].name, "B");
  EXPECT_EQ(view.specialists[0].display_name, "Bee");
  EXPECT_EQ(view.specialists[0].icon, "b");
  const SpecialistView& a = view.specialists[1];
  EXPECT_EQ(a.progress, 45);
  EXPECT_EQ(a.current_action, "Running query");
  EXPECT_EQ(a.last_tool, "data_query");
  EXPECT_EQ(a.last_tool_detail, "SELECT 1");
  EXPECT_EQ(a.partial_results, 2);
  EXPECT_EQ(a.last_partial, "result 2");
  EXPECT_EQ(a.last_thought, "");
  EXPECT_EQ(a.outcome, "ok");
  EXPECT_EQ(a.duration_ms, 1500);
  EXPECT_EQ(view.orchestrator_thought, "planning");
  EXPECT_EQ(view.synthesis, "2 of 2");
  EXPECT_EQ(view.answer, "Forty-two.");
  EXPECT_EQ(view.outcome, "ok");
  EXPECT_EQ(view.done, "complete");
  EXPECT_EQ(view.last_seq, 11);
}

TEST(RunViewTest, RepeatsAndTheNamedErrorCopyChangeNothing) {
  RunView view;
  const Json error = {{"type", "error"},
                      {"seq", 2},
                      {"specialist", "A"},
                      {"code", "unavailable"},
                      {"message", "down"}};
  EXPECT_TRUE(Reduce(view, {{"type", "progress"},
                            {"seq", 1},
                            {"specialist", "A"},
                            {"progress", 10}}));
  EXPECT_TRUE(Reduce(view, error));
  EXPECT_FALSE(Reduce(view, error));  // The `event: error` copy.
  EXPECT_FALSE(Reduce(view, {{"type", "progress"},
                             {"seq", 1},
                             {"specialist", "A"},
                             {"progress", 90}}));
  ASSERT_EQ(view.specialists.size(), 1u);
  EXPECT_EQ(view.specialists[0].progress, 10);
  EXPECT_EQ(view.specialists[0].errors.size(), 1u);
  // The gateway's own errors have no seq: the same one twice is a repeat.
  const Json gap = {{"type", "error"}, {"code", "gap"}, {"message", "m"}};
  EXPECT_TRUE(Reduce(view, gap));
  EXPECT_FALSE(Reduce(view, gap));
  EXPECT_EQ(view.errors.size(), 1u);
  EXPECT_FALSE(Reduce(view, {{"type", "heartbeat"}}));
  EXPECT_FALSE(Reduce(view, Json::array()));
  EXPECT_FALSE(Reduce(view, {{"type", "some_future_kind"}, {"seq", 9}}));
  EXPECT_EQ(view.last_seq, 2);
}

TEST(RunViewTest, ABatchFoldsUpdateByUpdate) {
  RunView view;
  EXPECT_TRUE(Reduce(view, {{"type", "batch"},
                            {"updates",
                             {{{"type", "progress"},
                               {"seq", 1},
                               {"specialist", "A"},
                               {"progress", 10}},
                              {{"type", "progress"},
                               {"seq", 2},
                               {"specialist", "A"},
                               {"progress", 20}}}}}));
  EXPECT_EQ(view.specialists.at(0).progress, 20);
  EXPECT_EQ(view.last_seq, 2);
}

TEST(RunViewTest, AReconnectErrorIsANoticeUntilTheResume) {
  RunView view;
  const Json lost = {{"type", "error"},
                     {"code", "unavailable"},
                     {"retryable", true},
                     {"message", "restarting"}};
  EXPECT_TRUE(IsReconnectError(lost));
  EXPECT_FALSE(IsReconnectError({{"type", "error"},
                                 {"code", "unavailable"},
                                 {"retryable", true},
                                 {"specialist", "A"}}));
  EXPECT_TRUE(IsReconnectError({{"type", "error"}, {"code", "slow_consumer"}}));
  Reduce(view, lost);
  EXPECT_EQ(view.notice, "restarting");
  EXPECT_TRUE(view.errors.empty());
  Reduce(view, {{"type", "connected"},
                {"status", "resumed"},
                {"request_id", "run_1"},
                {"after_seq", 4}});
  EXPECT_EQ(view.notice, "");
  EXPECT_EQ(view.resumes, 1);
}

TEST(RunViewTest, DoneDecidesTheStatusOnlyWhenNothingElseDid) {
  RunView cancelled =
      Fold({{{"type", "complete"}, {"seq", 3}, {"outcome", "cancelled"}},
            {{"type", "done"}, {"status", "cancelled"}}});
  EXPECT_EQ(cancelled.status, "cancelled");
  RunView lost =
      Fold({{{"type", "status"}, {"seq", 1}, {"status", "delegating"}},
            {{"type", "done"}, {"status", "failed"}}});
  EXPECT_EQ(lost.status, "failed");
  RunView partial = Fold({{{"type", "complete"},
                           {"seq", 3},
                           {"outcome", "partial"},
                           {"result", "not an object"}},
                          {{"type", "done"}, {"status", "complete"}}});
  EXPECT_EQ(partial.status, "complete");
  ASSERT_TRUE(partial.final_result.has_value());
  EXPECT_TRUE(partial.final_result->is_object());
}

TEST(RunViewTest, ClampsProgress) {
  EXPECT_EQ(ClampProgress(-5), 0);
  EXPECT_EQ(ClampProgress(100.4), 100);
  EXPECT_EQ(ClampProgress(250), 100);
  EXPECT_EQ(ClampProgress(std::nan("")), 0);
}

}  // namespace
}  // namespace agentstream::cli
