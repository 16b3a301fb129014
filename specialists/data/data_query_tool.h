// The `data_query` tool the database specialists share: each query is
// announced as a tool_call carrying the SQL and its parameters exactly as
// executed ({"query": name, "sql": ..., "params": [...]}), then run with
// cancellation; while it runs, progress moves between two figures in
// proportion to the SQLite VM steps done against an estimate.
//
// Not thread-safe; one per analysis.
#ifndef AGENTSTREAM_SPECIALISTS_DATA_DATA_QUERY_TOOL_H_
#define AGENTSTREAM_SPECIALISTS_DATA_DATA_QUERY_TOOL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "specialists/data/sql.h"
#include "specialists/sdk/cancel_token.h"
#include "specialists/sdk/update_sink.h"

namespace agentstream::specialists::data {

class DataQueryTool final {
 public:
  static constexpr char kToolName[] = "data_query";

  DataQueryTool(sqlite3* db, UpdateSink& sink, const CancelToken& cancel)
      : runner_(db, &cancel), sink_(sink) {}

  // Emits the tool_call and runs the query. While it runs, progress goes
  // from `progress_from` toward `progress_to` (at most 90% of the way) as
  // VM steps approach `estimated_ops`; the caller reports `progress_to`
  // when it has used the rows. kCancelled when cancelled.
  absl::StatusOr<std::vector<SqlRow>> Run(const std::string& name,
                                          const std::string& sql,
                                          const std::vector<SqlValue>& params,
                                          int progress_from, int progress_to,
                                          int64_t estimated_ops);

 private:
  QueryRunner runner_;
  UpdateSink& sink_;
};

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_DATA_QUERY_TOOL_H_
