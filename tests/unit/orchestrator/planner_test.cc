#include "orchestrator/planner.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/fake_specialist.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::orchestrator::testing::MakeCard;
using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<agentstream::v1::SpecialistCard> Cards() {
  return {MakeCard("DataAnalyst", {"transactions", "totals", "trend", "spend"}),
          MakeCard("RiskAnalyst", {"risk", "volatility", "exposure"}),
          MakeCard("ComplianceExpert",
                   {"AML", "compliance", "money laundering", "structuring"}),
          MakeCard("Synthetic", {"synthetic", "benchmark"},
                   /*explicit_only=*/true)};
}

std::vector<std::string> Names(const Plan& plan) {
  std::vector<std::string> names;
  for (const auto& p : plan.specialists) names.push_back(p.card.name());
  return names;
}

TEST(StemWordTest, ReducesInflectionsToTheSameStem) {
  EXPECT_EQ(StemWord("Transactions"), StemWord("transaction"));
  EXPECT_EQ(StemWord("risky"), StemWord("risk"));
  EXPECT_EQ(StemWord("laundering"), StemWord("launder"));
  EXPECT_EQ(StemWord("exposures"), StemWord("exposure"));
  EXPECT_EQ(StemWord("activities"), StemWord("activity"));
  EXPECT_EQ(StemWord("structured"), StemWord("structuring"));
  EXPECT_NE(StemWord("risk"), StemWord("trend"));
}

TEST(PlannerTest, MatchesKeywordsCaseInsensitivelyAndByStem) {
  auto plan = PlanQuestion(
      "Assess the RISKS and AML compliance of account ACC-1042", Cards(), {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("RiskAnalyst", "ComplianceExpert"));
  EXPECT_THAT(plan->specialists[0].matched_keywords, ElementsAre("risk"));
  EXPECT_THAT(plan->specialists[1].matched_keywords,
              ElementsAre("AML", "compliance"));
  EXPECT_THAT(plan->reasoning, HasSubstr("RiskAnalyst (risk)"));
  EXPECT_THAT(plan->reasoning, HasSubstr("Not needed: DataAnalyst"));
  EXPECT_THAT(plan->specialists[0].task, HasSubstr("ACC-1042"));
}

TEST(PlannerTest, KeywordsWithTheSameStemAreListedOnce) {
  std::vector<agentstream::v1::SpecialistCard> cards = {
      MakeCard("DataAnalyst", {"transactions", "transaction", "trend"})};
  auto plan = PlanQuestion("show the transactions", cards, {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(plan->specialists[0].matched_keywords,
              ElementsAre("transactions"));
}

TEST(PlannerTest, MatchesMultiWordKeywordsAsPhrases) {
  auto plan = PlanQuestion("Any sign of money laundering?", Cards(), {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("ComplianceExpert"));
  // The words apart do not make the phrase.
  plan = PlanQuestion("laundering the money", Cards(), {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("DataAnalyst"));  // The default.
}

TEST(PlannerTest, WordMatchIsNotASubstringMatch) {
  // "riskless" is not "risk"; "trendy"... is stemmed to trend, which is fine.
  auto plan = PlanQuestion("a brisk walk", Cards(), {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("DataAnalyst"));
}

TEST(PlannerTest, ExplicitOnlyCardsAreNeverPlannedUnlessForced) {
  auto plan =
      PlanQuestion("run a synthetic benchmark of transactions", Cards(), {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("DataAnalyst"));

  plan = PlanQuestion("run a synthetic benchmark", Cards(), {"synthetic"});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("Synthetic"));
}

TEST(PlannerTest, ForcedSetIsUsedExactlyInCardOrder) {
  auto plan = PlanQuestion("anything about risk", Cards(),
                           {"ComplianceExpert", "dataanalyst", "DataAnalyst"});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("DataAnalyst", "ComplianceExpert"));
  EXPECT_THAT(plan->reasoning, HasSubstr("names its specialists"));
}

TEST(PlannerTest, UnknownForcedNameIsInvalidArgumentNamingIt) {
  EXPECT_THAT(
      PlanQuestion("risk", Cards(), {"RiskAnalyst", "Astrologer"}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Astrologer")));
}

TEST(PlannerTest, QuestionMatchingNothingGetsDataAnalyst) {
  auto plan = PlanQuestion("hello there", Cards(), {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("DataAnalyst"));
  EXPECT_THAT(plan->reasoning, HasSubstr("matches no specialist"));
}

TEST(PlannerTest, WithoutDataAnalystTheDefaultIsEveryNonExplicitCard) {
  std::vector<agentstream::v1::SpecialistCard> cards = Cards();
  cards.erase(cards.begin());
  auto plan = PlanQuestion("hello there", cards, {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Names(*plan), ElementsAre("RiskAnalyst", "ComplianceExpert"));
}

TEST(PlannerTest, EmptyOrOversizedQuestionIsInvalidArgument) {
  EXPECT_THAT(PlanQuestion("", Cards(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(PlanQuestion(" \n\t ", Cards(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      PlanQuestion(std::string(kMaxQuestionBytes + 1, 'a'), Cards(), {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
  EXPECT_THAT(PlanQuestion(std::string(kMaxQuestionBytes, 'a'), Cards(), {}),
              IsOk());
}

TEST(PlannerTest, NoCardsIsUnavailable) {
  EXPECT_THAT(PlanQuestion("risk", {}, {}),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace agentstream::orchestrator
