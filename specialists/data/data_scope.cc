#include "specialists/data/data_scope.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace agentstream::specialists::data {

std::string DataScope::Where(std::vector<SqlValue>* params,
                             const std::string& prefix) const {
  std::string where = absl::StrCat(prefix, "ts >= ? AND ", prefix, "ts < ?");
  // In-place construction: GCC 12 under ASan warns (falsely) about moving
  // a temporary variant into the vector.
  params->emplace_back(std::in_place_type<int64_t>, range.from);
  params->emplace_back(std::in_place_type<int64_t>, range.to);
  if (scope.account.has_value()) {
    absl::StrAppend(&where, " AND ", prefix, "account = ?");
    params->emplace_back(std::in_place_type<std::string>, *scope.account);
  }
  return where;
}

nlohmann::json DataScope::ToJson() const {
  return {{"account", scope.account.has_value() ? nlohmann::json(*scope.account)
                                                : nlohmann::json(nullptr)},
          {"period", scope.period.text},
          {"from", FormatTimestamp(range.from)},
          {"to", FormatTimestamp(range.to)},
          {"from_ts", range.from},
          {"to_ts", range.to}};
}

absl::StatusOr<DataScope> ResolveDataScope(
    sqlite3* db, const agentstream::v1::AnalyzeRequest& request) {
  absl::StatusOr<TimeBounds> bounds = GetTimeBounds(db);
  if (!bounds.ok()) return bounds.status();
  DataScope out;
  out.bounds = *bounds;
  out.scope =
      ParseScope(absl::StrCat(request.task(), "\n", request.question()));
  out.range = ResolvePeriod(out.scope.period, bounds->newest);
  out.description = DescribeScope(out.scope, out.range);
  return out;
}

std::string FormatTimestamp(int64_t ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts),
                          absl::UTCTimeZone());
}

double Money(int64_t cents) { return static_cast<double>(cents) / 100.0; }

std::string FormatMoney(int64_t cents) {
  const bool negative = cents < 0;
  uint64_t abs = negative ? -static_cast<uint64_t>(cents) : cents;
  const std::string digits = absl::StrCat(abs / 100);
  std::string whole;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) whole.push_back(',');
    whole.push_back(digits[i]);
  }
  return absl::StrFormat("%s$%s.%02d", negative ? "-" : "", whole,
                         static_cast<int>(abs % 100));
}

absl::StatusOr<ScopedData> OpenScopedData(
    const std::string& db_path,
    const agentstream::v1::AnalyzeRequest& request) {
  absl::StatusOr<SqliteDb> db = OpenSqlite(db_path, /*writable=*/false);
  if (!db.ok()) return db.status();
  absl::StatusOr<DataScope> scope = ResolveDataScope(db->get(), request);
  if (!scope.ok()) return scope.status();
  return ScopedData{std::move(*db), std::move(*scope)};
}

}  // namespace agentstream::specialists::data
