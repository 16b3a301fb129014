// ComplianceExpert: AML rules over the transactions data set (structuring,
// velocity bursts, high-risk jurisdictions; aml_rules.h states them) and
// personal data in the request text (pii.h), which it masks in everything
// it echoes. Findings are partial results carrying the matching transaction
// ids and counts; shapes in docs/SPECIALISTS.md.
//
// Thread-safe: each Analyze() opens its own read-only connection.
#ifndef AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_COMPLIANCE_EXPERT_H_
#define AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_COMPLIANCE_EXPERT_H_

#include <string>

#include "specialists/sdk/specialist.h"

namespace agentstream::specialists {

class ComplianceExpert final : public Specialist {
 public:
  explicit ComplianceExpert(std::string db_path)
      : db_path_(std::move(db_path)) {}

  // Specialist methods
  SpecialistCard Card() const override;
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) override;

 private:
  const std::string db_path_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_COMPLIANCE_EXPERT_H_
