#include "specialists/data_analyst/data_analyst.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "specialists/data/data_query_tool.h"
#include "specialists/data/data_scope.h"
#include "specialists/data/sql.h"

namespace agentstream::specialists {
namespace {

using data::AsDouble;
using data::AsInt;
using data::AsString;
using data::FormatMoney;
using data::Money;
using data::SqlValue;

// Rough SQLite VM steps per scanned row, for in-query progress.
constexpr int64_t kOpsPerRow = 12;

}  // namespace

SpecialistCard DataAnalyst::Card() const {
  SpecialistCard card;
  card.set_name("DataAnalyst");
  card.set_display_name("Data Analyst");
  card.set_icon("\xF0\x9F\x93\x8A");  // U+1F4CA bar chart
  card.set_description(
      "Runs SQL over the transactions data set: totals (inflow, outflow, "
      "net), monthly trend, top counterparties and outliers against each "
      "account's own history.");
  for (const char* skill : {"totals", "monthly trend", "top counterparties",
                            "outlier detection", "sql"}) {
    card.add_skills(skill);
  }
  for (const char* keyword :
       {"data",           "totals",   "total",    "trend",
        "trends",         "spending", "spend",    "transactions",
        "transaction",    "analysis", "analyze",  "analyse",
        "inflow",         "outflow",  "income",   "cash flow",
        "counterparties", "monthly",  "outliers", "anomalies",
        "statistics",     "summary",  "account",  "history"}) {
    card.add_keywords(keyword);
  }
  card.set_version("1.0.0");
  return card;
}

absl::Status DataAnalyst::Analyze(const AnalyzeRequest& request,
                                  UpdateSink& sink, const CancelToken& cancel) {
  sink.Progress(0, "Opening the transactions database");
  absl::StatusOr<data::ScopedData> scoped =
      data::OpenScopedData(db_path_, request);
  if (!scoped.ok()) return scoped.status();
  const data::DataScope* scope = &scoped->scope;
  sqlite3* const db = scoped->db.get();
  sink.Thinking(absl::StrCat("Scope: ", scope->description,
                             ". The data set has ", scope->bounds.rows,
                             " transactions; I will run four queries: totals, "
                             "monthly trend, top counterparties, outliers."));
  sink.Progress(5, "Scope resolved");
  data::DataQueryTool tool(db, sink, cancel);

  // 1. Totals.
  std::vector<SqlValue> params;
  std::string where = scope->Where(&params);
  const std::string totals_sql = absl::StrCat(
      "SELECT COUNT(*) AS count, "
      "COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount_cents END), 0) "
      "AS inflow_cents, "
      "COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount_cents END), 0) "
      "AS outflow_cents, "
      "COUNT(DISTINCT account) AS accounts "
      "FROM transactions WHERE ",
      where);
  sink.Progress(5, "Computing totals");
  absl::StatusOr<std::vector<data::SqlRow>> rows = tool.Run(
      "totals", totals_sql, params, 5, 30, scope->bounds.rows * kOpsPerRow);
  if (!rows.ok()) return rows.status();
  const int64_t count = AsInt((*rows)[0][0]);
  const int64_t inflow = AsInt((*rows)[0][1]);
  const int64_t outflow = AsInt((*rows)[0][2]);
  const int64_t accounts = AsInt((*rows)[0][3]);
  nlohmann::json totals = {{"query", "totals"},
                           {"scope", scope->ToJson()},
                           {"count", count},
                           {"accounts", accounts},
                           {"inflow", Money(inflow)},
                           {"outflow", Money(outflow)},
                           {"net", Money(inflow - outflow)},
                           {"inflow_cents", inflow},
                           {"outflow_cents", outflow},
                           {"net_cents", inflow - outflow}};
  sink.PartialResult(totals);
  sink.Progress(30, "Totals computed");
  if (count == 0) {
    sink.Thinking(absl::StrCat("No transactions match ", scope->description,
                               "; nothing more to analyse."));
    sink.PartialResult({{"query", "summary"},
                        {"summary", absl::StrCat("No transactions for ",
                                                 scope->description, ".")},
                        {"count", 0}});
    sink.Progress(100, "Done");
    return absl::OkStatus();
  }
  sink.Thinking(absl::StrCat(
      count, " transactions: inflow ", FormatMoney(inflow), ", outflow ",
      FormatMoney(outflow), ", net ", FormatMoney(inflow - outflow),
      ". Next: how the flows move month by month."));

  // 2. Monthly trend.
  params.clear();
  where = scope->Where(&params);
  const std::string trend_sql = absl::StrCat(
      "SELECT strftime('%Y-%m', ts, 'unixepoch') AS month, COUNT(*) AS count, "
      "COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount_cents END), 0) "
      "AS inflow_cents, "
      "COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount_cents END), 0) "
      "AS outflow_cents "
      "FROM transactions WHERE ",
      where, " GROUP BY month ORDER BY month");
  rows =
      tool.Run("monthly_trend", trend_sql, params, 30, 55, count * kOpsPerRow);
  if (!rows.ok()) return rows.status();
  nlohmann::json months = nlohmann::json::array();
  std::vector<double> outflows;
  for (const data::SqlRow& r : *rows) {
    const int64_t in = AsInt(r[2]);
    const int64_t out = AsInt(r[3]);
    outflows.push_back(Money(out));
    months.push_back({{"month", AsString(r[0])},
                      {"count", AsInt(r[1])},
                      {"inflow", Money(in)},
                      {"outflow", Money(out)},
                      {"net", Money(in - out)}});
  }
  // Direction of outflow: the mean of the last third against the first.
  std::string direction = "flat";
  if (outflows.size() >= 2) {
    const size_t third = std::max<size_t>(1, outflows.size() / 3);
    double first = 0, last = 0;
    for (size_t i = 0; i < third; ++i) {
      first += outflows[i];
      last += outflows[outflows.size() - 1 - i];
    }
    if (last > first * 1.1) direction = "rising";
    if (last < first * 0.9) direction = "falling";
  }
  sink.PartialResult({{"query", "monthly_trend"},
                      {"months", months},
                      {"outflow_trend", direction}});
  sink.Progress(55, "Monthly trend computed");
  sink.Thinking(absl::StrCat(rows->size(), " months with activity; outflow is ",
                             direction,
                             ". Next: who the money goes to and comes from."));

  // 3. Top counterparties by volume (both directions).
  params.clear();
  where = scope->Where(&params);
  const std::string top_sql = absl::StrCat(
      "SELECT counterparty, country, COUNT(*) AS count, "
      "COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount_cents END), 0) "
      "AS inflow_cents, "
      "COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount_cents END), 0) "
      "AS outflow_cents, SUM(amount_cents) AS volume_cents "
      "FROM transactions WHERE ",
      where,
      " GROUP BY counterparty, country ORDER BY volume_cents DESC, "
      "counterparty LIMIT 5");
  rows = tool.Run("top_counterparties", top_sql, params, 55, 80,
                  count * kOpsPerRow);
  if (!rows.ok()) return rows.status();
  nlohmann::json top = nlohmann::json::array();
  const int64_t volume = inflow + outflow;
  for (const data::SqlRow& r : *rows) {
    const int64_t v = AsInt(r[5]);
    top.push_back(
        {{"counterparty", AsString(r[0])},
         {"country", AsString(r[1])},
         {"count", AsInt(r[2])},
         {"inflow", Money(AsInt(r[3]))},
         {"outflow", Money(AsInt(r[4]))},
         {"volume", Money(v)},
         {"share", volume > 0 ? std::round(1e4 * v / volume) / 1e4 : 0.0}});
  }
  sink.PartialResult(
      {{"query", "top_counterparties"}, {"counterparties", top}});
  sink.Progress(80, "Top counterparties found");
  if (!top.empty()) {
    sink.Thinking(absl::StrCat(
        "The largest counterparty is ",
        top[0]["counterparty"].get<std::string>(), " with ",
        std::round(top[0]["share"].get<double>() * 1000) / 10,
        "% of the volume. Last: transactions far above the account's own "
        "history (more than 3 standard deviations above its mean amount)."));
  }

  // 4. Outliers against each account's own history (all its transactions).
  params.clear();
  std::string stats_filter;
  if (scope->scope.account.has_value()) {
    stats_filter = " WHERE account = ?";
    params.push_back(*scope->scope.account);
  }
  where = scope->Where(&params, "t.");
  const std::string outlier_sql = absl::StrCat(
      "WITH stats AS (SELECT account, COUNT(*) AS n, AVG(amount_cents) AS "
      "mean, AVG(amount_cents * CAST(amount_cents AS REAL)) - "
      "AVG(amount_cents) * AVG(amount_cents) AS var FROM transactions",
      stats_filter,
      " GROUP BY account) "
      "SELECT t.id, t.ts, t.account, t.counterparty, t.country, t.channel, "
      "t.direction, t.amount_cents, s.mean, s.var, COUNT(*) OVER () AS total "
      "FROM transactions t JOIN stats s ON s.account = t.account WHERE ",
      where,
      " AND s.n >= 10 AND s.var > 0 AND t.amount_cents > s.mean AND "
      "(t.amount_cents - s.mean) * (t.amount_cents - s.mean) > 9 * s.var "
      "ORDER BY (t.amount_cents - s.mean) * (t.amount_cents - s.mean) / s.var "
      "DESC, t.id LIMIT 10");
  rows = tool.Run(
      "outliers", outlier_sql, params, 80, 98,
      (scope->scope.account.has_value() ? count * 3 : scope->bounds.rows) *
          kOpsPerRow);
  if (!rows.ok()) return rows.status();
  nlohmann::json outliers = nlohmann::json::array();
  int64_t outlier_total = 0;
  for (const data::SqlRow& r : *rows) {
    const double mean = AsDouble(r[8]);
    const double sd = std::sqrt(AsDouble(r[9]));
    outlier_total = AsInt(r[10]);
    outliers.push_back(
        {{"id", AsInt(r[0])},
         {"timestamp", data::FormatTimestamp(AsInt(r[1]))},
         {"account", AsString(r[2])},
         {"counterparty", AsString(r[3])},
         {"country", AsString(r[4])},
         {"channel", AsString(r[5])},
         {"direction", AsString(r[6])},
         {"amount", Money(AsInt(r[7]))},
         {"account_mean", std::round(mean) / 100.0},
         {"z_score", std::round(100 * (AsInt(r[7]) - mean) / sd) / 100}});
  }
  sink.PartialResult({{"query", "outliers"},
                      {"rule",
                       "amount > mean + 3 * stddev of the account's "
                       "own transactions (accounts with >= 10)"},
                      {"count", outlier_total},
                      {"outliers", outliers}});
  sink.Progress(98, "Outliers checked");

  std::string summary = absl::StrCat(
      "For ", scope->description, ": ", count, " transactions, inflow ",
      FormatMoney(inflow), ", outflow ", FormatMoney(outflow), ", net ",
      FormatMoney(inflow - outflow), "; outflow ", direction, " over ",
      months.size(), " months");
  if (!top.empty()) {
    absl::StrAppend(&summary, "; top counterparty ",
                    top[0]["counterparty"].get<std::string>());
  }
  absl::StrAppend(&summary, "; ", outlier_total, " outlier transaction",
                  outlier_total == 1 ? "" : "s");
  if (!outliers.empty()) {
    absl::StrAppend(
        &summary, " (largest ",
        FormatMoney(static_cast<int64_t>(
            std::llround(outliers[0]["amount"].get<double>() * 100))),
        " to ", outliers[0]["counterparty"].get<std::string>(), ")");
  }
  absl::StrAppend(&summary, ".");
  sink.Thinking(summary);
  sink.PartialResult({{"query", "summary"},
                      {"summary", summary},
                      {"count", count},
                      {"inflow", Money(inflow)},
                      {"outflow", Money(outflow)},
                      {"net", Money(inflow - outflow)},
                      {"outliers", outlier_total}});
  sink.Progress(100, "Done");
  return absl::OkStatus();
}

}  // namespace agentstream::specialists
