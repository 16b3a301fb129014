#include "orchestrator/planner.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::SpecialistCard;

bool EndsWith(const std::string& s, const char* suffix) {
  return absl::EndsWith(s, suffix);
}

std::string DisplayName(const SpecialistCard& card) {
  return card.display_name().empty() ? card.name() : card.display_name();
}

// Whether `needle` occurs as a contiguous run of words in `haystack`.
bool ContainsPhrase(const std::vector<std::string>& haystack,
                    const std::vector<std::string>& needle) {
  if (needle.empty() || needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (std::equal(needle.begin(), needle.end(), haystack.begin() + i)) {
      return true;
    }
  }
  return false;
}

std::string TaskFor(const SpecialistCard& card, const std::string& question,
                    const std::vector<std::string>& matched) {
  std::string task = absl::StrCat("Analyse this request as ", DisplayName(card),
                                  ": \"", question, "\".");
  if (!matched.empty()) {
    absl::StrAppend(&task, " It mentions ", absl::StrJoin(matched, ", "), ".");
  }
  if (!card.skills().empty()) {
    absl::StrAppend(&task, " Bring your skills to it: ",
                    absl::StrJoin(card.skills(), ", "), ".");
  }
  return task;
}

}  // namespace

std::string StemWord(const std::string& raw) {
  std::string w = absl::AsciiStrToLower(raw);
  // Only ever strip one suffix, and keep at least three letters, so that the
  // same function applied to keyword and question meets in the middle.
  auto strip = [&w](size_t n, const char* add = "") {
    if (w.size() - n >= 3) {
      w = w.substr(0, w.size() - n) + add;
      return true;
    }
    return false;
  };
  if (EndsWith(w, "'s")) w.resize(w.size() - 2);
  if (EndsWith(w, "ations") && strip(6, "ate")) return w;
  if (EndsWith(w, "ation") && strip(5, "ate")) return w;
  if (EndsWith(w, "ings") && strip(4)) return w;
  if (EndsWith(w, "ing") && strip(3)) return w;
  if (EndsWith(w, "ies") && strip(3, "y")) {
    // fall through to the "y" rule below
  } else if (EndsWith(w, "sses") && strip(2)) {
    return w;
  } else if (EndsWith(w, "ed") && strip(2)) {
    return w;
  } else if (EndsWith(w, "ly") && strip(2)) {
    return w;
  } else if (EndsWith(w, "es") && !EndsWith(w, "ses") && strip(2)) {
    // "exposures" -> "exposur", "exposure" -> "exposur" below.
  } else if (EndsWith(w, "s") && !EndsWith(w, "ss") && strip(1)) {
  }
  if (EndsWith(w, "y") || EndsWith(w, "e")) strip(1);
  return w;
}

std::vector<std::string> StemmedWords(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(StemWord(cur));
    cur.clear();
  };
  for (char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      cur.push_back(c);
    } else if (c == '\'' && !cur.empty()) {
      cur.push_back(c);
    } else {
      flush();
    }
  }
  flush();
  return words;
}

absl::StatusOr<Plan> PlanQuestion(const std::string& question,
                                  const std::vector<SpecialistCard>& cards,
                                  const std::vector<std::string>& forced) {
  if (absl::StripAsciiWhitespace(question).empty()) {
    return absl::InvalidArgumentError("the message is empty");
  }
  if (question.size() > kMaxQuestionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the message is ", question.size(),
                     " bytes; the limit is ", kMaxQuestionBytes));
  }

  Plan plan;
  if (!forced.empty()) {
    std::set<std::string> wanted;
    for (const std::string& name : forced) {
      const std::string lower =
          absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
      if (lower.empty()) continue;
      bool known =
          std::any_of(cards.begin(), cards.end(), [&](const SpecialistCard& c) {
            return absl::AsciiStrToLower(c.name()) == lower;
          });
      if (!known) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown specialist \"", name, "\""));
      }
      wanted.insert(lower);
    }
    if (!wanted.empty()) {
      std::vector<std::string> names;
      for (const SpecialistCard& card : cards) {
        if (wanted.count(absl::AsciiStrToLower(card.name())) == 0) continue;
        plan.specialists.push_back({card, TaskFor(card, question, {}), {}});
        names.push_back(card.name());
      }
      plan.reasoning = absl::StrCat(
          "The request names its specialists: ", absl::StrJoin(names, ", "),
          ". I will ask exactly those.");
      return plan;
    }
  }

  if (cards.empty()) {
    return absl::UnavailableError("no specialist is available");
  }

  const std::vector<std::string> words = StemmedWords(question);
  std::vector<std::string> reasons;
  std::vector<std::string> skipped;
  for (const SpecialistCard& card : cards) {
    if (card.explicit_only()) continue;
    std::vector<std::string> matched;
    std::set<std::vector<std::string>> matched_stems;  // "trend" = "trends"
    for (const std::string& keyword : card.keywords()) {
      std::vector<std::string> stems = StemmedWords(keyword);
      if (ContainsPhrase(words, stems) && matched_stems.insert(stems).second) {
        matched.push_back(keyword);
      }
    }
    if (matched.empty()) {
      skipped.push_back(card.name());
      continue;
    }
    reasons.push_back(
        absl::StrCat(card.name(), " (", absl::StrJoin(matched, ", "), ")"));
    plan.specialists.push_back(
        {card, TaskFor(card, question, matched), matched});
  }

  if (!plan.specialists.empty()) {
    plan.reasoning =
        absl::StrCat("The question touches on what these specialists cover: ",
                     absl::StrJoin(reasons, "; "), ".");
    if (!skipped.empty()) {
      absl::StrAppend(&plan.reasoning,
                      " Not needed: ", absl::StrJoin(skipped, ", "),
                      " (nothing in the question matches their skills).");
    }
    return plan;
  }

  // Nothing matched: start from the data, or ask everyone who is not
  // explicit-only.
  for (const SpecialistCard& card : cards) {
    if (card.name() == "DataAnalyst" && !card.explicit_only()) {
      plan.specialists.push_back({card, TaskFor(card, question, {}), {}});
      plan.reasoning =
          "The question matches no specialist's keywords, so I start with "
          "DataAnalyst for an overview of the data.";
      return plan;
    }
  }
  std::vector<std::string> names;
  for (const SpecialistCard& card : cards) {
    if (card.explicit_only()) continue;
    plan.specialists.push_back({card, TaskFor(card, question, {}), {}});
    names.push_back(card.name());
  }
  if (plan.specialists.empty()) {
    return absl::UnavailableError(
        "no specialist can be planned without naming one");
  }
  plan.reasoning = absl::StrCat(
      "The question matches no specialist's keywords, so I ask all of them: ",
      absl::StrJoin(names, ", "), ".");
  return plan;
}

}  // namespace agentstream::orchestrator
