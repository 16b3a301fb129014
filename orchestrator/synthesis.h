// Synthesis: the run's final answer from what each specialist contributed.
//
// Pure functions, thread-safe. Specialists are read through the keys they
// put in their partial results: each specialist's partial_result objects are
// merged into one object (top-level keys, later wins). From it:
//  - the answer takes the specialist's own `summary` string when it gives
//    one (the built-ins end with a `summary` partial result), else sentences
//    built from well-known keys (`inflow`/`outflow`/`net`/`count` or
//    `totals`, `risk_score`/`level`/`confidence`, `alerts` or `findings`),
//    else the scalar keys of the merged result;
//  - the key figures are the well-known scalar keys of its summary partial
//    result if it sent one, else of the merged result; for a specialist
//    using none of them, its scalar keys (at most eight).
#ifndef AGENTSTREAM_ORCHESTRATOR_SYNTHESIS_H_
#define AGENTSTREAM_ORCHESTRATOR_SYNTHESIS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "agentstream/v1/update.pb.h"
#include "nlohmann/json.hpp"

namespace agentstream::orchestrator {

// What one planned specialist contributed to a run.
struct SpecialistContribution {
  std::string name;
  agentstream::v1::Outcome outcome = agentstream::v1::OUTCOME_UNSPECIFIED;
  // All its partial results merged into one object (may be empty).
  nlohmann::json result = nlohmann::json::object();
  // Its latest partial result with a `summary` string (the specialist's own
  // digest), or empty. When present, the key figures come from it.
  nlohmann::json summary_result = nlohmann::json::object();
  std::string error;  // Why it failed, when it did.
  int64_t duration_ms = 0;
};

// Merges a partial result into `merged` (top-level keys; later wins).
void MergePartialResult(const nlohmann::json& partial, nlohmann::json* merged);

// The key figures of one specialist's merged result (an object, possibly
// empty).
nlohmann::json KeyFigures(const std::string& name,
                          const nlohmann::json& result);

struct Synthesis {
  // {"answer": "...", "specialists": {Name: {figures}}, "missing": [names]}
  nlohmann::json result;
  // OUTCOME_OK when every specialist finished OK, OUTCOME_CANCELLED when
  // `cancelled`, else OUTCOME_PARTIAL.
  agentstream::v1::Outcome outcome = agentstream::v1::OUTCOME_UNSPECIFIED;
};

Synthesis Synthesize(const std::vector<SpecialistContribution>& contributions,
                     bool cancelled);

// A one-line progress message for `synthesis` updates ("2 of 3 specialists
// done; waiting for RiskAnalyst").
std::string SynthesisProgressMessage(const std::vector<std::string>& complete,
                                     const std::vector<std::string>& pending);

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_SYNTHESIS_H_
