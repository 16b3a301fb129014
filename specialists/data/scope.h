// What part of the data a question is about: an account and a period, read
// from the text ("ACC-1042", "last 6 months", "last 90 days", "in 2025",
// "since 2026-01-01", "all time"). Periods are relative to the data set's
// newest transaction, never to the wall clock, so answers do not drift.
//
// Defaults: every account; the last 12 months.
//
// Resolution gives a half-open range [from, to) of Unix seconds where `to`
// is the UTC midnight after the newest transaction (the day it falls on is
// included whole):
//   last N months: from = `to` minus N calendar months (UTC)
//   last N days/weeks: from = to - N*86400 (*7)
//   last N years: N*12 months
//   in YYYY: [YYYY-01-01, (YYYY+1)-01-01), not clipped to the data
//   since DATE: [DATE 00:00:00Z, to)
//   all time: [0, to)
// Pure functions, thread-safe.
#ifndef AGENTSTREAM_SPECIALISTS_DATA_SCOPE_H_
#define AGENTSTREAM_SPECIALISTS_DATA_SCOPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentstream::specialists::data {

struct Period {
  enum class Kind { kLastMonths, kLastDays, kYear, kSince, kAll };
  Kind kind = Kind::kLastMonths;
  int64_t count = 12;                   // Months or days for kLast*.
  int year = 0;                         // kYear.
  int64_t since_ts = 0;                 // kSince: Unix seconds.
  std::string text = "last 12 months";  // As understood, for display.
  bool is_default = true;
};

struct Scope {
  std::optional<std::string> account;  // "ACC-1042"; nullopt: all accounts.
  Period period;
};

struct TimeRange {
  int64_t from = 0;  // Inclusive.
  int64_t to = 0;    // Exclusive.
};

Scope ParseScope(std::string_view text);
TimeRange ResolvePeriod(const Period& period, int64_t newest_ts);
// "2026-05-01" (UTC date of a Unix time).
std::string FormatDate(int64_t ts);
// "ACC-1042, last 6 months (2026-05-01 .. 2026-10-31)".
std::string DescribeScope(const Scope& scope, const TimeRange& range);

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_SCOPE_H_
