#include "specialists/data/sql.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace agentstream::specialists::data {
namespace {

absl::Status SqliteError(sqlite3* db, int rc, const std::string& what) {
  if (rc == SQLITE_INTERRUPT) {
    return absl::CancelledError(absl::StrCat(what, ": interrupted"));
  }
  return absl::InternalError(absl::StrCat(
      what, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

}  // namespace

absl::StatusOr<SqliteDb> OpenSqlite(const std::string& path, bool writable) {
  sqlite3* raw = nullptr;
  const int flags = (writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              : SQLITE_OPEN_READONLY) |
                    SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) {
    if (!writable && rc == SQLITE_CANTOPEN) {
      return absl::NotFoundError(absl::StrCat("cannot open database ", path));
    }
    return SqliteError(raw, rc, absl::StrCat("open ", path));
  }
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

absl::Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string message = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc == SQLITE_INTERRUPT) return absl::CancelledError(message);
    return absl::InternalError(absl::StrCat("sql: ", message));
  }
  return absl::OkStatus();
}

int64_t AsInt(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}

double AsDouble(const SqlValue& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return 0.0;
}

std::string AsString(const SqlValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&v)) return absl::StrCat(*d);
  return "";
}

nlohmann::json SqlValueToJson(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return nullptr;
}

nlohmann::json SqlValuesToJson(const std::vector<SqlValue>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (const SqlValue& v : values) out.push_back(SqlValueToJson(v));
  return out;
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db,
                                             const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(
      db, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, "prepare");
  return Statement(db, stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

absl::Status Statement::Bind(int index, const SqlValue& value) {
  int rc = SQLITE_OK;
  if (const auto* i = std::get_if<int64_t>(&value)) {
    rc = sqlite3_bind_int64(stmt_, index, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    rc = sqlite3_bind_double(stmt_, index, *d);
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    rc = sqlite3_bind_text(stmt_, index, s->data(), static_cast<int>(s->size()),
                           SQLITE_TRANSIENT);
  } else {
    rc = sqlite3_bind_null(stmt_, index);
  }
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "bind");
  return absl::OkStatus();
}

absl::Status Statement::BindAll(const std::vector<SqlValue>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (absl::Status s = Bind(static_cast<int>(i + 1), values[i]); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "step");
}

SqlRow Statement::Row() const {
  const int n = sqlite3_column_count(stmt_);
  SqlRow row;
  row.reserve(n);
  for (int i = 0; i < n; ++i) {
    switch (sqlite3_column_type(stmt_, i)) {
      case SQLITE_INTEGER:
        row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt_, i)));
        break;
      case SQLITE_FLOAT:
        row.emplace_back(sqlite3_column_double(stmt_, i));
        break;
      case SQLITE_NULL:
        row.emplace_back(nullptr);
        break;
      default: {
        const auto* text =
            reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
        row.emplace_back(std::string(text != nullptr ? text : "",
                                     sqlite3_column_bytes(stmt_, i)));
      }
    }
  }
  return row;
}

absl::Status Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return absl::OkStatus();
}

QueryRunner::QueryRunner(sqlite3* db, const CancelToken* cancel)
    : db_(db), cancel_(cancel) {
  sqlite3_progress_handler(db_, kOpsPerCallback, &QueryRunner::OnProgress,
                           this);
}

QueryRunner::~QueryRunner() {
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
}

int QueryRunner::OnProgress(void* self_ptr) {
  auto* self = static_cast<QueryRunner*>(self_ptr);
  if (self->cancel_ != nullptr && self->cancel_->cancelled()) return 1;
  self->ops_ += kOpsPerCallback;
  if (self->on_progress_) {
    const int64_t now = absl::GetCurrentTimeNanos();
    if (now - self->last_report_ns_ >= 100'000'000) {
      self->last_report_ns_ = now;
      self->on_progress_(self->ops_);
    }
  }
  return 0;
}

absl::StatusOr<std::vector<SqlRow>> QueryRunner::Query(
    const std::string& sql, const std::vector<SqlValue>& params,
    ProgressFn on_progress) {
  if (cancel_ != nullptr && cancel_->cancelled()) {
    return absl::CancelledError("cancelled before the query");
  }
  on_progress_ = std::move(on_progress);
  ops_ = 0;
  last_report_ns_ = absl::GetCurrentTimeNanos();
  absl::StatusOr<Statement> stmt = Statement::Prepare(db_, sql);
  if (!stmt.ok()) return stmt.status();
  if (absl::Status s = stmt->BindAll(params); !s.ok()) return s;
  std::vector<SqlRow> rows;
  while (true) {
    absl::StatusOr<bool> more = stmt->Step();
    if (!more.ok()) {
      on_progress_ = nullptr;
      return more.status();
    }
    if (!*more) break;
    rows.push_back(stmt->Row());
  }
  on_progress_ = nullptr;
  return rows;
}

}  // namespace agentstream::specialists::data
