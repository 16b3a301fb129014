// The data set: generator determinism and planted patterns, CSV loading,
// the scope parser, database creation and cancellable queries.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/compliance_expert/aml_rules.h"
#include "specialists/data/csv_loader.h"
#include "specialists/data/generator.h"
#include "specialists/data/scope.h"
#include "specialists/data/sql.h"
#include "specialists/data/transactions.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace agentstream::specialists::data {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::ScopedTempDir;
using ::agentstream::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

int64_t Ts(int y, int m, int d) {
  return absl::ToUnixSeconds(
      absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone()));
}

std::string GenerateChecksum(uint64_t seed, int64_t* rows,
                             int64_t* oldest = nullptr,
                             int64_t* newest = nullptr) {
  absl::StatusOr<SqliteDb> db = OpenSqlite(":memory:", true);
  EXPECT_THAT(db, IsOk());
  GeneratorOptions options;
  options.seed = seed;
  EXPECT_THAT(GenerateDatabase(db->get(), options), IsOk());
  absl::StatusOr<TimeBounds> bounds = GetTimeBounds(db->get());
  EXPECT_THAT(bounds, IsOk());
  *rows = bounds->rows;
  if (oldest != nullptr) *oldest = bounds->oldest;
  if (newest != nullptr) *newest = bounds->newest;
  absl::StatusOr<std::string> sum = Checksum(db->get());
  EXPECT_THAT(sum, IsOk());
  return *sum;
}

TEST(GeneratorTest, SameSeedSameDataAcrossGenerations) {
  int64_t rows1 = 0, rows2 = 0, rows3 = 0, oldest = 0, newest = 0;
  const std::string first = GenerateChecksum(42, &rows1, &oldest, &newest);
  const std::string second = GenerateChecksum(42, &rows2);
  EXPECT_EQ(first, second);
  EXPECT_EQ(rows1, rows2);
  EXPECT_GE(rows1, 200000);
  // 24 months ending at the fixed end.
  EXPECT_GE(oldest, kGeneratedStartTs);
  EXPECT_LT(oldest, kGeneratedStartTs + 86400);
  EXPECT_LE(newest, kGeneratedEndTs);
  EXPECT_GT(newest, kGeneratedEndTs - 86400);
  EXPECT_EQ(kGeneratedStartTs, Ts(2024, 11, 1));
  EXPECT_EQ(kGeneratedEndTs, Ts(2026, 11, 1) - 1);
  // Another seed, other data.
  EXPECT_NE(GenerateChecksum(7, &rows3), first);
}

std::vector<RuleEvent> Events(const std::vector<Transaction>& rows,
                              const std::string& account, int64_t from,
                              bool structuring_candidates) {
  std::vector<RuleEvent> events;
  for (const Transaction& t : rows) {
    if (t.account != account || t.ts < from) continue;
    if (structuring_candidates &&
        !(t.channel == "cash" && t.direction == "credit" &&
          t.amount_cents >= kStructuringMinCents &&
          t.amount_cents < kStructuringMaxCents)) {
      continue;
    }
    events.push_back({t.id, t.ts, t.account, t.amount_cents});
  }
  return events;
}

TEST(GeneratorTest, PlantedPatternsAreInTheLastSixMonths) {
  const std::vector<Transaction> rows = GenerateTransactions({});
  const int64_t six_months = Ts(2026, 5, 1);
  // ACC-1042: structuring.
  auto s = FindClusters(Events(rows, "ACC-1042", six_months, true),
                        kStructuringWindowSeconds, kStructuringMinCount);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].ids.size(), 5u);
  // ACC-1042: velocity burst.
  auto v = FindClusters(Events(rows, "ACC-1042", six_months, false),
                        kVelocityWindowSeconds, kVelocityMinCount);
  ASSERT_GE(v.size(), 1u);
  EXPECT_GE(v[0].ids.size(), 24u);
  // ACC-1042: concentration and the outlier.
  std::map<std::string, int64_t> debits;
  int64_t total = 0, largest = 0;
  std::string largest_country;
  for (const Transaction& t : rows) {
    if (t.account != "ACC-1042" || t.ts < six_months || t.direction != "debit")
      continue;
    debits[t.counterparty] += t.amount_cents;
    total += t.amount_cents;
    if (t.amount_cents > largest) {
      largest = t.amount_cents;
      largest_country = t.country;
    }
  }
  double hhi = 0;
  for (const auto& [party, cents] : debits) {
    hhi += (static_cast<double>(cents) / total) *
           (static_cast<double>(cents) / total);
  }
  EXPECT_GT(hhi, 0.3);
  EXPECT_EQ(largest, 24800000);
  EXPECT_TRUE(IsHighRiskCountry(largest_country));
  // Other planted accounts.
  EXPECT_EQ(FindClusters(Events(rows, "ACC-1337", six_months, true),
                         kStructuringWindowSeconds, kStructuringMinCount)
                .size(),
            1u);
  EXPECT_GE(FindClusters(Events(rows, "ACC-1500", six_months, false),
                         kVelocityWindowSeconds, kVelocityMinCount)
                .size(),
            1u);
  // ACC-1234's structuring is older than six months.
  EXPECT_TRUE(FindClusters(Events(rows, "ACC-1234", six_months, true),
                           kStructuringWindowSeconds, kStructuringMinCount)
                  .empty());
  EXPECT_EQ(FindClusters(Events(rows, "ACC-1234", 0, true),
                         kStructuringWindowSeconds, kStructuringMinCount)
                .size(),
            1u);
  // An ordinary account has none of it.
  EXPECT_TRUE(FindClusters(Events(rows, "ACC-1001", 0, true),
                           kStructuringWindowSeconds, kStructuringMinCount)
                  .empty());
}

TEST(EnsureDatabaseTest, ConcurrentStartersShareOneCompleteFile) {
  const absl::StatusOr<ScopedTempDir> made = ScopedTempDir::Make("ensure");
  ASSERT_THAT(made, IsOk());
  const std::string& dir = made->path();
  const std::string csv = dir + "/tx.csv";
  {
    std::ofstream out(csv);
    out << "timestamp,account,counterparty,category,country,channel,"
           "direction,amount\n";
    for (int i = 0; i < 500; ++i) {
      out << absl::StrFormat(
          "2026-01-%02dT10:00:00Z,ACC-%d,Shop,groceries,US,card,debit,%d.25\n",
          i % 28 + 1, 1000 + i % 7, i + 1);
    }
  }
  const std::string db_path = dir + "/var/sub/agentstream.db";
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = EnsureDatabase(db_path, csv, 42); });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_THAT(s, IsOk());
  absl::StatusOr<SqliteDb> db = OpenSqlite(db_path, false);
  ASSERT_THAT(db, IsOk());
  absl::StatusOr<TimeBounds> bounds = GetTimeBounds(db->get());
  ASSERT_THAT(bounds, IsOk());
  EXPECT_EQ(bounds->rows, 500);
  // A second start reuses the file.
  EXPECT_THAT(EnsureDatabase(db_path, csv, 42), IsOk());
  // No temporary files are left behind.
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir + "/var/sub")) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(EnsureDatabaseTest, BadCsvNamesTheLine) {
  const absl::StatusOr<ScopedTempDir> made = ScopedTempDir::Make("ensure_bad");
  ASSERT_THAT(made, IsOk());
  const std::string& dir = made->path();
  const std::string csv = dir + "/bad.csv";
  {
    std::ofstream out(csv);
    out << "timestamp,account,counterparty,category,country,channel,"
           "direction,amount\n"
        << "2026-01-01T10:00:00Z,ACC-1,Shop,groceries,US,card,debit,10.00\n"
        << "2026-01-02T10:00:00Z,ACC-1,Shop,groceries,US,card,debit,-5\n";
  }
  EXPECT_THAT(EnsureDatabase(dir + "/x.db", csv, 42),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 3: amount \"-5\"")));
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.db"));
}

absl::StatusOr<std::vector<Transaction>> ParseCsv(const std::string& text) {
  std::istringstream in(text);
  return ParseTransactionsCsv(in);
}

constexpr char kHeader[] =
    "timestamp,account,counterparty,category,country,channel,direction,"
    "amount\n";

TEST(CsvLoaderTest, LoadsAGoodFile) {
  absl::StatusOr<std::vector<Transaction>> rows = ParseCsv(
      std::string(kHeader) +
      "2026-03-01T09:30:00Z,ACC-1042,\"Acme, \"\"Inc.\"\"\",groceries,us,"
      "card,debit,42.5\r\n"
      "\n"
      "2026-03-02 10:00:00,ACC-1042,Payroll,payroll,US,ach,credit,5000\n"
      "2026-03-03,ACC-7,Bank,cash,US,CASH,Credit,9500.99\n");
  ASSERT_THAT(rows, IsOk());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].counterparty, "Acme, \"Inc.\"");
  EXPECT_EQ((*rows)[0].country, "US");
  EXPECT_EQ((*rows)[0].amount_cents, 4250);
  EXPECT_EQ((*rows)[0].ts, Ts(2026, 3, 1) + 9 * 3600 + 1800);
  EXPECT_EQ((*rows)[1].ts, Ts(2026, 3, 2) + 10 * 3600);
  EXPECT_EQ((*rows)[2].ts, Ts(2026, 3, 3));
  EXPECT_EQ((*rows)[2].channel, "cash");
  EXPECT_EQ((*rows)[2].direction, "credit");
  EXPECT_EQ((*rows)[2].amount_cents, 950099);
  EXPECT_EQ((*rows)[2].id, 3);
}

TEST(CsvLoaderTest, ColumnsMayComeInAnyOrderWithAnIgnoredId) {
  absl::StatusOr<std::vector<Transaction>> rows = ParseCsv(
      "id,amount,direction,channel,country,category,counterparty,account,"
      "timestamp\n"
      "99,1.00,debit,wire,DE,transfer,X,ACC-1,2026-01-01T00:00:00Z\n");
  ASSERT_THAT(rows, IsOk());
  EXPECT_EQ((*rows)[0].id, 1);
  EXPECT_EQ((*rows)[0].channel, "wire");
}

TEST(CsvLoaderTest, BadLinesAreNamedWithTheReason) {
  const std::string good =
      "2026-01-01T00:00:00Z,ACC-1,Shop,groceries,US,card,debit,1.00\n";
  const std::pair<std::string, std::string> cases[] = {
      {"2026-13-01T00:00:00Z,ACC-1,Shop,groceries,US,card,debit,1.00\n",
       "line 3: timestamp \"2026-13-01T00:00:00Z\""},
      {"2026-01-01T00:00:00Z,ACC 1,Shop,groceries,US,card,debit,1.00\n",
       "line 3: account \"ACC 1\""},
      {"2026-01-01T00:00:00Z,ACC-1,,groceries,US,card,debit,1.00\n",
       "line 3: counterparty"},
      {"2026-01-01T00:00:00Z,ACC-1,Shop,groceries,USA,card,debit,1.00\n",
       "line 3: country \"USA\""},
      {"2026-01-01T00:00:00Z,ACC-1,Shop,groceries,US,cheque,debit,1.00\n",
       "line 3: channel \"cheque\": must be cash, card, wire or ach"},
      {"2026-01-01T00:00:00Z,ACC-1,Shop,groceries,US,card,out,1.00\n",
       "line 3: direction \"out\""},
      {"2026-01-01T00:00:00Z,ACC-1,Shop,groceries,US,card,debit,1.005\n",
       "line 3: amount \"1.005\""},
      {"2026-01-01T00:00:00Z,ACC-1,Shop,groceries,US,card,debit,0\n",
       "line 3: amount \"0\""},
      {"2026-01-01T00:00:00Z,ACC-1,Shop,groceries,US,card,debit\n",
       "line 3: 7 fields; the header has 8"},
      {"2026-01-01T00:00:00Z,ACC-1,\"Shop,groceries,US,card,debit,1\n",
       "line 3: unterminated quoted field"},
  };
  for (const auto& [line, message] : cases) {
    EXPECT_THAT(
        ParseCsv(std::string(kHeader) + good + line),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << line;
  }
  EXPECT_THAT(ParseCsv("timestamp,account\n" + good),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: missing column \"counterparty\"")));
  EXPECT_THAT(ParseCsv("when,account\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1: unknown column \"when\"")));
  EXPECT_THAT(ParseCsv(""), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("empty file")));
  EXPECT_THAT(ParseCsv(kHeader), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("no transactions")));
}

// Found by tests/fuzz/csv_loader_fuzz.cc: absl::ParseTime also takes years
// of other lengths and "infinite-past"/"infinite-future", whose seconds
// (INT64_MIN/MAX) overflow the period arithmetic of ResolvePeriod.
TEST(CsvLoaderTest, TimestampsHaveFourDigitYears) {
  EXPECT_THAT(ParseTimestamp("0000-01-01"), IsOk());
  EXPECT_THAT(ParseTimestamp("9999-12-31T23:59:59-23:59"), IsOk());
  for (const char* text :
       {"20260-03-01", "20260-3-01T11:30:00+02:00", "-5-01-01", "+2026-03-01",
        "202-03-01", "-9223372036854775808-01-01 00:00:00", "infinite-past",
        "infinite-future", " 2026-03-01"}) {
    EXPECT_THAT(ParseTimestamp(text),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << text;
  }
  EXPECT_THAT(
      ParseCsv(std::string(kHeader) +
               "infinite-past,ACC-1,Shop,groceries,US,card,debit,1.00\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("line 2: timestamp \"infinite-past\"")));
}

TEST(CsvLoaderTest, MissingFileIsNotFound) {
  EXPECT_THAT(ReadTransactionsCsv("/nonexistent/x.csv"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("x.csv")));
}

TEST(ScopeTest, ReadsAccountAndPeriod) {
  Scope s =
      ParseScope("Assess the risk of account acc-1042 over the last 6 months.");
  EXPECT_EQ(s.account, "ACC-1042");
  EXPECT_EQ(s.period.kind, Period::Kind::kLastMonths);
  EXPECT_EQ(s.period.count, 6);
  EXPECT_EQ(s.period.text, "last 6 months");

  s = ParseScope("spending in the past ninety days? no: past 90 days");
  EXPECT_FALSE(s.account.has_value());
  EXPECT_EQ(s.period.kind, Period::Kind::kLastDays);
  EXPECT_EQ(s.period.count, 90);

  s = ParseScope("What did ACC-1337 do in 2025?");
  EXPECT_EQ(s.account, "ACC-1337");
  EXPECT_EQ(s.period.kind, Period::Kind::kYear);
  EXPECT_EQ(s.period.year, 2025);

  s = ParseScope("Totals since 2026-01-01 please");
  EXPECT_EQ(s.period.kind, Period::Kind::kSince);
  EXPECT_EQ(s.period.since_ts, Ts(2026, 1, 1));

  EXPECT_EQ(ParseScope("last year").period.count, 12);
  EXPECT_EQ(ParseScope("the last quarter").period.count, 3);
  EXPECT_EQ(ParseScope("last month").period.count, 1);
  EXPECT_EQ(ParseScope("last six months").period.count, 6);
  EXPECT_EQ(ParseScope("past 2 weeks").period.count, 14);
  EXPECT_EQ(ParseScope("over all time").period.kind, Period::Kind::kAll);

  s = ParseScope("Tell me about transactions");
  EXPECT_FALSE(s.account.has_value());
  EXPECT_TRUE(s.period.is_default);
  EXPECT_EQ(s.period.count, 12);
  // Not accounts: words that merely start like one.
  EXPECT_FALSE(ParseScope("according to ACC-x").account.has_value());
}

TEST(ScopeTest, PeriodsResolveAgainstTheNewestTransaction) {
  const int64_t newest = kGeneratedEndTs;  // 2026-10-31T23:59:59Z
  const int64_t end = Ts(2026, 11, 1);
  TimeRange r = ResolvePeriod(ParseScope("last 6 months").period, newest);
  EXPECT_EQ(r.from, Ts(2026, 5, 1));
  EXPECT_EQ(r.to, end);
  // The newest day counts whole, whatever the time of its last row.
  EXPECT_EQ(ResolvePeriod(ParseScope("").period, newest - 3600).to, end);
  EXPECT_EQ(ResolvePeriod(ParseScope("").period, newest).from, Ts(2025, 11, 1));
  EXPECT_EQ(ResolvePeriod(ParseScope("last 90 days").period, newest).from,
            end - 90 * 86400);
  r = ResolvePeriod(ParseScope("in 2025").period, newest);
  EXPECT_EQ(r.from, Ts(2025, 1, 1));
  EXPECT_EQ(r.to, Ts(2026, 1, 1));
  r = ResolvePeriod(ParseScope("since 2026-01-01").period, newest);
  EXPECT_EQ(r.from, Ts(2026, 1, 1));
  EXPECT_EQ(r.to, end);
  EXPECT_EQ(ResolvePeriod(ParseScope("all time").period, newest).from, 0);
  EXPECT_EQ(
      DescribeScope(ParseScope("ACC-1042 last 6 months"),
                    ResolvePeriod(ParseScope("last 6 months").period, newest)),
      "ACC-1042, last 6 months (2026-05-01 .. 2026-10-31)");
}

TEST(QueryRunnerTest, CancellationInterruptsALongQuery) {
  absl::StatusOr<SqliteDb> db = OpenSqlite(":memory:", true);
  ASSERT_THAT(db, IsOk());
  CancelToken cancel;
  QueryRunner runner(db->get(), &cancel);
  int64_t progress_calls = 0;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(300));
    cancel.Cancel("test");
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<SqlRow>> rows = runner.Query(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT COUNT(*) FROM c",
      {}, [&](int64_t) { ++progress_calls; });
  const absl::Time stopped = absl::Now();
  canceller.join();
  EXPECT_THAT(rows, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(stopped - cancel.requested_at(), absl::Milliseconds(100));
  EXPECT_GE(stopped - start, absl::Milliseconds(250));
  EXPECT_GE(progress_calls, 1);  // Reported while running.
}

TEST(QueryRunnerTest, BindsParameters) {
  absl::StatusOr<SqliteDb> db = OpenSqlite(":memory:", true);
  ASSERT_THAT(db, IsOk());
  QueryRunner runner(db->get(), nullptr);
  absl::StatusOr<std::vector<SqlRow>> rows =
      runner.Query("SELECT ? + 1, ? || 'b', ?", {int64_t{41}, "a", nullptr});
  ASSERT_THAT(rows, IsOk());
  EXPECT_EQ(AsInt((*rows)[0][0]), 42);
  EXPECT_EQ(AsString((*rows)[0][1]), "ab");
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>((*rows)[0][2]));
}

}  // namespace
}  // namespace agentstream::specialists::data
