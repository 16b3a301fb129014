#include "tests/unit/specialists/fixture.h"

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/update_json.h"
#include "gtest/gtest.h"
#include "specialists/data/sql.h"
#include "tests/testing/subprocess.h"

namespace agentstream::specialists::testing {
namespace {

int64_t Ts(int y, int m, int d, int hh = 12, int mm = 0) {
  return absl::ToUnixSeconds(absl::FromCivil(
      absl::CivilSecond(y, m, d, hh, mm, 0), absl::UTCTimeZone()));
}

void Add(std::vector<data::Transaction>* rows, const std::string& account,
         int64_t ts, const std::string& counterparty,
         const std::string& category, const std::string& country,
         const std::string& channel, const std::string& direction,
         int64_t cents) {
  data::Transaction t;
  t.ts = ts;
  t.account = account;
  t.counterparty = counterparty;
  t.category = category;
  t.country = country;
  t.channel = channel;
  t.direction = direction;
  t.amount_cents = cents;
  rows->push_back(t);
}

}  // namespace

std::vector<data::Transaction> FixtureRows() {
  std::vector<data::Transaction> rows;
  const std::string a = "ACC-1042";
  // History before the last 6 months (Jul-Dec 2025) and the period itself
  // (Jan-Jun 2026): salary, rent and groceries every month.
  for (int i = 0; i < 12; ++i) {
    const int y = i < 6 ? 2025 : 2026;
    const int m = i < 6 ? 7 + i : i - 5;
    Add(&rows, a, Ts(y, m, 1, 6), "Acme Payroll", "payroll", "US", "ach",
        "credit", 500000);
    Add(&rows, a, Ts(y, m, 2, 9), "Landlord LLC", "rent", "US", "ach", "debit",
        150000);
    const int cards = i < 6 ? 5 : 10;
    for (int k = 0; k < cards; ++k) {
      Add(&rows, a, Ts(y, m, 3 + k * 2, 18), "Corner Grocer", "groceries", "US",
          "card", "debit", 5000);
    }
  }
  // Structuring: 4 cash deposits just under 10,000 within 4 days, and one
  // more alone in May (a candidate, not a cluster).
  const int64_t deposits[][2] = {
      {10, 950000}, {11, 980000}, {12, 900000}, {14, 990000}};
  for (const auto& [day, cents] : deposits) {
    Add(&rows, a, Ts(2026, 3, static_cast<int>(day), 11), "Cash deposit",
        "cash", "US", "cash", "credit", cents);
  }
  Add(&rows, a, Ts(2026, 5, 20, 11), "Cash deposit", "cash", "US", "cash",
      "credit", 950000);
  // Velocity: 12 card payments within 5.5 hours on 2026-04-26, more than a
  // day away from any other transaction of the account.
  for (int k = 0; k < 12; ++k) {
    Add(&rows, a, Ts(2026, 4, 26, 10) + k * 1800, "Quick Mart", "groceries",
        "US", "card", "debit", 2000);
  }
  // High-risk jurisdictions; the June wire is the outlier.
  Add(&rows, a, Ts(2026, 2, 5, 15), "Levant Supply House", "trading", "SY",
      "wire", "debit", 500000);
  Add(&rows, a, Ts(2026, 6, 10, 15), "Caspian Horizon Exports", "trading", "IR",
      "wire", "debit", 6000000);
  // Another account, plain; its last row is the newest of the data set.
  for (int k = 0; k < 20; ++k) {
    Add(&rows, "ACC-2000", Ts(2026, 1 + k % 6, 5 + k, 12), "Corner Grocer",
        "groceries", "US", "card", "debit", 10000);
  }
  Add(&rows, "ACC-2000", Ts(2025, 8, 8, 8), "Acme Payroll", "payroll", "US",
      "ach", "credit", 300000);
  Add(&rows, "ACC-2000", Ts(2026, 6, 30, 12), "Acme Payroll", "payroll", "US",
      "ach", "credit", 300000);
  return rows;
}

absl::StatusOr<FixtureDb> MakeFixtureDb() {
  absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("fixture");
  if (!dir.ok()) return dir.status();
  FixtureDb fixture{*std::move(dir), ""};
  fixture.path = fixture.dir.File("fixture.db");
  {
    absl::StatusOr<data::SqliteDb> db = data::OpenSqlite(fixture.path, true);
    if (!db.ok()) return db.status();
    if (absl::Status s = data::InsertTransactions(db->get(), FixtureRows());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = data::CreateIndexes(db->get()); !s.ok()) return s;
  }
  return fixture;
}

nlohmann::json Captured::Partial(const std::string& key,
                                 const std::string& value) const {
  for (const nlohmann::json& p : partials) {
    if (p.contains(key) && p[key] == value) return p;
  }
  return nullptr;
}

int Captured::Count(agentstream::v1::Update::KindCase kind) const {
  int n = 0;
  for (const auto& u : updates) n += u.kind_case() == kind ? 1 : 0;
  return n;
}

std::string Captured::AllText() const {
  std::string out;
  for (agentstream::v1::Update u : updates) {
    // Clock readings are not echoes: a timestamp may contain any digits
    // (CI once saw "0532" in emitted_at_ns).
    u.set_emitted_at(0);
    if (u.has_specialist_complete()) {
      u.mutable_specialist_complete()->set_duration_ms(0);
    }
    out += UpdateToJson(u).dump() + "\n";
  }
  return out;
}

Captured RunAnalyze(Specialist& specialist, const std::string& question,
                    const std::string& task) {
  Captured captured;
  AnalyzeRequest request;
  request.set_request_id("req_test");
  request.set_question(question);
  request.set_task(task);
  CancelToken cancel;
  UpdateSink sink({"req_test", specialist.Card().name(), "test:0"},
                  Clock::Real(), [&](const agentstream::v1::Update& u) {
                    captured.updates.push_back(u);
                    if (u.has_partial_result()) {
                      captured.partials.push_back(
                          StructToJson(u.partial_result().result()));
                    }
                    return true;
                  });
  captured.status = specialist.Analyze(request, sink, cancel);
  return captured;
}

}  // namespace agentstream::specialists::testing
