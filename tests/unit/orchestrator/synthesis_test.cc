#include "orchestrator/synthesis.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

SpecialistContribution Contribution(const std::string& name,
                                    agentstream::v1::Outcome outcome,
                                    json result, std::string error = "") {
  SpecialistContribution c;
  c.name = name;
  c.outcome = outcome;
  c.result = std::move(result);
  c.error = std::move(error);
  return c;
}

TEST(SynthesisTest, MergePartialResultsKeepsLatestKeys) {
  json merged = json::object();
  MergePartialResult({{"totals", {{"inflow", 10}}}, {"a", 1}}, &merged);
  MergePartialResult({{"a", 2}, {"b", "x"}}, &merged);
  MergePartialResult(json::array({1, 2}), &merged);  // Not an object: ignored.
  EXPECT_EQ(merged, (json{{"totals", {{"inflow", 10}}}, {"a", 2}, {"b", "x"}}));
}

TEST(SynthesisTest, CompleteRunNamesTheKeyFiguresOfEachSpecialist) {
  Synthesis s = Synthesize(
      {Contribution("DataAnalyst", agentstream::v1::OUTCOME_OK,
                    {{"totals",
                      {{"inflow", 125000.5},
                       {"outflow", 98000},
                       {"net", 27000.5},
                       {"count", 1234}}},
                     {"monthly_trend", json::array()}}),
       Contribution("RiskAnalyst", agentstream::v1::OUTCOME_OK,
                    {{"risk_score", 6.4},
                     {"risk_level", "elevated"},
                     {"confidence", 0.82}}),
       Contribution("ComplianceExpert", agentstream::v1::OUTCOME_OK,
                    {{"findings", json::array({{{"rule", "structuring"}},
                                               {{"rule", "velocity"}},
                                               {{"rule", "structuring"}}})}})},
      /*cancelled=*/false);
  EXPECT_EQ(s.outcome, agentstream::v1::OUTCOME_OK);
  const std::string answer = s.result["answer"];
  EXPECT_THAT(answer, HasSubstr("inflow 125000.50"));
  EXPECT_THAT(answer, HasSubstr("outflow 98000"));
  EXPECT_THAT(answer, HasSubstr("over 1234 transactions"));
  EXPECT_THAT(answer, HasSubstr("RiskAnalyst rates the risk 6.40/10 "
                                "(elevated) with confidence 0.82"));
  EXPECT_THAT(answer, HasSubstr("3 finding(s): structuring, velocity"));
  EXPECT_THAT(answer, Not(HasSubstr("Missing")));
  EXPECT_EQ(s.result["missing"], json::array());
  EXPECT_EQ(s.result["specialists"]["RiskAnalyst"]["risk_score"], 6.4);
  EXPECT_EQ(s.result["specialists"]["DataAnalyst"]["totals"]["net"], 27000.5);
  EXPECT_FALSE(
      s.result["specialists"]["DataAnalyst"].contains("monthly_trend"));
}

TEST(SynthesisTest, FailedSpecialistIsNamedInMissingAndTheOutcomeIsPartial) {
  Synthesis s =
      Synthesize({Contribution("DataAnalyst", agentstream::v1::OUTCOME_OK,
                               {{"inflow", 5}, {"outflow", 3}, {"net", 2}}),
                  Contribution("RiskAnalyst", agentstream::v1::OUTCOME_FAILED,
                               json::object(), "connection refused")},
                 false);
  EXPECT_EQ(s.outcome, agentstream::v1::OUTCOME_PARTIAL);
  EXPECT_EQ(s.result["missing"], json::array({"RiskAnalyst"}));
  EXPECT_THAT(s.result["answer"].get<std::string>(),
              HasSubstr("Missing from this answer: RiskAnalyst (failed: "
                        "connection refused)"));
  EXPECT_FALSE(s.result["specialists"].contains("RiskAnalyst"));
}

TEST(SynthesisTest, FailedSpecialistWithPartialFiguresKeepsThemButIsMissing) {
  Synthesis s = Synthesize(
      {Contribution("RiskAnalyst", agentstream::v1::OUTCOME_TIMED_OUT,
                    {{"risk_score", 3}})},
      false);
  EXPECT_EQ(s.result["specialists"]["RiskAnalyst"]["risk_score"], 3);
  EXPECT_EQ(s.result["missing"], json::array({"RiskAnalyst"}));
  EXPECT_THAT(s.result["answer"].get<std::string>(), HasSubstr("timed out"));
}

TEST(SynthesisTest, UnknownSpecialistIsSummarisedByItsScalarKeys) {
  Synthesis s = Synthesize(
      {Contribution(
          "Synthetic", agentstream::v1::OUTCOME_OK,
          {{"events", 100}, {"bytes", 2048}, {"nested", {{"x", 1}}}})},
      false);
  EXPECT_EQ(s.result["specialists"]["Synthetic"],
            (json{{"events", 100}, {"bytes", 2048}}));
  EXPECT_THAT(s.result["answer"].get<std::string>(),
              HasSubstr("Synthetic reported"));
  EXPECT_THAT(s.result["answer"].get<std::string>(), HasSubstr("events 100"));
}

// The shapes the built-in specialists end with (specialists/*): a final
// `summary` partial result after per-query ones.
TEST(SynthesisTest, UsesTheSpecialistsOwnSummaryAndScalarFigures) {
  json data = json::object();
  MergePartialResult({{"query", "totals"},
                      {"count", 812},
                      {"inflow", 1500.25},
                      {"outflow", 900},
                      {"net", 600.25}},
                     &data);
  MergePartialResult({{"query", "outliers"},
                      {"count", 3},
                      {"outliers", json::array({{{"id", 1}}})}},
                     &data);
  MergePartialResult(
      {{"query", "summary"},
       {"summary", "For ACC-1042: 812 transactions, net $600.25"},
       {"count", 812},
       {"inflow", 1500.25},
       {"outflow", 900},
       {"net", 600.25},
       {"outliers", 3}},
      &data);
  json compliance = json::object();
  MergePartialResult({{"rule", "velocity"},
                      {"findings", json::array({{{"account", "ACC-1"}}})}},
                     &compliance);
  MergePartialResult({{"rule", "summary"},
                      {"alerts", 2},
                      {"level", "high"},
                      {"structuring", 1},
                      {"velocity", 1}},
                     &compliance);
  std::vector<SpecialistContribution> contributions = {
      Contribution("DataAnalyst", agentstream::v1::OUTCOME_OK, data),
      Contribution("ComplianceExpert", agentstream::v1::OUTCOME_OK,
                   compliance)};
  // ComplianceExpert's digest; an earlier rule's `count` must not leak in.
  MergePartialResult({{"rule", "pii"}, {"count", 0}}, &contributions[1].result);
  contributions[1].summary_result = {{"rule", "summary"},
                                     {"alerts", 2},
                                     {"level", "high"},
                                     {"structuring", 1},
                                     {"velocity", 1}};
  Synthesis s = Synthesize(contributions, false);
  const std::string answer = s.result["answer"];
  EXPECT_THAT(answer, HasSubstr("DataAnalyst: For ACC-1042: 812 "
                                "transactions, net $600.25."));
  EXPECT_THAT(answer, HasSubstr("ComplianceExpert raised 2 alert(s)."));
  EXPECT_EQ(s.result["specialists"]["DataAnalyst"], (json{{"count", 812},
                                                          {"inflow", 1500.25},
                                                          {"outflow", 900},
                                                          {"net", 600.25},
                                                          {"outliers", 3}}));
  EXPECT_EQ(s.result["specialists"]["ComplianceExpert"],
            (json{{"alerts", 2},
                  {"level", "high"},
                  {"structuring", 1},
                  {"velocity", 1}}));
}

TEST(SynthesisTest, CancelledRunSaysSo) {
  Synthesis s = Synthesize(
      {Contribution("DataAnalyst", agentstream::v1::OUTCOME_CANCELLED,
                    json::object())},
      /*cancelled=*/true);
  EXPECT_EQ(s.outcome, agentstream::v1::OUTCOME_CANCELLED);
  EXPECT_THAT(s.result["answer"].get<std::string>(), HasSubstr("cancelled"));
  EXPECT_EQ(s.result["missing"], json::array({"DataAnalyst"}));
}

TEST(SynthesisTest, ProgressMessageListsThePending) {
  EXPECT_EQ(SynthesisProgressMessage({"A"}, {"B", "C"}),
            "1 of 3 specialists done; waiting for B, C.");
  EXPECT_EQ(SynthesisProgressMessage({"A", "B"}, {}),
            "2 of 2 specialists done; combining their results.");
}

}  // namespace
}  // namespace agentstream::orchestrator
