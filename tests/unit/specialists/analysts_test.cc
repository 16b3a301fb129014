// The three database specialists against the fixture database: each figure
// is recomputed here from the fixture rows, independently of the SQL.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/compliance_expert/compliance_expert.h"
#include "specialists/data_analyst/data_analyst.h"
#include "specialists/risk_analyst/risk_analyst.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/specialists/fixture.h"

namespace agentstream::specialists {
namespace {

using ::agentstream::specialists::testing::Captured;
using ::agentstream::specialists::testing::FixtureDb;
using ::agentstream::specialists::testing::FixtureRows;
using ::agentstream::specialists::testing::kFixtureFrom6m;
using ::agentstream::specialists::testing::kFixtureTo;
using ::agentstream::specialists::testing::MakeFixtureDb;
using ::agentstream::specialists::testing::RunAnalyze;
using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = agentstream::v1::Update::KindCase;

constexpr char kQuestion[] =
    "Assess the risk and AML compliance of account ACC-1042 over the last 6 "
    "months";

std::vector<data::Transaction> InScope(const std::string& account, int64_t from,
                                       int64_t to) {
  std::vector<data::Transaction> out;
  for (const auto& t : FixtureRows()) {
    if ((account.empty() || t.account == account) && t.ts >= from &&
        t.ts < to) {
      out.push_back(t);
    }
  }
  return out;
}

int64_t Sum(const std::vector<data::Transaction>& rows, const char* direction) {
  int64_t s = 0;
  for (const auto& t : rows) s += t.direction == direction ? t.amount_cents : 0;
  return s;
}

// Progress never goes backwards and ends at 100.
void ExpectProgressMonotonicTo100(const Captured& c) {
  int last = -1;
  for (const auto& u : c.updates) {
    if (!u.has_progress()) continue;
    EXPECT_GE(static_cast<int>(u.progress().progress()), last);
    last = static_cast<int>(u.progress().progress());
  }
  EXPECT_EQ(last, 100);
}

TEST(DataAnalystTest, TotalsTrendCounterpartiesAndOutliersMatchFixture) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  DataAnalyst analyst(db->path);
  const Captured c = RunAnalyze(analyst, kQuestion, "Analyse ACC-1042");
  ASSERT_THAT(c.status, IsOk());

  const auto rows = InScope("ACC-1042", kFixtureFrom6m, kFixtureTo);
  const nlohmann::json totals = c.Partial("query", "totals");
  ASSERT_FALSE(totals.is_null());
  EXPECT_EQ(totals["count"], 91);
  EXPECT_EQ(totals["count"], rows.size());
  EXPECT_EQ(totals["inflow_cents"], Sum(rows, "credit"));
  EXPECT_EQ(totals["inflow_cents"], 7770000);
  EXPECT_EQ(totals["outflow_cents"], Sum(rows, "debit"));
  EXPECT_EQ(totals["outflow_cents"], 7724000);
  EXPECT_EQ(totals["net_cents"], 46000);
  EXPECT_DOUBLE_EQ(totals["inflow"].get<double>(), 77700.0);
  EXPECT_EQ(totals["scope"]["account"], "ACC-1042");
  EXPECT_EQ(totals["scope"]["from_ts"], kFixtureFrom6m);
  EXPECT_EQ(totals["scope"]["to_ts"], kFixtureTo);
  EXPECT_EQ(totals["scope"]["from"], "2026-01-01T00:00:00Z");

  const nlohmann::json trend = c.Partial("query", "monthly_trend");
  ASSERT_FALSE(trend.is_null());
  ASSERT_EQ(trend["months"].size(), 6u);
  EXPECT_EQ(trend["months"][0]["month"], "2026-01");
  // June: rent 1,500 + groceries 500 + the 60,000 wire.
  EXPECT_DOUBLE_EQ(trend["months"][5]["outflow"].get<double>(), 62000.0);
  EXPECT_EQ(trend["outflow_trend"], "rising");

  const nlohmann::json top = c.Partial("query", "top_counterparties");
  ASSERT_FALSE(top.is_null());
  ASSERT_EQ(top["counterparties"].size(), 5u);
  EXPECT_EQ(top["counterparties"][0]["counterparty"],
            "Caspian Horizon Exports");
  EXPECT_EQ(top["counterparties"][1]["counterparty"], "Cash deposit");
  EXPECT_DOUBLE_EQ(top["counterparties"][1]["volume"].get<double>(), 47700.0);
  EXPECT_EQ(top["counterparties"][2]["counterparty"], "Acme Payroll");

  // Outliers against ACC-1042's whole history, recomputed here.
  double n = 0, sum = 0, sum2 = 0;
  for (const auto& t : FixtureRows()) {
    if (t.account != "ACC-1042") continue;
    n += 1;
    sum += static_cast<double>(t.amount_cents);
    sum2 += static_cast<double>(t.amount_cents) * t.amount_cents;
  }
  const double mean = sum / n;
  const double sd = std::sqrt(sum2 / n - mean * mean);
  int expected_outliers = 0;
  for (const auto& t : rows) {
    expected_outliers += t.amount_cents > mean + 3 * sd ? 1 : 0;
  }
  const nlohmann::json outliers = c.Partial("query", "outliers");
  ASSERT_FALSE(outliers.is_null());
  EXPECT_EQ(expected_outliers, 1);
  EXPECT_EQ(outliers["count"], expected_outliers);
  ASSERT_EQ(outliers["outliers"].size(), 1u);
  EXPECT_EQ(outliers["outliers"][0]["counterparty"], "Caspian Horizon Exports");
  EXPECT_NEAR(outliers["outliers"][0]["z_score"].get<double>(),
              (6000000 - mean) / sd, 0.01);

  // Every query was announced as a data_query tool call with SQL and params.
  EXPECT_EQ(c.Count(Kind::kToolCall), 4);
  for (const auto& u : c.updates) {
    if (!u.has_tool_call()) continue;
    EXPECT_EQ(u.tool_call().tool(), "data_query");
    EXPECT_THAT(u.tool_call().parameters().fields().at("sql").string_value(),
                HasSubstr("FROM transactions"));
    EXPECT_TRUE(u.tool_call().parameters().fields().contains("params"));
  }
  EXPECT_GE(c.Count(Kind::kThinking), 3);
  EXPECT_FALSE(c.Partial("query", "summary").is_null());
  ExpectProgressMonotonicTo100(c);
}

TEST(DataAnalystTest, DefaultScopeIsAllAccountsLastTwelveMonths) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  DataAnalyst analyst(db->path);
  const Captured c = RunAnalyze(analyst, "What are the totals?");
  ASSERT_THAT(c.status, IsOk());
  // 12 months before 2026-07-01 is 2025-07-01: every fixture row.
  const auto rows = InScope("", 1751328000, kFixtureTo);
  const nlohmann::json totals = c.Partial("query", "totals");
  EXPECT_EQ(totals["count"], rows.size());
  EXPECT_EQ(totals["count"], FixtureRows().size());
  EXPECT_EQ(totals["accounts"], 2);
  EXPECT_EQ(totals["outflow_cents"], Sum(rows, "debit"));
  EXPECT_TRUE(totals["scope"]["account"].is_null());
}

TEST(DataAnalystTest, UnknownAccountYieldsZeroTotals) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  DataAnalyst analyst(db->path);
  const Captured c = RunAnalyze(analyst, "Totals for ACC-9999");
  ASSERT_THAT(c.status, IsOk());
  EXPECT_EQ(c.Partial("query", "totals")["count"], 0);
  ExpectProgressMonotonicTo100(c);
}

TEST(DataAnalystTest, MissingDatabaseIsNotFound) {
  DataAnalyst analyst("/nonexistent/dir/none.db");
  EXPECT_THAT(RunAnalyze(analyst, kQuestion).status,
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(RiskAnalystTest, ScoreAndPartsMatchFixture) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  RiskAnalyst analyst(db->path);
  const Captured c = RunAnalyze(analyst, kQuestion);
  ASSERT_THAT(c.status, IsOk());
  const auto rows = InScope("ACC-1042", kFixtureFrom6m, kFixtureTo);

  // Monthly outflow volatility, recomputed.
  std::map<int64_t, double> monthly;
  for (const auto& t : rows) {
    if (t.direction != "debit") continue;
    const absl::CivilMonth m(
        absl::ToCivilSecond(absl::FromUnixSeconds(t.ts), absl::UTCTimeZone()));
    monthly[m.year() * 100 + m.month()] += t.amount_cents / 100.0;
  }
  double mean = 0, var = 0;
  for (const auto& [m, v] : monthly) mean += v;
  mean /= monthly.size();
  for (const auto& [m, v] : monthly) var += (v - mean) * (v - mean);
  const double cv = std::sqrt(var / monthly.size()) / mean;
  const nlohmann::json vol = c.Partial("part", "volatility");
  ASSERT_FALSE(vol.is_null());
  EXPECT_EQ(vol["months"], 6);
  EXPECT_EQ(vol["transactions"], 91);
  EXPECT_NEAR(vol["coefficient_of_variation"].get<double>(), cv, 1e-4);

  // HHI over debit counterparties.
  std::map<std::string, double> by_party;
  double debits = 0;
  for (const auto& t : rows) {
    if (t.direction != "debit") continue;
    by_party[t.counterparty] += t.amount_cents;
    debits += t.amount_cents;
  }
  double hhi = 0;
  for (const auto& [p, v] : by_party) hhi += (v / debits) * (v / debits);
  const nlohmann::json conc = c.Partial("part", "concentration");
  ASSERT_FALSE(conc.is_null());
  EXPECT_NEAR(conc["hhi"].get<double>(), hhi, 1e-4);
  EXPECT_EQ(conc["top_counterparty"], "Caspian Horizon Exports");
  EXPECT_EQ(conc["counterparties"], 5);

  // Exposure: high-risk (SY, IR) and cash shares of the volume.
  const double volume = Sum(rows, "credit") + Sum(rows, "debit");
  const nlohmann::json exposure = c.Partial("part", "exposure");
  ASSERT_FALSE(exposure.is_null());
  EXPECT_NEAR(exposure["high_risk_share"].get<double>(), 6500000 / volume,
              1e-4);
  EXPECT_NEAR(exposure["cash_share"].get<double>(), 4770000 / volume, 1e-4);
  EXPECT_DOUBLE_EQ(exposure["high_risk_volume"].get<double>(), 65000.0);

  RiskInputs in;
  in.transactions = 91;
  in.months = 6;
  in.outflow_cv = cv;
  in.hhi = hhi;
  in.high_risk_share = 6500000 / volume;
  in.cash_share = 4770000 / volume;
  const RiskScore expected = ScoreRisk(in);
  const nlohmann::json score = c.Partial("part", "score");
  ASSERT_FALSE(score.is_null());
  EXPECT_DOUBLE_EQ(score["risk_score"].get<double>(), expected.score);
  EXPECT_GE(expected.score, 7.0);  // This account is built to look risky.
  EXPECT_EQ(score["level"], "high");
  // 91 transactions over 6 months: 0.6 * 91/200 + 0.4.
  EXPECT_DOUBLE_EQ(score["confidence"].get<double>(), 0.67);
  EXPECT_EQ(c.Count(Kind::kToolCall), 5);
  ExpectProgressMonotonicTo100(c);
}

TEST(RiskScoreTest, ComponentsAndConfidenceFollowTheFormula) {
  RiskInputs in;
  in.transactions = 400;
  in.months = 12;
  in.outflow_cv = 0.5;     // 1.25
  in.hhi = 0.25;           // 1.25
  in.high_risk_share = 0;  // 0
  in.cash_share = 0.15;    // 1.0
  RiskScore s = ScoreRisk(in);
  EXPECT_DOUBLE_EQ(s.score, 3.5);
  EXPECT_EQ(s.level, "low");
  EXPECT_DOUBLE_EQ(s.confidence, 1.0);
  in.transactions = 20;
  in.months = 1;
  s = ScoreRisk(in);
  // 0.6 * 0.1 + 0.4 / 6 = 0.1267.
  EXPECT_DOUBLE_EQ(s.confidence, 0.13);
  EXPECT_DOUBLE_EQ(ScoreRisk(RiskInputs{}).score, 0.0);
  EXPECT_DOUBLE_EQ(ScoreRisk(RiskInputs{}).confidence, 0.0);
  in.outflow_cv = 5;
  in.hhi = 1;
  in.high_risk_share = 1;
  in.cash_share = 1;
  EXPECT_DOUBLE_EQ(ScoreRisk(in).score, 10.0);
}

TEST(ComplianceExpertTest, FindsStructuringVelocityAndHighRisk) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  ComplianceExpert expert(db->path);
  const Captured c = RunAnalyze(expert, kQuestion);
  ASSERT_THAT(c.status, IsOk());

  std::vector<int64_t> deposit_ids;
  std::vector<int64_t> burst_ids;
  int64_t id = 0;
  for (const auto& t : FixtureRows()) {
    ++id;  // Ids follow insertion order.
    if (t.channel == "cash" && t.direction == "credit" && t.ts < 1775000000 &&
        t.amount_cents >= 800000) {
      deposit_ids.push_back(id);
    }
    if (t.counterparty == "Quick Mart") burst_ids.push_back(id);
  }
  const nlohmann::json structuring = c.Partial("rule", "structuring");
  ASSERT_FALSE(structuring.is_null());
  EXPECT_EQ(structuring["candidates"], 5);
  EXPECT_EQ(structuring["matches"], 1);
  EXPECT_EQ(structuring["findings"][0]["account"], "ACC-1042");
  EXPECT_EQ(structuring["findings"][0]["count"], 4);
  EXPECT_DOUBLE_EQ(structuring["findings"][0]["total"].get<double>(), 38200.0);
  EXPECT_EQ(
      structuring["findings"][0]["transaction_ids"].get<std::vector<int64_t>>(),
      deposit_ids);

  const nlohmann::json velocity = c.Partial("rule", "velocity");
  ASSERT_FALSE(velocity.is_null());
  EXPECT_EQ(velocity["matches"], 1);
  EXPECT_EQ(velocity["findings"][0]["count"], 12);
  EXPECT_EQ(
      velocity["findings"][0]["transaction_ids"].get<std::vector<int64_t>>(),
      burst_ids);

  const nlohmann::json risky = c.Partial("rule", "high_risk_jurisdictions");
  ASSERT_FALSE(risky.is_null());
  EXPECT_EQ(risky["matches"], 2);
  EXPECT_DOUBLE_EQ(risky["total"].get<double>(), 65000.0);
  EXPECT_EQ(risky["by_country"]["IR"]["count"], 1);
  EXPECT_EQ(risky["largest"]["counterparty"], "Caspian Horizon Exports");

  const nlohmann::json summary = c.Partial("rule", "summary");
  EXPECT_EQ(summary["level"], "high");
  EXPECT_EQ(summary["alerts"], 3);
  ExpectProgressMonotonicTo100(c);
}

TEST(ComplianceExpertTest, OtherAccountHasNoFindings) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  ComplianceExpert expert(db->path);
  const Captured c = RunAnalyze(expert, "Is ACC-2000 compliant in 2026?");
  ASSERT_THAT(c.status, IsOk());
  EXPECT_EQ(c.Partial("rule", "structuring")["matches"], 0);
  EXPECT_EQ(c.Partial("rule", "velocity")["matches"], 0);
  EXPECT_EQ(c.Partial("rule", "high_risk_jurisdictions")["matches"], 0);
  EXPECT_EQ(c.Partial("rule", "summary")["level"], "low");
}

TEST(ComplianceExpertTest, MasksPersonalDataInEverythingItEchoes) {
  const absl::StatusOr<FixtureDb> db = MakeFixtureDb();
  ASSERT_THAT(db, IsOk());
  ComplianceExpert expert(db->path);
  const Captured c = RunAnalyze(
      expert,
      "Check ACC-1042 for the customer john.doe@example.com, card 4111 1111 "
      "1111 1111, IBAN DE89 3704 0044 0532 0130 00, phone +1 415 555 0100",
      "AML review; reach me at jane@corp.example.org");
  ASSERT_THAT(c.status, IsOk());
  const nlohmann::json pii = c.Partial("rule", "pii");
  ASSERT_FALSE(pii.is_null());
  EXPECT_EQ(pii["count"], 5);
  const std::string all = c.AllText();
  for (const char* secret :
       {"john.doe@", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
        "0532", "415 555 0100", "jane@"}) {
    EXPECT_THAT(all, Not(HasSubstr(secret))) << secret;
  }
  EXPECT_THAT(pii["masked_question"].get<std::string>(),
              HasSubstr("**** **** **** 1111"));
  // The scope still comes from the question.
  EXPECT_EQ(c.Partial("rule", "structuring")["scope"]["account"], "ACC-1042");
}

// Every database specialist stops promptly when its token trips mid-way.
TEST(CancellationTest, DatabaseSpecialistsStopWhenCancelled) {
  const absl::StatusOr<FixtureDb> made = MakeFixtureDb();
  ASSERT_THAT(made, IsOk());
  const std::string& db = made->path;
  std::vector<std::unique_ptr<Specialist>> all;
  all.push_back(std::make_unique<DataAnalyst>(db));
  all.push_back(std::make_unique<RiskAnalyst>(db));
  all.push_back(std::make_unique<ComplianceExpert>(db));
  for (auto& specialist : all) {
    AnalyzeRequest request;
    request.set_question(kQuestion);
    CancelToken cancel;
    int tool_calls = 0;
    int after_cancel = 0;
    UpdateSink sink({"r", specialist->Card().name(), "i"}, Clock::Real(),
                    [&](const agentstream::v1::Update& u) {
                      if (cancel.cancelled()) ++after_cancel;
                      if (u.has_tool_call() && ++tool_calls == 1) {
                        cancel.Cancel("test");
                      }
                      return true;
                    });
    const absl::Time start = absl::Now();
    const absl::Status s = specialist->Analyze(request, sink, cancel);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled))
        << specialist->Card().name();
    EXPECT_EQ(tool_calls, 1) << specialist->Card().name();
    EXPECT_LE(after_cancel, 1) << specialist->Card().name();
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  }
}

}  // namespace
}  // namespace agentstream::specialists
