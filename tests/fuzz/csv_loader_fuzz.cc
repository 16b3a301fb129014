// Fuzz target: the transactions CSV loader (specialists/data/csv_loader.h),
// against the format of docs/DATA.md.
//
// Input: a CSV file. Asserted:
//   - every error is kInvalidArgument and names a line ("line N: ...");
//   - every accepted row is what docs/DATA.md allows: ids 1..N in file
//     order; a timestamp of one of the documented forms, all of which have
//     a four-digit year (so within years 0000..9999, give or take the
//     offset); an account of 1-64 [A-Za-z0-9._-]; a non-empty, trimmed
//     counterparty; a non-empty, trimmed, lower-case category; two upper-case
//     letters of country; channel cash|card|wire|ach; direction
//     credit|debit; amount_cents > 0 (at most 15 characters of amount);
//   - writing the rows back as CSV (every field quoted, RFC 3339 UTC times)
//     and loading that gives the same rows;
//   - SplitCsvLine of the first line, written back quoted, splits the same.
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "specialists/data/csv_loader.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

namespace data = agentstream::specialists::data;

// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z; an offset moves a time
// by up to kMaxOffset either way. RFC 3339 offsets stop at +-23:59, but
// absl::ParseTime also reads seconds ("+23:59:59", even "+23:5959"), which
// the loader accepts: harmless, the year still has four digits.
constexpr int64_t kYear0 = -62167219200;
constexpr int64_t kYear10000 = 253402300800;
constexpr int64_t kMaxOffset = 24 * 3600 - 1;
// 15 characters of amount: 999999999999999 (whole) at most.
constexpr int64_t kMaxCents = 99'999'999'999'999'900;

std::string Quoted(const std::string& field) {
  return absl::StrCat("\"", absl::StrReplaceAll(field, {{"\"", "\"\""}}), "\"");
}

bool Trimmed(const std::string& s) {
  return !s.empty() && absl::StripAsciiWhitespace(s) == s;
}

void CheckRow(const data::Transaction& t, int64_t index) {
  FUZZ_CHECK(t.id == index + 1, absl::StrCat("id ", t.id));
  // Inclusive at the top: "9999-12-31T23:59:60-23:59" (a leap second) is
  // 10000-01-01T23:59:00Z.
  FUZZ_CHECK(
      t.ts >= kYear0 - kMaxOffset && t.ts <= kYear10000 + kMaxOffset,
      absl::StrCat("timestamp ", t.ts, " is outside the four-digit years"));
  FUZZ_CHECK(!t.account.empty() && t.account.size() <= 64, t.account);
  for (char c : t.account) {
    FUZZ_CHECK(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                   c == '_' || c == '.',
               t.account);
  }
  FUZZ_CHECK(Trimmed(t.counterparty), t.counterparty);
  FUZZ_CHECK(Trimmed(t.category), t.category);
  FUZZ_CHECK(absl::AsciiStrToLower(t.category) == t.category, t.category);
  FUZZ_CHECK(t.country.size() == 2 && absl::ascii_isupper(t.country[0]) &&
                 absl::ascii_isupper(t.country[1]),
             t.country);
  FUZZ_CHECK(t.channel == "cash" || t.channel == "card" ||
                 t.channel == "wire" || t.channel == "ach",
             t.channel);
  FUZZ_CHECK(t.direction == "credit" || t.direction == "debit", t.direction);
  FUZZ_CHECK(t.amount_cents > 0 && t.amount_cents <= kMaxCents,
             absl::StrCat("amount ", t.amount_cents));
}

bool SameRow(const data::Transaction& a, const data::Transaction& b) {
  return a.id == b.id && a.ts == b.ts && a.account == b.account &&
         a.counterparty == b.counterparty && a.category == b.category &&
         a.country == b.country && a.channel == b.channel &&
         a.direction == b.direction && a.amount_cents == b.amount_cents;
}

std::string WriteCsv(const std::vector<data::Transaction>& rows) {
  std::string out =
      "timestamp,account,counterparty,category,country,channel,direction,"
      "amount\n";
  for (const auto& t : rows) {
    // In UTC, unless that year is not a four-digit one: then in the offset
    // that makes it year 0000 or 9999 again.
    absl::TimeZone zone = absl::UTCTimeZone();
    if (t.ts < kYear0) zone = absl::FixedTimeZone(kMaxOffset);
    if (t.ts >= kYear10000) zone = absl::FixedTimeZone(-kMaxOffset);
    std::string ts = absl::FormatTime("%E4Y-%m-%dT%H:%M:%S%E*z",
                                      absl::FromUnixSeconds(t.ts), zone);
    // The one time a four-digit year reaches only with a leap second.
    if (t.ts == kYear10000 + kMaxOffset) ts = "9999-12-31T23:59:60-23:59:59";
    // The shortest form: the loader reads at most 15 characters of amount.
    std::string amount = absl::StrCat(t.amount_cents / 100);
    if (t.amount_cents % 10 != 0) {
      absl::StrAppend(&amount, ".", t.amount_cents % 100 / 10,
                      t.amount_cents % 10);
    } else if (t.amount_cents % 100 != 0) {
      absl::StrAppend(&amount, ".", t.amount_cents % 100 / 10);
    }
    absl::StrAppend(&out, Quoted(ts), ",", Quoted(t.account), ",",
                    Quoted(t.counterparty), ",", Quoted(t.category), ",",
                    Quoted(t.country), ",", Quoted(t.channel), ",",
                    Quoted(t.direction), ",", Quoted(amount), "\r\n");
  }
  return out;
}

void CheckError(const absl::Status& s) {
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, s.ToString());
  FUZZ_CHECK(absl::StartsWith(s.message(), "line "), s.ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string text(reinterpret_cast<const char*>(bytes), size);

  // One line alone: split, written back quoted, split again.
  const std::string first_line = text.substr(0, text.find('\n'));
  if (auto fields = data::SplitCsvLine(first_line); fields.ok()) {
    std::string again;
    for (size_t i = 0; i < fields->size(); ++i) {
      absl::StrAppend(&again, i ? "," : "", Quoted((*fields)[i]));
    }
    auto fields2 = data::SplitCsvLine(again);
    FUZZ_CHECK(fields2.ok() && *fields2 == *fields, again);
  }

  std::istringstream in(text);
  absl::StatusOr<std::vector<data::Transaction>> rows =
      data::ParseTransactionsCsv(in);
  if (!rows.ok()) return CheckError(rows.status()), 0;
  FUZZ_CHECK(!rows->empty(), "accepted a file without rows");
  for (size_t i = 0; i < rows->size(); ++i) {
    CheckRow((*rows)[i], static_cast<int64_t>(i));
  }

  const std::string written = WriteCsv(*rows);
  std::istringstream in2(written);
  absl::StatusOr<std::vector<data::Transaction>> rows2 =
      data::ParseTransactionsCsv(in2);
  FUZZ_CHECK(rows2.ok(), rows2.status().ToString() + "\n" + written);
  FUZZ_CHECK(rows2->size() == rows->size(), "row count changed");
  for (size_t i = 0; i < rows->size(); ++i) {
    FUZZ_CHECK(SameRow((*rows)[i], (*rows2)[i]),
               absl::StrCat("row ", i + 1, " changed:\n", written));
  }
  return 0;
}
