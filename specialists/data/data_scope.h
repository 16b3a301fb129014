// What every database specialist does first: open the data set read-only,
// read the scope (account, period) from the request, and resolve the period
// against the newest transaction. Also the SQL filter for that scope, so all
// specialists select rows the same way:
//
//   ts >= :from AND ts < :to [AND account = :account]
#ifndef AGENTSTREAM_SPECIALISTS_DATA_DATA_SCOPE_H_
#define AGENTSTREAM_SPECIALISTS_DATA_DATA_SCOPE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentstream/v1/specialist.pb.h"
#include "nlohmann/json.hpp"
#include "specialists/data/scope.h"
#include "specialists/data/sql.h"
#include "specialists/data/transactions.h"

namespace agentstream::specialists::data {

struct DataScope {
  Scope scope;
  TimeRange range;
  TimeBounds bounds;        // Of the whole data set.
  std::string description;  // DescribeScope().

  // "ts >= ? AND ts < ?" plus " AND account = ?" when an account is named,
  // with `prefix` before each column ("t."); appends the values to `params`.
  std::string Where(std::vector<SqlValue>* params,
                    const std::string& prefix = "") const;
  // {"account": "ACC-1042" | null, "period": "last 6 months",
  //  "from": "2026-05-01T00:00:00Z", "to": "2026-11-01T00:00:00Z",
  //  "from_ts": ..., "to_ts": ...}
  nlohmann::json ToJson() const;
};

// The scope of `request` (task first, then question). kNotFound when the
// database file is missing, kFailedPrecondition when it is empty.
absl::StatusOr<DataScope> ResolveDataScope(
    sqlite3* db, const agentstream::v1::AnalyzeRequest& request);

// A read-only connection to the data set and the request's scope in it: what
// every data specialist starts its analysis with.
struct ScopedData {
  SqliteDb db;
  DataScope scope;
};
// Errors as OpenSqlite() and ResolveDataScope().
absl::StatusOr<ScopedData> OpenScopedData(
    const std::string& db_path, const agentstream::v1::AnalyzeRequest& request);

// "2026-05-01T00:00:00Z".
std::string FormatTimestamp(int64_t ts);
// Cents as a JSON number of currency units (12345 -> 123.45).
double Money(int64_t cents);
// "$1,234.56".
std::string FormatMoney(int64_t cents);

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_DATA_SCOPE_H_
