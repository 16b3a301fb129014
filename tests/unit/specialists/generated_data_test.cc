// The built-in specialists on the generated data set find what was planted
// for ACC-1042 in the last 6 months, and stay quick over all accounts.
#include <set>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/compliance_expert/compliance_expert.h"
#include "specialists/data/transactions.h"
#include "specialists/data_analyst/data_analyst.h"
#include "specialists/risk_analyst/risk_analyst.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/specialists/fixture.h"

namespace agentstream::specialists {
namespace {

using ::agentstream::specialists::testing::RunAnalyze;
using ::agentstream::testing::IsOk;

class GeneratedDataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
        agentstream::testing::ScopedTempDir::Make("generated");
    ASSERT_THAT(dir, IsOk());
    dir_ = new agentstream::testing::ScopedTempDir(*std::move(dir));
    db_ = new std::string(dir_->File("var/agentstream.db"));
    ASSERT_THAT(data::EnsureDatabase(*db_, "", 42), IsOk());
  }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
    delete dir_;  // Removes the database's directory.
    dir_ = nullptr;
  }
  static agentstream::testing::ScopedTempDir* dir_;
  static std::string* db_;
};
agentstream::testing::ScopedTempDir* GeneratedDataTest::dir_ = nullptr;
std::string* GeneratedDataTest::db_ = nullptr;

constexpr char kQuestion[] =
    "Assess the risk and AML compliance of account ACC-1042 over the last 6 "
    "months";

TEST_F(GeneratedDataTest, SpecialistsFindThePlantedPatternsOfAcc1042) {
  ComplianceExpert compliance(*db_);
  auto c = RunAnalyze(compliance, kQuestion);
  ASSERT_THAT(c.status, IsOk());
  const nlohmann::json structuring = c.Partial("rule", "structuring");
  EXPECT_EQ(structuring["scope"]["from"], "2026-05-01T00:00:00Z");
  EXPECT_EQ(structuring["scope"]["to"], "2026-11-01T00:00:00Z");
  ASSERT_EQ(structuring["matches"], 1);
  EXPECT_EQ(structuring["findings"][0]["count"], 5);
  EXPECT_GE(c.Partial("rule", "velocity")["findings"][0]["count"], 24);
  EXPECT_GE(c.Partial("rule", "high_risk_jurisdictions")["matches"], 1);
  EXPECT_EQ(c.Partial("rule", "summary")["level"], "high");

  RiskAnalyst risk(*db_);
  c = RunAnalyze(risk, kQuestion);
  ASSERT_THAT(c.status, IsOk());
  EXPECT_GT(c.Partial("part", "concentration")["hhi"].get<double>(), 0.3);
  EXPECT_EQ(c.Partial("part", "concentration")["top_counterparty"],
            "Orion Global Trading FZE");
  EXPECT_GE(c.Partial("part", "score")["risk_score"].get<double>(), 7.0);
  // About 100 transactions over 6 months: 0.6 * n / 200 + 0.4.
  EXPECT_GT(c.Partial("part", "score")["confidence"].get<double>(), 0.7);

  DataAnalyst analyst(*db_);
  c = RunAnalyze(analyst, kQuestion);
  ASSERT_THAT(c.status, IsOk());
  const nlohmann::json outliers = c.Partial("query", "outliers");
  ASSERT_GE(outliers["count"], 1);
  EXPECT_DOUBLE_EQ(outliers["outliers"][0]["amount"].get<double>(), 248000.0);
}

TEST_F(GeneratedDataTest, AllAccountsAnalysesFinishQuickly) {
  DataAnalyst analyst(*db_);
  RiskAnalyst risk(*db_);
  ComplianceExpert compliance(*db_);
  for (Specialist* s :
       std::initializer_list<Specialist*>{&analyst, &risk, &compliance}) {
    const absl::Time start = absl::Now();
    auto c = RunAnalyze(*s, "Overall picture of all transactions");
    const absl::Duration took = absl::Now() - start;
    ASSERT_THAT(c.status, IsOk()) << s->Card().name();
    EXPECT_LT(took, absl::Seconds(10)) << s->Card().name();
    std::cerr << s->Card().name() << " over all accounts: " << took << ", "
              << c.updates.size() << " updates\n";
  }
  // The structuring rule over everyone finds the planted accounts.
  auto c = RunAnalyze(compliance, "AML review, last 6 months");
  std::set<std::string> accounts;
  const nlohmann::json structuring = c.Partial("rule", "structuring");
  for (const auto& f : structuring["findings"]) {
    accounts.insert(f["account"].get<std::string>());
  }
  EXPECT_TRUE(accounts.count("ACC-1042"));
  EXPECT_TRUE(accounts.count("ACC-1337"));
  EXPECT_FALSE(accounts.count("ACC-1234"));
}

}  // namespace
}  // namespace agentstream::specialists
