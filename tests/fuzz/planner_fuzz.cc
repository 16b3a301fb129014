// Fuzz target: the planner (orchestrator/planner.h) against a model of its
// header's rules.
//
// Input: lines (LF-separated), readable so that seeds can be written by hand:
//   Q <text>                                question (Q lines join with LF)
//   C <name>|<display>|<kw>,<kw>|<skill>,<skill>|<x: explicit_only>
//   F <name>                                a forced specialist
// Other lines are ignored. Asserted:
//   - errors: kInvalidArgument for a blank question or an unknown forced
//     name (the message names it), kUnavailable when no card can be planned;
//     nothing else;
//   - with a forced set (any non-blank name): exactly the cards whose names
//     are in it, case-insensitively and trimmed, in card order;
//   - otherwise: a keyword matches when its stemmed words occur in the
//     question's stemmed words, contiguously and in order; the plan is the
//     non-explicit cards with a match, in card order, each with its matching
//     keywords (one per distinct stem sequence); no match: the first
//     non-explicit DataAnalyst alone, else every non-explicit card;
//   - every stem is a non-empty lower-case word no longer than its word;
//   - with UTF-8 inputs (as the orchestrator's gRPC delivers them), each
//     specialist's AnalyzeRequest (question and task) and the reasoning are
//     valid UTF-8 and survive the protobuf wire.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agentstream/v1/specialist.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "orchestrator/planner.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::fuzz::ReferenceUtf8;
using agentstream::v1::SpecialistCard;
using google::protobuf::util::MessageDifferencer;
namespace orch = agentstream::orchestrator;

struct Input {
  std::string question;
  std::vector<SpecialistCard> cards;
  std::vector<std::string> forced;
};

// absl::string_view: Debian's Abseil has its own (not std::string_view).
Input ParseInput(absl::string_view text) {
  Input in;
  bool first_q = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() < 2 || line[1] != ' ') continue;
    const absl::string_view rest = line.substr(2);
    if (line[0] == 'Q') {
      if (!first_q) in.question.push_back('\n');
      in.question.append(rest.data(), rest.size());
      first_q = false;
    } else if (line[0] == 'F') {
      in.forced.emplace_back(rest);
    } else if (line[0] == 'C') {
      std::vector<absl::string_view> parts = absl::StrSplit(rest, '|');
      parts.resize(5);
      SpecialistCard card;
      card.set_name(std::string(parts[0]));
      card.set_display_name(std::string(parts[1]));
      for (absl::string_view kw : absl::StrSplit(parts[2], ',')) {
        if (!kw.empty()) card.add_keywords(std::string(kw));
      }
      for (absl::string_view skill : absl::StrSplit(parts[3], ',')) {
        if (!skill.empty()) card.add_skills(std::string(skill));
      }
      card.set_explicit_only(parts[4] == "x");
      in.cards.push_back(std::move(card));
    }
  }
  return in;
}

bool ContainsRun(const std::vector<std::string>& hay,
                 const std::vector<std::string>& needle) {
  if (needle.empty()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    bool all = true;
    for (size_t k = 0; k < needle.size() && all; ++k) {
      all = hay[i + k] == needle[k];
    }
    if (all) return true;
  }
  return false;
}

std::string Lower(absl::string_view s) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(s));
}

// The model's plan: indexes into `cards` with their matched keywords.
struct Expected {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::vector<size_t> cards;
  std::vector<std::vector<std::string>> matched;
  std::string unknown;  // The first unknown forced name.
};

Expected Model(const Input& in) {
  Expected e;
  if (absl::StripAsciiWhitespace(in.question).empty() ||
      in.question.size() > orch::kMaxQuestionBytes) {
    e.code = absl::StatusCode::kInvalidArgument;
    return e;
  }
  std::set<std::string> wanted;
  for (const std::string& name : in.forced) {
    if (Lower(name).empty()) continue;
    // The forced name is trimmed, the card's name is not.
    bool known = false;
    for (const auto& card : in.cards) {
      known |= absl::AsciiStrToLower(card.name()) == Lower(name);
    }
    if (!known) {
      e.code = absl::StatusCode::kInvalidArgument;
      e.unknown = name;
      return e;
    }
    wanted.insert(Lower(name));
  }
  if (!wanted.empty()) {
    for (size_t i = 0; i < in.cards.size(); ++i) {
      if (wanted.count(absl::AsciiStrToLower(in.cards[i].name()))) {
        e.cards.push_back(i);
        e.matched.emplace_back();
      }
    }
    return e;
  }
  if (in.cards.empty()) {
    e.code = absl::StatusCode::kUnavailable;
    return e;
  }
  const std::vector<std::string> words = orch::StemmedWords(in.question);
  for (size_t i = 0; i < in.cards.size(); ++i) {
    if (in.cards[i].explicit_only()) continue;
    std::vector<std::string> matched;
    std::set<std::vector<std::string>> seen;
    for (const std::string& kw : in.cards[i].keywords()) {
      const std::vector<std::string> stems = orch::StemmedWords(kw);
      if (ContainsRun(words, stems) && seen.insert(stems).second) {
        matched.push_back(kw);
      }
    }
    if (!matched.empty()) {
      e.cards.push_back(i);
      e.matched.push_back(std::move(matched));
    }
  }
  if (!e.cards.empty()) return e;
  for (size_t i = 0; i < in.cards.size(); ++i) {
    if (in.cards[i].name() == "DataAnalyst" && !in.cards[i].explicit_only()) {
      e.cards = {i};
      e.matched = {{}};
      return e;
    }
  }
  for (size_t i = 0; i < in.cards.size(); ++i) {
    if (in.cards[i].explicit_only()) continue;
    e.cards.push_back(i);
    e.matched.emplace_back();
  }
  if (e.cards.empty()) e.code = absl::StatusCode::kUnavailable;
  return e;
}

void CheckStems(const std::string& text) {
  for (const std::string& stem : orch::StemmedWords(text)) {
    FUZZ_CHECK(!stem.empty(), "empty stem of " + text);
    for (char c : stem) {
      FUZZ_CHECK(!absl::ascii_isupper(static_cast<unsigned char>(c)),
                 "upper-case stem " + stem);
    }
  }
  // StemWord on any single word of the text.
  for (absl::string_view w : absl::StrSplit(text, ' ')) {
    const std::string stem = orch::StemWord(std::string(w));
    FUZZ_CHECK(stem.size() <= w.size(), "stem longer than its word");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Input in =
      ParseInput(absl::string_view(reinterpret_cast<const char*>(data), size));
  CheckStems(in.question);
  for (const auto& card : in.cards) {
    for (const auto& kw : card.keywords()) CheckStems(kw);
  }

  const absl::StatusOr<orch::Plan> plan =
      orch::PlanQuestion(in.question, in.cards, in.forced);
  const Expected want = Model(in);
  FUZZ_CHECK(plan.status().code() == want.code, plan.status().ToString());
  if (!plan.ok()) {
    FUZZ_CHECK(absl::StrContains(plan.status().message(), want.unknown),
               "the error does not name " + want.unknown);
    return 0;
  }

  FUZZ_CHECK(plan->specialists.size() == want.cards.size(),
             absl::StrCat(plan->specialists.size(), " planned, expected ",
                          want.cards.size()));
  FUZZ_CHECK(!plan->reasoning.empty(), "no reasoning");
  bool utf8 = ReferenceUtf8(in.question);
  for (const auto& card : in.cards) {
    utf8 = utf8 && ReferenceUtf8(card.name()) &&
           ReferenceUtf8(card.display_name());
    for (const auto& s : card.keywords()) utf8 = utf8 && ReferenceUtf8(s);
    for (const auto& s : card.skills()) utf8 = utf8 && ReferenceUtf8(s);
  }
  if (utf8) FUZZ_CHECK(ReferenceUtf8(plan->reasoning), "reasoning not UTF-8");
  for (size_t i = 0; i < want.cards.size(); ++i) {
    const orch::PlannedSpecialist& got = plan->specialists[i];
    const SpecialistCard& card = in.cards[want.cards[i]];
    FUZZ_CHECK(MessageDifferencer::Equals(got.card, card),
               "planned " + got.card.name() + ", expected " + card.name());
    FUZZ_CHECK(
        std::vector<std::string>(got.matched_keywords) == want.matched[i],
        "matched keywords of " + card.name());
    FUZZ_CHECK(absl::StrContains(got.task, in.question),
               "task lost the question");
    if (!utf8) continue;
    agentstream::v1::AnalyzeRequest request;
    request.set_request_id("req_0123456789abcdef");
    request.set_question(in.question);
    request.set_task(got.task);
    agentstream::v1::AnalyzeRequest parsed;
    FUZZ_CHECK(parsed.ParseFromString(request.SerializeAsString()),
               "the specialist cannot parse its AnalyzeRequest");
    FUZZ_CHECK(parsed.task() == got.task, "task changed on the wire");
  }
  return 0;
}
