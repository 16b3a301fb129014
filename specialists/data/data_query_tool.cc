#include "specialists/data/data_query_tool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace agentstream::specialists::data {

absl::StatusOr<std::vector<SqlRow>> DataQueryTool::Run(
    const std::string& name, const std::string& sql,
    const std::vector<SqlValue>& params, int progress_from, int progress_to,
    int64_t estimated_ops) {
  sink_.ToolCall(
      kToolName,
      nlohmann::json{
          {"query", name}, {"sql", sql}, {"params", SqlValuesToJson(params)}});
  QueryRunner::ProgressFn on_progress;
  if (estimated_ops > 0 && progress_to > progress_from) {
    on_progress = [&](int64_t ops) {
      const double done = std::min(
          0.9, static_cast<double>(ops) / static_cast<double>(estimated_ops));
      sink_.Progress(
          progress_from +
              static_cast<int>((progress_to - progress_from) * done),
          absl::StrCat("Running query ", name, " (", ops, " steps)"));
    };
  }
  return runner_.Query(sql, params, std::move(on_progress));
}

}  // namespace agentstream::specialists::data
