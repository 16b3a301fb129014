// The transactions data set every built-in specialist analyses: its schema,
// row type, bulk insert, checksum, and how a database file comes to exist
// (generated from a fixed seed, or loaded from a user's CSV) safely when
// several specialist processes start at once. docs/DATA.md documents it.
#ifndef AGENTSTREAM_SPECIALISTS_DATA_TRANSACTIONS_H_
#define AGENTSTREAM_SPECIALISTS_DATA_TRANSACTIONS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "specialists/data/sql.h"

namespace agentstream::specialists::data {

// One row of `transactions`. Amounts are integer cents (exact sums).
struct Transaction {
  int64_t id = 0;  // 1..N in time order (CSV: file order).
  int64_t ts = 0;  // Unix seconds, UTC.
  std::string account;
  std::string counterparty;
  std::string category;
  std::string country;       // ISO 3166-1 alpha-2.
  std::string channel;       // cash, card, wire, ach.
  std::string direction;     // credit (money in), debit (money out).
  int64_t amount_cents = 0;  // > 0.
};

// CREATE TABLE/INDEX statements (idempotent).
extern const char kSchemaSql[];
// Indexes, created after a bulk load (faster than maintaining them).
extern const char kIndexSql[];

// Jurisdictions treated as high-risk (FATF "call for action" and a few
// monitored ones; illustrative, documented in docs/DATA.md).
const std::vector<std::string>& HighRiskCountries();
bool IsHighRiskCountry(std::string_view country);
// "'AF','HT',..." for an SQL IN (...) list.
std::string HighRiskCountriesSqlList();

// Creates the schema and inserts `rows` in one transaction with a prepared
// statement. Rows with id 0 get ids in order after the largest present.
absl::Status InsertTransactions(sqlite3* db,
                                const std::vector<Transaction>& rows);
absl::Status CreateIndexes(sqlite3* db);

// Sets/reads a key of the `meta` table (source, seed, ...).
absl::Status SetMeta(sqlite3* db, const std::string& key,
                     const std::string& value);
absl::StatusOr<std::string> GetMeta(sqlite3* db, const std::string& key);

// FNV-1a 64 over every row in id order, as 16 hex digits: equal data gives
// an equal checksum.
absl::StatusOr<std::string> Checksum(sqlite3* db);

// The newest and oldest `ts` (kFailedPrecondition for an empty table).
struct TimeBounds {
  int64_t oldest = 0;
  int64_t newest = 0;
  int64_t rows = 0;
};
absl::StatusOr<TimeBounds> GetTimeBounds(sqlite3* db);

// Makes sure `db_path` holds a database, building it if missing:
//  - `csv_path` empty: generated from `seed` (generator.h);
//  - otherwise loaded from the CSV (csv_loader.h); a database built from a
//    different CSV (path, size or mtime differ) is rebuilt.
// The file is built under a temporary name in the same directory and then
// published atomically, so concurrent starters never see a partial file.
// The parent directory is created. Errors: kInvalidArgument for a bad CSV
// (naming the line), kInternal/kUnavailable for I/O.
absl::Status EnsureDatabase(const std::string& db_path,
                            const std::string& csv_path, uint64_t seed);

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_TRANSACTIONS_H_
