// The planner: which specialists a question needs, and what each is asked.
//
// Pure functions of their inputs (no I/O, no clock), thread-safe.
//
// Matching: the question and every card keyword are split into lower-case
// words and reduced to a light stem ("transactions" -> "transaction",
// "laundering" -> "launder", "risky" -> "risk"); a keyword matches when all
// of its words appear in the question, in order. Cards with `explicit_only`
// are planned only when named in the forced set. A question that matches no
// card gets a default set: DataAnalyst if present, else every non-explicit
// card.
#ifndef AGENTSTREAM_ORCHESTRATOR_PLANNER_H_
#define AGENTSTREAM_ORCHESTRATOR_PLANNER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentstream/v1/specialist.pb.h"

namespace agentstream::orchestrator {

// The longest question accepted, in bytes.
inline constexpr size_t kMaxQuestionBytes = 16 * 1024;

struct PlannedSpecialist {
  agentstream::v1::SpecialistCard card;
  std::string task;                           // What it is asked to do.
  std::vector<std::string> matched_keywords;  // Empty when forced/default.
};

struct Plan {
  std::vector<PlannedSpecialist> specialists;  // In the order of `cards`.
  std::string reasoning;  // Sent as the orchestrator's `thinking`.
};

// A lower-case, stemmed word; exposed for tests.
std::string StemWord(const std::string& word);
// The question's words, lower-cased and stemmed, in order.
std::vector<std::string> StemmedWords(const std::string& text);

// Plans `question` against `cards` (the known specialists, in a stable
// order). `forced`, when not empty, is the exact set to use (names compare
// case-insensitively; duplicates are ignored).
//
// Errors: kInvalidArgument for an empty (or all-whitespace) question, one
// over kMaxQuestionBytes, or a forced name that is not a card (the message
// names it); kUnavailable when there is no card to plan with.
absl::StatusOr<Plan> PlanQuestion(
    const std::string& question,
    const std::vector<agentstream::v1::SpecialistCard>& cards,
    const std::vector<std::string>& forced);

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_PLANNER_H_
