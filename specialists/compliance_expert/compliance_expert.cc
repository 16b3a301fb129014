#include "specialists/compliance_expert/compliance_expert.h"

#include <cmath>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "specialists/compliance_expert/aml_rules.h"
#include "specialists/compliance_expert/pii.h"
#include "specialists/data/data_query_tool.h"
#include "specialists/data/data_scope.h"
#include "specialists/data/sql.h"
#include "specialists/data/transactions.h"

namespace agentstream::specialists {
namespace {

using data::AsInt;
using data::AsString;
using data::FormatMoney;
using data::FormatTimestamp;
using data::Money;
using data::SqlValue;

constexpr int64_t kOpsPerRow = 12;
constexpr size_t kMaxListedIds = 50;
constexpr size_t kMaxListedFindings = 20;

std::vector<RuleEvent> ToEvents(const std::vector<data::SqlRow>& rows) {
  std::vector<RuleEvent> events;
  events.reserve(rows.size());
  for (const data::SqlRow& r : rows) {
    events.push_back({AsInt(r[0]), AsInt(r[1]), AsString(r[2]), AsInt(r[3])});
  }
  return events;
}

nlohmann::json ClustersJson(const std::vector<RuleCluster>& clusters) {
  nlohmann::json out = nlohmann::json::array();
  for (const RuleCluster& c : clusters) {
    if (out.size() >= kMaxListedFindings) break;
    std::vector<int64_t> ids(
        c.ids.begin(), c.ids.begin() + std::min(c.ids.size(), kMaxListedIds));
    out.push_back({{"account", c.account},
                   {"count", c.ids.size()},
                   {"total", Money(c.total_cents)},
                   {"first", FormatTimestamp(c.first_ts)},
                   {"last", FormatTimestamp(c.last_ts)},
                   {"hours", std::round((c.last_ts - c.first_ts) / 36.0) / 100},
                   {"transaction_ids", ids}});
  }
  return out;
}

}  // namespace

SpecialistCard ComplianceExpert::Card() const {
  SpecialistCard card;
  card.set_name("ComplianceExpert");
  card.set_display_name("Compliance Expert");
  card.set_icon("\xE2\x9A\x96\xEF\xB8\x8F");  // U+2696 scales
  card.set_description(
      "Checks anti-money-laundering rules (structuring under the 10,000 "
      "reporting threshold, velocity bursts, high-risk jurisdictions) and "
      "finds personal data (e-mail, phone, card numbers, IBAN) in the "
      "request, masking it in everything it reports.");
  for (const char* skill :
       {"AML rules", "structuring detection", "velocity checks",
        "sanctions and high-risk "
        "jurisdictions",
        "PII detection and masking"}) {
    card.add_skills(skill);
  }
  for (const char* keyword : {"aml",           "compliance",
                              "compliant",     "structuring",
                              "smurfing",      "sanctions",
                              "sanctioned",    "pii",
                              "kyc",           "money laundering",
                              "laundering",    "suspicious",
                              "fraud",         "velocity",
                              "jurisdiction",  "jurisdictions",
                              "regulatory",    "reporting",
                              "threshold",     "privacy",
                              "personal data", "gdpr"}) {
    card.add_keywords(keyword);
  }
  card.set_version("1.0.0");
  return card;
}

absl::Status ComplianceExpert::Analyze(const AnalyzeRequest& request,
                                       UpdateSink& sink,
                                       const CancelToken& cancel) {
  sink.Progress(0, "Scanning the request for personal data");
  // 1. PII in the request text. Nothing below echoes the raw text.
  const std::vector<PiiFinding> in_question = FindPii(request.question());
  const std::vector<PiiFinding> in_task = FindPii(request.task());
  nlohmann::json pii = nlohmann::json::array();
  std::map<std::string, int> by_type;
  for (const auto& [field, findings] :
       {std::pair<const char*, const std::vector<PiiFinding>*>{"question",
                                                               &in_question},
        {"task", &in_task}}) {
    for (const PiiFinding& f : *findings) {
      pii.push_back({{"type", f.type}, {"field", field}, {"masked", f.masked}});
      ++by_type[f.type];
    }
  }
  const std::string masked_question = MaskPii(request.question(), in_question);
  if (pii.empty()) {
    sink.Thinking(
        "No personal data (e-mail, phone, card number, IBAN) in "
        "the request.");
  } else {
    std::string kinds;
    for (const auto& [type, n] : by_type) {
      absl::StrAppend(&kinds, kinds.empty() ? "" : ", ", n, " ", type);
    }
    sink.Thinking(absl::StrCat("The request contains personal data (", kinds,
                               "). I mask it in everything I report: \"",
                               masked_question, "\"."));
  }
  sink.PartialResult({{"rule", "pii"},
                      {"count", pii.size()},
                      {"findings", pii},
                      {"masked_question", masked_question}});
  sink.Progress(10, "Personal data checked");
  if (cancel.cancelled()) return absl::CancelledError();

  absl::StatusOr<data::ScopedData> scoped =
      data::OpenScopedData(db_path_, request);
  if (!scoped.ok()) return scoped.status();
  const data::DataScope* scope = &scoped->scope;
  sqlite3* const db = scoped->db.get();
  sink.Thinking(absl::StrCat(
      "Scope: ", scope->description,
      ". Rules: structuring (3 or more cash deposits of 8,000 to 9,999.99 "
      "within 7 days), velocity (10 or more transactions within 24 hours), "
      "and transactions with high-risk jurisdictions (",
      data::HighRiskCountriesSqlList(), ")."));
  data::DataQueryTool tool(db, sink, cancel);
  const int64_t estimate = scope->bounds.rows * kOpsPerRow;

  // 2. Structuring.
  std::vector<SqlValue> params;
  std::string where = scope->Where(&params);
  params.push_back(kStructuringMinCents);
  params.push_back(kStructuringMaxCents);
  absl::StatusOr<std::vector<data::SqlRow>> rows = tool.Run(
      "structuring_candidates",
      absl::StrCat("SELECT id, ts, account, amount_cents FROM transactions "
                   "WHERE ",
                   where,
                   " AND channel = 'cash' AND direction = 'credit' AND "
                   "amount_cents >= ? AND amount_cents < ? "
                   "ORDER BY account, ts, id"),
      params, 10, 40, estimate);
  if (!rows.ok()) return rows.status();
  const std::vector<RuleCluster> structuring = FindClusters(
      ToEvents(*rows), kStructuringWindowSeconds, kStructuringMinCount);
  sink.PartialResult({{"rule", "structuring"},
                      {"scope", scope->ToJson()},
                      {"candidates", rows->size()},
                      {"matches", structuring.size()},
                      {"findings", ClustersJson(structuring)}});
  sink.Progress(40, "Structuring rule checked");
  if (structuring.empty()) {
    sink.Thinking(absl::StrCat(rows->size(),
                               " cash deposits just under 10,000, but no "
                               "cluster of 3 within 7 days: no structuring."));
  } else {
    const RuleCluster& c = structuring.front();
    sink.Thinking(absl::StrCat(
        "Structuring: ", structuring.size(), " cluster(s). ", c.account,
        " made ", c.ids.size(), " cash deposits totalling ",
        FormatMoney(c.total_cents), " between ", FormatTimestamp(c.first_ts),
        " and ", FormatTimestamp(c.last_ts),
        ", each just under the 10,000 reporting threshold."));
  }

  // 3. Velocity.
  params.clear();
  where = scope->Where(&params);
  rows = tool.Run("velocity_events",
                  absl::StrCat("SELECT id, ts, account, amount_cents FROM "
                               "transactions WHERE ",
                               where, " ORDER BY account, ts, id"),
                  params, 40, 70, estimate);
  if (!rows.ok()) return rows.status();
  const std::vector<RuleCluster> velocity =
      FindClusters(ToEvents(*rows), kVelocityWindowSeconds, kVelocityMinCount);
  sink.PartialResult({{"rule", "velocity"},
                      {"transactions_checked", rows->size()},
                      {"matches", velocity.size()},
                      {"findings", ClustersJson(velocity)}});
  sink.Progress(70, "Velocity rule checked");
  if (velocity.empty()) {
    sink.Thinking(
        "No velocity burst (10 or more transactions within 24 "
        "hours on one account).");
  } else {
    const RuleCluster& c = velocity.front();
    sink.Thinking(absl::StrCat(
        "Velocity: ", velocity.size(), " burst(s); e.g. ", c.account, " made ",
        c.ids.size(), " transactions within ",
        std::round((c.last_ts - c.first_ts) / 360.0) / 10, " hours."));
  }

  // 4. High-risk jurisdictions.
  params.clear();
  where = scope->Where(&params);
  rows = tool.Run(
      "high_risk_jurisdictions",
      absl::StrCat("SELECT id, ts, account, counterparty, country, "
                   "direction, amount_cents FROM transactions "
                   "WHERE ",
                   where, " AND country IN (", data::HighRiskCountriesSqlList(),
                   ") ORDER BY ts, id"),
      params, 70, 95, estimate);
  if (!rows.ok()) return rows.status();
  nlohmann::json by_country = nlohmann::json::object();
  nlohmann::json ids = nlohmann::json::array();
  nlohmann::json largest;
  int64_t high_risk_total = 0, largest_cents = 0;
  for (const data::SqlRow& r : *rows) {
    const std::string country = AsString(r[4]);
    const int64_t cents = AsInt(r[6]);
    high_risk_total += cents;
    nlohmann::json& entry = by_country[country];
    if (entry.is_null()) entry = {{"count", 0}, {"total_cents", 0}};
    entry["count"] = entry["count"].get<int64_t>() + 1;
    entry["total_cents"] = entry["total_cents"].get<int64_t>() + cents;
    if (ids.size() < kMaxListedIds) ids.push_back(AsInt(r[0]));
    if (cents > largest_cents) {
      largest_cents = cents;
      largest = {{"id", AsInt(r[0])},
                 {"timestamp", FormatTimestamp(AsInt(r[1]))},
                 {"account", AsString(r[2])},
                 {"counterparty", AsString(r[3])},
                 {"country", country},
                 {"direction", AsString(r[5])},
                 {"amount", Money(cents)}};
    }
  }
  for (auto& [country, entry] : by_country.items()) {
    entry["total"] = Money(entry["total_cents"].get<int64_t>());
    entry.erase("total_cents");
  }
  sink.PartialResult({{"rule", "high_risk_jurisdictions"},
                      {"countries", data::HighRiskCountries()},
                      {"matches", rows->size()},
                      {"total", Money(high_risk_total)},
                      {"by_country", by_country},
                      {"largest", largest},
                      {"transaction_ids", ids}});
  sink.Progress(95, "High-risk jurisdictions checked");

  // 5. Summary.
  const size_t alerts =
      structuring.size() + velocity.size() + (rows->empty() ? 0 : 1);
  const std::string level = !structuring.empty() || largest_cents >= 1000000
                                ? "high"
                            : alerts > 0 ? "medium"
                                         : "low";
  std::string summary = absl::StrCat(
      "Compliance review of ", scope->description, ": ", structuring.size(),
      " structuring cluster(s), ", velocity.size(), " velocity burst(s), ",
      rows->size(), " transaction(s) with high-risk jurisdictions (",
      FormatMoney(high_risk_total), ")");
  if (!pii.empty()) {
    absl::StrAppend(&summary, "; ", pii.size(),
                    " item(s) of personal data in the request, masked");
  }
  absl::StrAppend(&summary, ". Alert level: ", level, ".");
  sink.Thinking(summary);
  sink.PartialResult({{"rule", "summary"},
                      {"alerts", alerts},
                      {"level", level},
                      {"structuring", structuring.size()},
                      {"velocity", velocity.size()},
                      {"high_risk_transactions", rows->size()},
                      {"pii_found", pii.size()},
                      {"summary", summary}});
  sink.Progress(100, "Done");
  return absl::OkStatus();
}

}  // namespace agentstream::specialists
