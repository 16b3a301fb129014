#include "specialists/data/transactions.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "specialists/data/csv_loader.h"
#include "specialists/data/generator.h"

namespace agentstream::specialists::data {

const char kSchemaSql[] = R"sql(
CREATE TABLE IF NOT EXISTS transactions (
  id           INTEGER PRIMARY KEY,
  ts           INTEGER NOT NULL,
  account      TEXT    NOT NULL,
  counterparty TEXT    NOT NULL,
  category     TEXT    NOT NULL,
  country      TEXT    NOT NULL,
  channel      TEXT    NOT NULL CHECK (channel IN ('cash','card','wire','ach')),
  direction    TEXT    NOT NULL CHECK (direction IN ('credit','debit')),
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

const char kIndexSql[] = R"sql(
CREATE INDEX IF NOT EXISTS idx_tx_account_ts
  ON transactions(account, ts, direction, amount_cents);
CREATE INDEX IF NOT EXISTS idx_tx_ts ON transactions(ts);
CREATE INDEX IF NOT EXISTS idx_tx_channel_ts ON transactions(channel, direction, ts);
)sql";

const std::vector<std::string>& HighRiskCountries() {
  static const auto* const kCountries = new std::vector<std::string>{
      "AF", "HT", "IR", "KP", "MM", "SS", "SY", "YE"};
  return *kCountries;
}

bool IsHighRiskCountry(std::string_view country) {
  for (const std::string& c : HighRiskCountries()) {
    if (c == country) return true;
  }
  return false;
}

std::string HighRiskCountriesSqlList() {
  return absl::StrJoin(HighRiskCountries(), ",",
                       [](std::string* out, const std::string& c) {
                         absl::StrAppend(out, "'", c, "'");
                       });
}

absl::Status InsertTransactions(sqlite3* db,
                                const std::vector<Transaction>& rows) {
  if (absl::Status s = Exec(db, kSchemaSql); !s.ok()) return s;
  if (absl::Status s = Exec(db, "BEGIN"); !s.ok()) return s;
  auto fail = [db](absl::Status s) {
    (void)Exec(db, "ROLLBACK");
    return s;
  };
  int64_t next_id = 1;
  {
    absl::StatusOr<Statement> max =
        Statement::Prepare(db, "SELECT COALESCE(MAX(id), 0) FROM transactions");
    if (!max.ok()) return fail(max.status());
    absl::StatusOr<bool> row = max->Step();
    if (!row.ok()) return fail(row.status());
    next_id = AsInt(max->Row()[0]) + 1;
  }
  absl::StatusOr<Statement> insert = Statement::Prepare(
      db,
      "INSERT INTO transactions (id, ts, account, counterparty, category, "
      "country, channel, direction, amount_cents) VALUES (?,?,?,?,?,?,?,?,?)");
  if (!insert.ok()) return fail(insert.status());
  sqlite3_stmt* st = insert->get();
  for (const Transaction& t : rows) {
    const int64_t id = t.id != 0 ? t.id : next_id++;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, t.ts);
    sqlite3_bind_text(st, 3, t.account.data(), t.account.size(), SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t.counterparty.data(), t.counterparty.size(),
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t.category.data(), t.category.size(),
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 6, t.country.data(), t.country.size(), SQLITE_STATIC);
    sqlite3_bind_text(st, 7, t.channel.data(), t.channel.size(), SQLITE_STATIC);
    sqlite3_bind_text(st, 8, t.direction.data(), t.direction.size(),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, t.amount_cents);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
      return fail(absl::InternalError(
          absl::StrCat("insert transaction ", id, ": ", sqlite3_errmsg(db))));
    }
  }
  return Exec(db, "COMMIT");
}

absl::Status CreateIndexes(sqlite3* db) {
  if (absl::Status s = Exec(db, kIndexSql); !s.ok()) return s;
  return Exec(db, "ANALYZE");
}

absl::Status SetMeta(sqlite3* db, const std::string& key,
                     const std::string& value) {
  if (absl::Status s = Exec(db, kSchemaSql); !s.ok()) return s;
  absl::StatusOr<Statement> st = Statement::Prepare(
      db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  if (!st.ok()) return st.status();
  if (absl::Status s = st->BindAll({key, value}); !s.ok()) return s;
  absl::StatusOr<bool> done = st->Step();
  return done.status();
}

absl::StatusOr<std::string> GetMeta(sqlite3* db, const std::string& key) {
  absl::StatusOr<Statement> st =
      Statement::Prepare(db, "SELECT value FROM meta WHERE key = ?");
  if (!st.ok()) return st.status();
  if (absl::Status s = st->Bind(1, key); !s.ok()) return s;
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no meta key ", key));
  return AsString(st->Row()[0]);
}

absl::StatusOr<std::string> Checksum(sqlite3* db) {
  absl::StatusOr<Statement> st = Statement::Prepare(
      db,
      "SELECT id, ts, account, counterparty, category, country, channel, "
      "direction, amount_cents FROM transactions ORDER BY id");
  if (!st.ok()) return st.status();
  uint64_t hash = 1469598103934665603ULL;
  auto mix = [&hash](const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
      hash ^= p[i];
      hash *= 1099511628211ULL;
    }
  };
  while (true) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    for (int i = 0; i < 9; ++i) {
      const auto* text =
          reinterpret_cast<const char*>(sqlite3_column_text(st->get(), i));
      const int n = sqlite3_column_bytes(st->get(), i);
      mix(text, static_cast<size_t>(n));
      mix(i == 8 ? "\n" : "|", 1);
    }
  }
  return absl::StrFormat("%016x", hash);
}

absl::StatusOr<TimeBounds> GetTimeBounds(sqlite3* db) {
  absl::StatusOr<Statement> st = Statement::Prepare(
      db, "SELECT MIN(ts), MAX(ts), COUNT(*) FROM transactions");
  if (!st.ok()) return st.status();
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  SqlRow r = st->Row();
  if (std::holds_alternative<std::nullptr_t>(r[0])) {
    return absl::FailedPreconditionError("the transactions table is empty");
  }
  return TimeBounds{AsInt(r[0]), AsInt(r[1]), AsInt(r[2])};
}

namespace {

std::string CsvFingerprint(const std::string& csv_path) {
  struct stat st;
  if (stat(csv_path.c_str(), &st) != 0) return "";
  std::error_code ec;
  const std::string abs = std::filesystem::absolute(csv_path, ec).string();
  return absl::StrCat(abs, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec);
}

// "" when the file is not a usable database; its `source` meta otherwise.
std::string ExistingSource(const std::string& db_path) {
  absl::StatusOr<SqliteDb> db = OpenSqlite(db_path, /*writable=*/false);
  if (!db.ok()) return "";
  absl::StatusOr<std::string> source = GetMeta(db->get(), "source");
  return source.ok() ? *source : "";
}

absl::Status BuildInto(const std::string& tmp_path, const std::string& csv_path,
                       const std::string& fingerprint, uint64_t seed) {
  absl::StatusOr<SqliteDb> db = OpenSqlite(tmp_path, /*writable=*/true);
  if (!db.ok()) return db.status();
  // A private file until published: durability settings do not matter.
  if (absl::Status s =
          Exec(db->get(), "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;");
      !s.ok()) {
    return s;
  }
  if (csv_path.empty()) {
    GeneratorOptions options;
    options.seed = seed;
    return GenerateDatabase(db->get(), options);
  }
  absl::StatusOr<std::vector<Transaction>> rows = ReadTransactionsCsv(csv_path);
  if (!rows.ok()) return rows.status();
  if (absl::Status s = InsertTransactions(db->get(), *rows); !s.ok()) return s;
  if (absl::Status s = CreateIndexes(db->get()); !s.ok()) return s;
  return SetMeta(db->get(), "source", absl::StrCat("csv:", fingerprint));
}

}  // namespace

absl::Status EnsureDatabase(const std::string& db_path,
                            const std::string& csv_path, uint64_t seed) {
  const std::string wanted_source =
      csv_path.empty() ? absl::StrCat("generated:seed=", seed)
                       : absl::StrCat("csv:", CsvFingerprint(csv_path));
  if (!csv_path.empty() && CsvFingerprint(csv_path).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read CSV file ", csv_path));
  }
  const std::string existing = ExistingSource(db_path);
  // A generated database is kept whatever its seed: it is the data set the
  // user has; a CSV database is rebuilt when the CSV changed.
  if (!existing.empty() &&
      (existing == wanted_source ||
       (csv_path.empty() && existing.rfind("generated:", 0) == 0))) {
    return absl::OkStatus();
  }
  std::filesystem::path path(db_path);
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot create directory ",
                                                 path.parent_path().string(),
                                                 ": ", ec.message()));
    }
  }
  std::random_device rd;
  const std::string tmp_path =
      absl::StrCat(db_path, ".tmp.", getpid(), ".", rd());
  AS_LOG(INFO) << "building database " << db_path << " from "
               << (csv_path.empty() ? absl::StrCat("seed ", seed) : csv_path);
  absl::Status built =
      BuildInto(tmp_path, csv_path, CsvFingerprint(csv_path), seed);
  if (!built.ok()) {
    unlink(tmp_path.c_str());
    return built;
  }
  struct stat existing_file;
  if (stat(db_path.c_str(), &existing_file) != 0) {
    // link() never replaces: when another process published first, its
    // file (built from the same input) wins and ours is dropped.
    if (link(tmp_path.c_str(), db_path.c_str()) != 0 && errno != EEXIST) {
      const std::string error = std::strerror(errno);
      unlink(tmp_path.c_str());
      return absl::UnavailableError(
          absl::StrCat("cannot publish ", db_path, ": ", error));
    }
    unlink(tmp_path.c_str());
  } else if (std::rename(tmp_path.c_str(), db_path.c_str()) != 0) {
    const std::string error = std::strerror(errno);
    unlink(tmp_path.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot publish ", db_path, ": ", error));
  }
  AS_LOG(INFO) << "database " << db_path << " ready";
  return absl::OkStatus();
}

}  // namespace agentstream::specialists::data
