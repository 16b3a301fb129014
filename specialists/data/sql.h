// A thin, Status-returning layer over the SQLite C API: an owning handle,
// statements with typed binding, and a QueryRunner that makes every query
// cancellable (sqlite3_progress_handler + CancelToken) and observable.
//
// Not thread-safe: one connection per analysis (SQLite connections are
// cheap; the database file is opened read-only by analyses).
#ifndef AGENTSTREAM_SPECIALISTS_DATA_SQL_H_
#define AGENTSTREAM_SPECIALISTS_DATA_SQL_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "specialists/sdk/cancel_token.h"

namespace agentstream::specialists::data {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;

// Opens `path`; read-only unless `writable` (then created if missing).
// kNotFound when a read-only open finds no file; kInternal otherwise.
absl::StatusOr<SqliteDb> OpenSqlite(const std::string& path, bool writable);

// Runs one or more statements without results.
absl::Status Exec(sqlite3* db, const std::string& sql);

using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;
using SqlRow = std::vector<SqlValue>;

// Accessors that accept the SQL types a column may come back as.
int64_t AsInt(const SqlValue& v);
double AsDouble(const SqlValue& v);
std::string AsString(const SqlValue& v);
nlohmann::json SqlValueToJson(const SqlValue& v);
nlohmann::json SqlValuesToJson(const std::vector<SqlValue>& values);

// An owned prepared statement.
class Statement final {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, const std::string& sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  // 1-based parameter index.
  absl::Status Bind(int index, const SqlValue& value);
  absl::Status BindAll(const std::vector<SqlValue>& values);
  // True with a row ready, false when done. kCancelled on SQLITE_INTERRUPT.
  absl::StatusOr<bool> Step();
  SqlRow Row() const;
  absl::Status Reset();
  sqlite3_stmt* get() const { return stmt_; }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// Runs queries on one connection with cancellation: while a query runs,
// SQLite calls back every kOpsPerCallback virtual-machine steps; the
// callback aborts the query once `cancel` trips, and reports the steps so
// far to `on_progress` (at most every 100 ms) so progress follows the
// work actually done.
class QueryRunner final {
 public:
  static constexpr int kOpsPerCallback = 10000;
  using ProgressFn = std::function<void(int64_t ops)>;

  QueryRunner(sqlite3* db, const CancelToken* cancel);
  ~QueryRunner();
  QueryRunner(const QueryRunner&) = delete;
  QueryRunner& operator=(const QueryRunner&) = delete;

  // All rows of `sql` bound to `params`. kCancelled when interrupted.
  absl::StatusOr<std::vector<SqlRow>> Query(const std::string& sql,
                                            const std::vector<SqlValue>& params,
                                            ProgressFn on_progress = nullptr);

  sqlite3* db() const { return db_; }

 private:
  static int OnProgress(void* self);
  sqlite3* const db_;
  const CancelToken* const cancel_;
  ProgressFn on_progress_;
  int64_t ops_ = 0;
  int64_t last_report_ns_ = 0;
};

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_SQL_H_
