#include "specialists/risk_analyst/risk_analyst.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "specialists/data/data_query_tool.h"
#include "specialists/data/data_scope.h"
#include "specialists/data/sql.h"
#include "specialists/data/transactions.h"

namespace agentstream::specialists {
namespace {

using data::AsInt;
using data::AsString;
using data::FormatMoney;
using data::Money;
using data::SqlValue;

constexpr int64_t kOpsPerRow = 12;

double Round(double v, double scale) { return std::round(v * scale) / scale; }

}  // namespace

RiskScore ScoreRisk(const RiskInputs& in) {
  RiskScore out;
  if (in.transactions == 0) {
    out.level = "low";
    out.components = {{"volatility", 0.0},
                      {"concentration", 0.0},
                      {"high_risk_exposure", 0.0},
                      {"cash", 0.0}};
    return out;
  }
  const double volatility = 2.5 * std::min(1.0, in.outflow_cv / 1.0);
  const double concentration = 2.5 * std::min(1.0, in.hhi / 0.5);
  const double high_risk = 3.0 * std::min(1.0, in.high_risk_share / 0.10);
  const double cash = 2.0 * std::min(1.0, in.cash_share / 0.30);
  out.score = Round(
      std::clamp(volatility + concentration + high_risk + cash, 0.0, 10.0), 10);
  out.confidence =
      Round(0.6 * std::min(1.0, static_cast<double>(in.transactions) / 200.0) +
                0.4 * std::min(1.0, static_cast<double>(in.months) / 6.0),
            100);
  out.level = out.score < 4 ? "low" : out.score < 7 ? "medium" : "high";
  out.components = {{"volatility", Round(volatility, 100)},
                    {"concentration", Round(concentration, 100)},
                    {"high_risk_exposure", Round(high_risk, 100)},
                    {"cash", Round(cash, 100)}};
  return out;
}

SpecialistCard RiskAnalyst::Card() const {
  SpecialistCard card;
  card.set_name("RiskAnalyst");
  card.set_display_name("Risk Analyst");
  card.set_icon("\xE2\x9A\xA0\xEF\xB8\x8F");  // U+26A0 warning sign
  card.set_description(
      "Assesses financial risk: volatility of monthly flows, concentration "
      "over counterparties (HHI), exposure by country, category and "
      "channel; a risk score from 0 to 10 with a confidence.");
  for (const char* skill :
       {"volatility", "concentration (HHI)", "exposure", "risk scoring"}) {
    card.add_skills(skill);
  }
  for (const char* keyword :
       {"risk", "risky", "volatility", "volatile", "exposure", "exposed",
        "concentration", "concentrated", "score", "rating", "assess",
        "assessment", "hhi", "country", "countries", "jurisdiction",
        "counterparty", "stability", "credit risk"}) {
    card.add_keywords(keyword);
  }
  card.set_version("1.0.0");
  return card;
}

absl::Status RiskAnalyst::Analyze(const AnalyzeRequest& request,
                                  UpdateSink& sink, const CancelToken& cancel) {
  sink.Progress(0, "Opening the transactions database");
  absl::StatusOr<data::ScopedData> scoped =
      data::OpenScopedData(db_path_, request);
  if (!scoped.ok()) return scoped.status();
  const data::DataScope* scope = &scoped->scope;
  sqlite3* const db = scoped->db.get();
  sink.Thinking(absl::StrCat(
      "Scope: ", scope->description,
      ". I will measure how volatile the monthly outflow is, how "
      "concentrated payments are over counterparties, and where the money "
      "is exposed (countries, categories, channels), then score the risk."));
  sink.Progress(5, "Scope resolved");
  data::DataQueryTool tool(db, sink, cancel);
  const int64_t estimate = scope->bounds.rows * kOpsPerRow;

  // 1. Volatility of monthly flows.
  std::vector<SqlValue> params;
  std::string where = scope->Where(&params);
  absl::StatusOr<std::vector<data::SqlRow>> rows = tool.Run(
      "monthly_flows",
      absl::StrCat(
          "SELECT strftime('%Y-%m', ts, 'unixepoch') AS month, COUNT(*), "
          "COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount_cents END), "
          "0), "
          "COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount_cents END), "
          "0) FROM transactions WHERE ",
          where, " GROUP BY month ORDER BY month"),
      params, 5, 30, estimate);
  if (!rows.ok()) return rows.status();
  RiskInputs inputs;
  std::vector<double> outflows;
  nlohmann::json monthly = nlohmann::json::array();
  for (const data::SqlRow& r : *rows) {
    inputs.transactions += AsInt(r[1]);
    outflows.push_back(Money(AsInt(r[3])));
    monthly.push_back({{"month", AsString(r[0])},
                       {"inflow", Money(AsInt(r[2]))},
                       {"outflow", Money(AsInt(r[3]))}});
  }
  inputs.months = static_cast<int64_t>(outflows.size());
  double mean = 0, stddev = 0;
  if (!outflows.empty()) {
    for (double v : outflows) mean += v;
    mean /= static_cast<double>(outflows.size());
    for (double v : outflows) stddev += (v - mean) * (v - mean);
    stddev = std::sqrt(stddev / static_cast<double>(outflows.size()));
  }
  inputs.outflow_cv = mean > 0 ? stddev / mean : 0;
  sink.PartialResult(
      {{"part", "volatility"},
       {"scope", scope->ToJson()},
       {"transactions", inputs.transactions},
       {"months", inputs.months},
       {"mean_monthly_outflow", Round(mean, 100)},
       {"stddev_monthly_outflow", Round(stddev, 100)},
       {"coefficient_of_variation", Round(inputs.outflow_cv, 1e4)},
       {"monthly", monthly}});
  sink.Progress(30, "Volatility measured");
  if (inputs.transactions == 0) {
    sink.Thinking(absl::StrCat("No transactions match ", scope->description,
                               ": there is nothing to score."));
    const RiskScore score = ScoreRisk(inputs);
    sink.PartialResult({{"part", "score"},
                        {"risk_score", score.score},
                        {"confidence", score.confidence},
                        {"level", score.level},
                        {"components", score.components},
                        {"transactions", 0},
                        {"months", 0},
                        {"summary", "No transactions in scope."}});
    sink.Progress(100, "Done");
    return absl::OkStatus();
  }
  sink.Thinking(absl::StrCat(
      "Monthly outflow averages ", FormatMoney(std::llround(mean * 100)),
      " with a coefficient of variation of ", Round(inputs.outflow_cv, 100),
      " over ", inputs.months,
      " months. Next: concentration over "
      "counterparties."));

  // 2. Concentration (HHI over debit counterparties).
  params.clear();
  where = scope->Where(&params);
  rows = tool.Run("counterparty_concentration",
                  absl::StrCat("SELECT counterparty, SUM(amount_cents) AS "
                               "volume_cents FROM transactions WHERE ",
                               where,
                               " AND direction = 'debit' GROUP BY counterparty "
                               "ORDER BY volume_cents DESC, counterparty"),
                  params, 30, 55, inputs.transactions * kOpsPerRow);
  if (!rows.ok()) return rows.status();
  int64_t debit_total = 0;
  for (const data::SqlRow& r : *rows) debit_total += AsInt(r[1]);
  std::string top_name;
  double top_share = 0;
  if (debit_total > 0) {
    for (const data::SqlRow& r : *rows) {
      const double share =
          static_cast<double>(AsInt(r[1])) / static_cast<double>(debit_total);
      inputs.hhi += share * share;
    }
    top_name = AsString((*rows)[0][0]);
    top_share = static_cast<double>(AsInt((*rows)[0][1])) /
                static_cast<double>(debit_total);
  }
  sink.PartialResult({{"part", "concentration"},
                      {"counterparties", rows->size()},
                      {"hhi", Round(inputs.hhi, 1e4)},
                      {"top_counterparty", top_name},
                      {"top_share", Round(top_share, 1e4)},
                      {"outflow", Money(debit_total)}});
  sink.Progress(55, "Concentration measured");
  sink.Thinking(absl::StrCat(
      "Payments go to ", rows->size(), " counterparties; HHI ",
      Round(inputs.hhi, 1e3),
      top_name.empty() ? std::string()
                       : absl::StrCat(", the largest being ", top_name, " (",
                                      Round(top_share * 100, 10), "%)"),
      ". Next: exposure by country, category and channel."));

  // 3. Exposure by country, category and channel (volume both ways).
  nlohmann::json exposure = {{"part", "exposure"}};
  int64_t volume = 0, high_risk_volume = 0, cash_volume = 0;
  const char* const kDimensions[] = {"country", "category", "channel"};
  int step = 0;
  for (const char* dimension : kDimensions) {
    params.clear();
    where = scope->Where(&params);
    const int from = 55 + step * 13;
    rows = tool.Run(
        absl::StrCat("exposure_by_", dimension),
        absl::StrCat("SELECT ", dimension,
                     ", COUNT(*), SUM(amount_cents) AS volume_cents FROM "
                     "transactions WHERE ",
                     where, " GROUP BY ", dimension,
                     " ORDER BY volume_cents DESC, ", dimension),
        params, from, from + 13, inputs.transactions * kOpsPerRow);
    if (!rows.ok()) return rows.status();
    int64_t total = 0;
    for (const data::SqlRow& r : *rows) total += AsInt(r[2]);
    volume = total;
    nlohmann::json items = nlohmann::json::array();
    for (const data::SqlRow& r : *rows) {
      const std::string key = AsString(r[0]);
      const int64_t v = AsInt(r[2]);
      nlohmann::json item = {
          {dimension, key},
          {"count", AsInt(r[1])},
          {"volume", Money(v)},
          {"share",
           total > 0 ? Round(static_cast<double>(v) / total, 1e4) : 0}};
      if (step == 0) {
        const bool risky = data::IsHighRiskCountry(key);
        item["high_risk"] = risky;
        if (risky) high_risk_volume += v;
      }
      if (step == 2 && key == "cash") cash_volume = v;
      if (items.size() < 10 || (step == 0 && data::IsHighRiskCountry(key))) {
        items.push_back(std::move(item));
      }
    }
    exposure[absl::StrCat("by_", dimension)] = std::move(items);
    sink.Progress(from + 13, absl::StrCat("Exposure by ", dimension));
    ++step;
  }
  inputs.high_risk_share =
      volume > 0 ? static_cast<double>(high_risk_volume) / volume : 0;
  inputs.cash_share =
      volume > 0 ? static_cast<double>(cash_volume) / volume : 0;
  exposure["volume"] = Money(volume);
  exposure["high_risk_volume"] = Money(high_risk_volume);
  exposure["high_risk_share"] = Round(inputs.high_risk_share, 1e4);
  exposure["cash_share"] = Round(inputs.cash_share, 1e4);
  sink.PartialResult(exposure);
  sink.Thinking(absl::StrCat(
      Round(inputs.high_risk_share * 100, 10),
      "% of the volume involves high-risk jurisdictions and ",
      Round(inputs.cash_share * 100, 10), "% is cash. Scoring now."));

  // 4. Score.
  const RiskScore score = ScoreRisk(inputs);
  const std::string summary = absl::StrCat(
      "Risk ", score.score, "/10 (", score.level, ", confidence ",
      score.confidence, ") for ", scope->description, ": volatility CV ",
      Round(inputs.outflow_cv, 100), ", HHI ", Round(inputs.hhi, 100),
      ", high-risk exposure ", Round(inputs.high_risk_share * 100, 10),
      "%, cash ", Round(inputs.cash_share * 100, 10), "%.");
  sink.Thinking(summary);
  sink.PartialResult({{"part", "score"},
                      {"risk_score", score.score},
                      {"confidence", score.confidence},
                      {"level", score.level},
                      {"components", score.components},
                      {"transactions", inputs.transactions},
                      {"months", inputs.months},
                      {"summary", summary}});
  sink.Progress(100, "Done");
  return absl::OkStatus();
}

}  // namespace agentstream::specialists
