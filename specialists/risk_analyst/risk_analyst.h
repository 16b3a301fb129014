// RiskAnalyst: how risky an account's (or the book's) flows are: volatility
// of monthly outflow, concentration over counterparties (HHI), exposure by
// country, category and channel, and a 0-10 risk score with a confidence
// that reflects how much data there was. The scoring is a pure function
// (ScoreRisk) so it is tested on its own. Shapes in docs/SPECIALISTS.md.
//
// Thread-safe: each Analyze() opens its own read-only connection.
#ifndef AGENTSTREAM_SPECIALISTS_RISK_ANALYST_RISK_ANALYST_H_
#define AGENTSTREAM_SPECIALISTS_RISK_ANALYST_RISK_ANALYST_H_

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "specialists/sdk/specialist.h"

namespace agentstream::specialists {

struct RiskInputs {
  int64_t transactions = 0;
  int64_t months = 0;          // Months with at least one transaction.
  double outflow_cv = 0;       // Coefficient of variation of monthly outflow.
  double hhi = 0;              // 0..1 over debit counterparties.
  double high_risk_share = 0;  // Of volume, 0..1.
  double cash_share = 0;       // Of volume, 0..1.
};

struct RiskScore {
  double score = 0;           // 0..10, one decimal.
  double confidence = 0;      // 0..1, two decimals.
  std::string level;          // "low" (< 4), "medium" (< 7), "high".
  nlohmann::json components;  // Points per factor.
};

// score = 2.5*min(1, cv/1.0) + 2.5*min(1, hhi/0.5)
//       + 3.0*min(1, high_risk_share/0.10) + 2.0*min(1, cash_share/0.30)
// confidence = 0.6*min(1, transactions/200) + 0.4*min(1, months/6)
RiskScore ScoreRisk(const RiskInputs& in);

class RiskAnalyst final : public Specialist {
 public:
  explicit RiskAnalyst(std::string db_path) : db_path_(std::move(db_path)) {}

  // Specialist methods
  SpecialistCard Card() const override;
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) override;

 private:
  const std::string db_path_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_RISK_ANALYST_RISK_ANALYST_H_
