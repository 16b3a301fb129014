// DataAnalyst: answers "what happened" over the transactions data set with
// real SQL run through the `data_query` tool: totals, monthly trend, top
// counterparties and outliers against each account's own history; a
// partial_result as each query finishes. Shapes in docs/SPECIALISTS.md.
//
// Thread-safe: each Analyze() opens its own read-only connection.
#ifndef AGENTSTREAM_SPECIALISTS_DATA_ANALYST_DATA_ANALYST_H_
#define AGENTSTREAM_SPECIALISTS_DATA_ANALYST_DATA_ANALYST_H_

#include <string>

#include "specialists/sdk/specialist.h"

namespace agentstream::specialists {

class DataAnalyst final : public Specialist {
 public:
  explicit DataAnalyst(std::string db_path) : db_path_(std::move(db_path)) {}

  // Specialist methods
  SpecialistCard Card() const override;
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) override;

 private:
  const std::string db_path_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_DATA_ANALYST_DATA_ANALYST_H_
