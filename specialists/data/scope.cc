#include "specialists/data/scope.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace agentstream::specialists::data {
namespace {

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-') {
      current.push_back(absl::ascii_tolower(u));
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  // Trailing dashes ("ACC-1042-") are punctuation.
  for (std::string& w : words) {
    while (!w.empty() && w.back() == '-') w.pop_back();
    while (!w.empty() && w.front() == '-') w.erase(0, 1);
  }
  return words;
}

std::optional<int64_t> Number(const std::string& word) {
  static const char* const kNames[] = {
      "zero",    "one",        "two",        "three",        "four",
      "five",    "six",        "seven",      "eight",        "nine",
      "ten",     "eleven",     "twelve",     "thirteen",     "fourteen",
      "fifteen", "sixteen",    "seventeen",  "eighteen",     "nineteen",
      "twenty",  "twenty-one", "twenty-two", "twenty-three", "twenty-four"};
  int64_t n;
  if (absl::SimpleAtoi(word, &n) && n > 0 && n <= 100000) return n;
  for (int i = 1; i < static_cast<int>(std::size(kNames)); ++i) {
    if (word == kNames[i]) return i;
  }
  if (word == "a" || word == "an") return 1;
  return std::nullopt;
}

bool IsUnit(const std::string& w, const char* singular) {
  return w == singular || w == absl::StrCat(singular, "s");
}

std::optional<int64_t> ParseDate(const std::string& word) {
  absl::CivilDay day;
  if (word.size() == 10 && absl::ParseCivilTime(word, &day)) {
    return absl::ToUnixSeconds(absl::FromCivil(day, absl::UTCTimeZone()));
  }
  return std::nullopt;
}

std::optional<int> Year(const std::string& word) {
  int y;
  if (word.size() == 4 && absl::SimpleAtoi(word, &y) && y >= 1970 &&
      y <= 2999) {
    return y;
  }
  return std::nullopt;
}

Period LastMonths(int64_t n, const std::string& text) {
  Period p;
  p.kind = Period::Kind::kLastMonths;
  p.count = n;
  p.text = text;
  p.is_default = false;
  return p;
}

Period LastDays(int64_t n, const std::string& text) {
  Period p;
  p.kind = Period::Kind::kLastDays;
  p.count = n;
  p.text = text;
  p.is_default = false;
  return p;
}

// A period phrase starting at words[i], if any.
std::optional<Period> PeriodAt(const std::vector<std::string>& w, size_t i) {
  auto at = [&](size_t k) -> std::string {
    return k < w.size() ? w[k] : std::string();
  };
  const std::string& word = w[i];
  if (word == "last" || word == "past" || word == "previous" ||
      word == "trailing" || word == "recent") {
    size_t k = i + 1;
    int64_t n = 1;
    if (std::optional<int64_t> num = Number(at(k)); num.has_value()) {
      n = *num;
      ++k;
    }
    const std::string unit = at(k);
    const std::string count_text = n == 1 ? "" : absl::StrCat(n, " ");
    auto label = [&](const char* singular) {
      return absl::StrCat("last ", count_text, singular, n == 1 ? "" : "s");
    };
    if (IsUnit(unit, "month")) return LastMonths(n, label("month"));
    if (IsUnit(unit, "year")) return LastMonths(n * 12, label("year"));
    if (IsUnit(unit, "quarter")) return LastMonths(n * 3, label("quarter"));
    if (IsUnit(unit, "week")) return LastDays(n * 7, label("week"));
    if (IsUnit(unit, "day")) return LastDays(n, label("day"));
    return std::nullopt;
  }
  if (word == "in" || word == "during" || word == "for" || word == "year" ||
      word == "of") {
    if (std::optional<int> y = Year(at(i + 1)); y.has_value()) {
      Period p;
      p.kind = Period::Kind::kYear;
      p.year = *y;
      p.text = absl::StrCat("in ", *y);
      p.is_default = false;
      return p;
    }
  }
  if (word == "since" || word == "from" || word == "after") {
    std::optional<int64_t> ts = ParseDate(at(i + 1));
    if (!ts.has_value()) {
      if (std::optional<int> y = Year(at(i + 1)); y.has_value()) {
        ts = absl::ToUnixSeconds(
            absl::FromCivil(absl::CivilDay(*y, 1, 1), absl::UTCTimeZone()));
      }
    }
    if (ts.has_value()) {
      Period p;
      p.kind = Period::Kind::kSince;
      p.since_ts = *ts;
      p.text = absl::StrCat("since ", FormatDate(*ts));
      p.is_default = false;
      return p;
    }
  }
  if ((word == "all" && (at(i + 1) == "time" || at(i + 1) == "history" ||
                         at(i + 1) == "data")) ||
      ((word == "entire" || word == "whole" || word == "full") &&
       (at(i + 1) == "history" || at(i + 1) == "period" ||
        at(i + 1) == "dataset" || at(i + 1) == "data"))) {
    Period p;
    p.kind = Period::Kind::kAll;
    p.text = "all time";
    p.is_default = false;
    return p;
  }
  return std::nullopt;
}

}  // namespace

Scope ParseScope(std::string_view text) {
  Scope scope;
  const std::vector<std::string> words = Words(text);
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (!scope.account.has_value() && w.size() > 4 && w.rfind("acc-", 0) == 0) {
      bool digits = true;
      for (size_t k = 4; k < w.size(); ++k) {
        digits =
            digits && absl::ascii_isdigit(static_cast<unsigned char>(w[k]));
      }
      if (digits) scope.account = absl::AsciiStrToUpper(w);
    }
    if (scope.period.is_default) {
      if (std::optional<Period> p = PeriodAt(words, i); p.has_value()) {
        scope.period = *p;
      }
    }
  }
  return scope;
}

TimeRange ResolvePeriod(const Period& period, int64_t newest_ts) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  // The UTC midnight after the newest transaction.
  const int64_t to = absl::ToUnixSeconds(absl::FromCivil(
      absl::ToCivilDay(absl::FromUnixSeconds(newest_ts), utc) + 1, utc));
  switch (period.kind) {
    case Period::Kind::kLastMonths: {
      const absl::CivilSecond end =
          absl::ToCivilSecond(absl::FromUnixSeconds(to), utc);
      const absl::CivilSecond start(end.year(), end.month() - period.count,
                                    end.day(), end.hour(), end.minute(),
                                    end.second());
      return {absl::ToUnixSeconds(absl::FromCivil(start, utc)), to};
    }
    case Period::Kind::kLastDays:
      return {to - period.count * 86400, to};
    case Period::Kind::kYear:
      return {absl::ToUnixSeconds(
                  absl::FromCivil(absl::CivilDay(period.year, 1, 1), utc)),
              absl::ToUnixSeconds(
                  absl::FromCivil(absl::CivilDay(period.year + 1, 1, 1), utc))};
    case Period::Kind::kSince:
      return {period.since_ts, to};
    case Period::Kind::kAll:
      return {0, to};
  }
  return {0, to};
}

std::string FormatDate(int64_t ts) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(ts),
                          absl::UTCTimeZone());
}

std::string DescribeScope(const Scope& scope, const TimeRange& range) {
  const std::string who =
      scope.account.has_value() ? *scope.account : std::string("all accounts");
  const std::string from =
      range.from <= 0 ? std::string("the beginning") : FormatDate(range.from);
  return absl::StrCat(who, ", ", scope.period.text, " (", from, " .. ",
                      FormatDate(range.to - 1), ")");
}

}  // namespace agentstream::specialists::data
