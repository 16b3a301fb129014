#include "orchestrator/synthesis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace agentstream::orchestrator {
namespace {

using nlohmann::json;

// Figures worth showing, in the order they are shown. Only scalar values
// are taken (lists such as findings stay in the specialist's own updates),
// except `totals`, an object of scalars.
constexpr const char* kWellKnownKeys[] = {"risk_score",
                                          "risk_level",
                                          "level",
                                          "confidence",
                                          "totals",
                                          "count",
                                          "transaction_count",
                                          "transactions",
                                          "accounts",
                                          "inflow",
                                          "outflow",
                                          "net",
                                          "outliers",
                                          "volatility",
                                          "concentration_hhi",
                                          "hhi",
                                          "alerts",
                                          "structuring",
                                          "velocity",
                                          "high_risk_transactions",
                                          "pii_found",
                                          "anomalies"};

const json* Find(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) return nullptr;
  for (const char* key : keys) {
    auto it = obj.find(key);
    if (it != obj.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

// A number without noise: integers as integers, others with two decimals.
std::string FormatNumber(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(std::llround(v)));
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

std::string FormatValue(const json& v) {
  if (v.is_number()) return FormatNumber(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_array()) return absl::StrCat(v.size(), " item(s)");
  if (v.is_object()) return absl::StrCat(v.size(), " field(s)");
  return "n/a";
}

// A list of findings/alerts as short names: each element's rule/type/name,
// or the element itself when it is a string.
std::vector<std::string> FindingNames(const json& list) {
  std::vector<std::string> names;
  if (!list.is_array()) return names;
  for (const json& item : list) {
    if (item.is_string()) {
      names.push_back(item.get<std::string>());
    } else if (const json* n =
                   Find(item, {"rule", "type", "name", "kind", "title"});
               n != nullptr && n->is_string()) {
      names.push_back(n->get<std::string>());
    }
  }
  return names;
}

// A sentence about the money flows, when the result has them (at the top
// level or under `totals`).
std::string FlowSentence(const std::string& name, const json& result) {
  const json* totals = Find(result, {"totals"});
  const json& src =
      (totals != nullptr && totals->is_object()) ? *totals : result;
  std::vector<std::string> parts;
  for (const char* key : {"inflow", "outflow", "net"}) {
    if (const json* v = Find(src, {key}); v != nullptr && v->is_number()) {
      parts.push_back(absl::StrCat(key, " ", FormatValue(*v)));
    }
  }
  if (parts.empty()) return "";
  std::string s = absl::StrCat(name, " found ", absl::StrJoin(parts, ", "));
  if (const json* n = Find(src, {"transaction_count", "count", "transactions"});
      n != nullptr && n->is_number()) {
    absl::StrAppend(&s, " over ", FormatValue(*n), " transactions");
  }
  return s + ".";
}

std::string RiskSentence(const std::string& name, const json& result) {
  const json* score = Find(result, {"risk_score", "score"});
  if (score == nullptr || !score->is_number()) return "";
  std::string s =
      absl::StrCat(name, " rates the risk ", FormatValue(*score), "/10");
  if (const json* level = Find(result, {"risk_level", "level"});
      level != nullptr && level->is_string()) {
    absl::StrAppend(&s, " (", level->get<std::string>(), ")");
  }
  if (const json* c = Find(result, {"confidence"});
      c != nullptr && c->is_number()) {
    absl::StrAppend(&s, " with confidence ", FormatValue(*c));
  }
  return s + ".";
}

std::string FindingsSentence(const std::string& name, const json& result) {
  if (const json* alerts = Find(result, {"alerts"});
      alerts != nullptr && alerts->is_number()) {
    const int64_t n = alerts->get<int64_t>();
    if (n == 0) return absl::StrCat(name, " found no AML issues.");
    return absl::StrCat(name, " raised ", n, " alert(s).");
  }
  const json* list = Find(result, {"findings", "alerts"});
  if (list == nullptr || !list->is_array()) return "";
  if (list->empty()) return absl::StrCat(name, " found no AML issues.");
  std::vector<std::string> names = FindingNames(*list);
  std::string s = absl::StrCat(name, " raised ", list->size(), " finding(s)");
  if (!names.empty()) {
    // Keep the sentence short: distinct names, at most five.
    std::vector<std::string> distinct;
    for (const std::string& n : names) {
      if (std::find(distinct.begin(), distinct.end(), n) == distinct.end()) {
        distinct.push_back(n);
      }
      if (distinct.size() == 5) break;
    }
    absl::StrAppend(&s, ": ", absl::StrJoin(distinct, ", "));
  }
  return s + ".";
}

// The specialist's own one-line summary, when it gives one.
std::string SummarySentence(const std::string& name, const json& result) {
  const json* summary = Find(result, {"summary"});
  if (summary == nullptr || !summary->is_string()) return "";
  std::string s = summary->get<std::string>();
  if (s.empty()) return "";
  if (s.back() != '.') s.push_back('.');
  return absl::StrCat(name, ": ", s);
}

std::string GenericSentence(const std::string& name, const json& figures) {
  std::vector<std::string> parts;
  for (auto it = figures.begin(); it != figures.end(); ++it) {
    if (it.value().is_object()) continue;
    parts.push_back(absl::StrCat(it.key(), " ", FormatValue(it.value())));
    if (parts.size() == 5) break;
  }
  if (parts.empty()) return absl::StrCat(name, " finished without figures.");
  return absl::StrCat(name, " reported ", absl::StrJoin(parts, ", "), ".");
}

std::string OutcomeWord(agentstream::v1::Outcome outcome) {
  switch (outcome) {
    case agentstream::v1::OUTCOME_FAILED:
      return "failed";
    case agentstream::v1::OUTCOME_TIMED_OUT:
      return "timed out";
    case agentstream::v1::OUTCOME_CANCELLED:
      return "cancelled";
    default:
      return "did not finish";
  }
}

}  // namespace

void MergePartialResult(const json& partial, json* merged) {
  if (!merged->is_object()) *merged = json::object();
  if (!partial.is_object()) return;
  for (auto it = partial.begin(); it != partial.end(); ++it) {
    (*merged)[it.key()] = it.value();
  }
}

json KeyFigures(const std::string& /*name*/, const json& result) {
  json figures = json::object();
  if (!result.is_object()) return figures;
  for (const char* key : kWellKnownKeys) {
    auto it = result.find(key);
    if (it == result.end() || it->is_null()) continue;
    if (it->is_primitive() ||
        (std::string(key) == "totals" && it->is_object())) {
      figures[key] = *it;
    }
  }
  if (!figures.empty()) return figures;
  // Unknown vocabulary: its scalar keys, a handful.
  for (auto it = result.begin(); it != result.end(); ++it) {
    if (it.value().is_primitive() && !it.value().is_null()) {
      figures[it.key()] = it.value();
    }
    if (figures.size() == 8) break;
  }
  return figures;
}

Synthesis Synthesize(const std::vector<SpecialistContribution>& contributions,
                     bool cancelled) {
  Synthesis out;
  json specialists = json::object();
  json missing = json::array();
  std::vector<std::string> sentences;
  std::vector<std::string> missing_text;
  bool all_ok = true;

  for (const SpecialistContribution& c : contributions) {
    const bool ok = c.outcome == agentstream::v1::OUTCOME_OK;
    const bool has_summary =
        c.summary_result.is_object() && !c.summary_result.empty();
    json figures =
        KeyFigures(c.name, has_summary ? c.summary_result : c.result);
    if (ok || !figures.empty()) {
      std::vector<std::string> mine;
      if (std::string s = SummarySentence(c.name, c.result); !s.empty()) {
        mine.push_back(std::move(s));
      } else {
        for (std::string s :
             {FlowSentence(c.name, c.result), RiskSentence(c.name, c.result),
              FindingsSentence(c.name, c.result)}) {
          if (!s.empty()) mine.push_back(std::move(s));
        }
      }
      if (mine.empty()) mine.push_back(GenericSentence(c.name, figures));
      for (std::string& s : mine) sentences.push_back(std::move(s));
      specialists[c.name] = std::move(figures);
    }
    if (!ok) {
      all_ok = false;
      missing.push_back(c.name);
      std::string why = OutcomeWord(c.outcome);
      if (!c.error.empty()) absl::StrAppend(&why, ": ", c.error);
      missing_text.push_back(absl::StrCat(c.name, " (", why, ")"));
    }
  }

  std::string answer;
  if (sentences.empty()) {
    answer = cancelled ? "The run was cancelled before any specialist "
                         "reported a result."
                       : "No specialist produced a result, so there is no "
                         "answer.";
  } else {
    answer = absl::StrJoin(sentences, " ");
  }
  if (!missing_text.empty()) {
    absl::StrAppend(&answer, " Missing from this answer: ",
                    absl::StrJoin(missing_text, "; "), ".");
  }

  out.result = json::object();
  out.result["answer"] = answer;
  out.result["specialists"] = std::move(specialists);
  out.result["missing"] = std::move(missing);
  if (cancelled) {
    out.outcome = agentstream::v1::OUTCOME_CANCELLED;
  } else if (all_ok) {
    out.outcome = agentstream::v1::OUTCOME_OK;
  } else {
    out.outcome = agentstream::v1::OUTCOME_PARTIAL;
  }
  return out;
}

std::string SynthesisProgressMessage(const std::vector<std::string>& complete,
                                     const std::vector<std::string>& pending) {
  const size_t total = complete.size() + pending.size();
  std::string s =
      absl::StrCat(complete.size(), " of ", total, " specialists done");
  if (pending.empty()) return s + "; combining their results.";
  return absl::StrCat(s, "; waiting for ", absl::StrJoin(pending, ", "), ".");
}

}  // namespace agentstream::orchestrator
