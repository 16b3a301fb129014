#include "specialists/data/csv_loader.h"

#include <algorithm>
#include <array>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace agentstream::specialists::data {
namespace {

constexpr std::array<const char*, 8> kColumns = {
    "timestamp", "account", "counterparty", "category",
    "country",   "channel", "direction",    "amount"};

bool ValidAccount(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitCsvLine(std::string_view line) {
  std::vector<std::string> fields;
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) {
          return absl::InvalidArgumentError("unterminated quoted field");
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') {
        return absl::InvalidArgumentError(
            "unexpected character after a closing quote");
      }
    } else {
      while (i < line.size() && line[i] != ',') {
        if (line[i] == '"') {
          return absl::InvalidArgumentError("quote inside an unquoted field");
        }
        field.push_back(line[i++]);
      }
    }
    fields.push_back(field);
    if (i >= line.size()) break;
    ++i;  // The comma.
  }
  return fields;
}

absl::StatusOr<int64_t> ParseTimestamp(std::string_view text) {
  const auto bad = [] {
    return absl::InvalidArgumentError(
        "must be an ISO 8601 time such as 2026-03-01T09:30:00Z");
  };
  // Every accepted form starts with a four-digit year (docs/DATA.md).
  // absl::ParseTime alone also takes other years ("20260-03-01", "-5-01-01")
  // and "infinite-past"/"infinite-future", whose seconds (INT64_MIN/MAX)
  // overflow the period arithmetic of scope.cc.
  if (text.size() < 5 || text[4] != '-' ||
      !std::all_of(text.begin(), text.begin() + 4,
                   [](char c) { return absl::ascii_isdigit(c); })) {
    return bad();
  }
  const std::string s(text);
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &err) ||
      absl::ParseTime("%Y-%m-%d %H:%M:%S", s, absl::UTCTimeZone(), &t, &err) ||
      absl::ParseTime("%Y-%m-%d", s, absl::UTCTimeZone(), &t, &err)) {
    return absl::ToUnixSeconds(t);
  }
  return bad();
}

absl::StatusOr<int64_t> ParseAmountCents(std::string_view text) {
  const auto bad = [] {
    return absl::InvalidArgumentError(
        "must be a positive number with at most 2 decimals");
  };
  if (text.empty() || text.size() > 15) return bad();
  int64_t whole = 0;
  int64_t cents = 0;
  size_t i = 0;
  size_t digits = 0;
  for (; i < text.size() && absl::ascii_isdigit(text[i]); ++i, ++digits) {
    whole = whole * 10 + (text[i] - '0');
  }
  if (i < text.size()) {
    if (text[i] != '.' || digits == 0) return bad();
    ++i;
    size_t decimals = 0;
    for (; i < text.size(); ++i, ++decimals) {
      if (!absl::ascii_isdigit(text[i]) || decimals >= 2) return bad();
      cents = cents * 10 + (text[i] - '0');
    }
    if (decimals == 1) cents *= 10;
  }
  if (digits == 0) return bad();
  const int64_t total = whole * 100 + cents;
  if (total <= 0) return bad();
  return total;
}

absl::StatusOr<std::vector<Transaction>> ParseTransactionsCsv(
    std::istream& in) {
  std::string line;
  int64_t line_no = 0;
  std::array<int, kColumns.size()> index;
  index.fill(-1);
  size_t width = 0;
  bool have_header = false;
  std::vector<Transaction> rows;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<std::vector<std::string>> fields = SplitCsvLine(line);
    if (!fields.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": ", fields.status().message()));
    }
    if (!have_header) {
      have_header = true;
      width = fields->size();
      for (size_t f = 0; f < fields->size(); ++f) {
        const std::string name =
            absl::AsciiStrToLower(absl::StripAsciiWhitespace((*fields)[f]));
        bool known = name == "id";
        for (size_t c = 0; c < kColumns.size(); ++c) {
          if (name == kColumns[c]) {
            if (index[c] >= 0) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "line ", line_no, ": column \"", name, "\" appears twice"));
            }
            index[c] = static_cast<int>(f);
            known = true;
          }
        }
        if (!known) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", line_no, ": unknown column \"", name,
                           "\"; expected ", absl::StrJoin(kColumns, ",")));
        }
      }
      for (size_t c = 0; c < kColumns.size(); ++c) {
        if (index[c] < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "line ", line_no, ": missing column \"", kColumns[c],
              "\"; the header must name ", absl::StrJoin(kColumns, ",")));
        }
      }
      continue;
    }
    if (fields->size() != width) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": ", fields->size(),
                       " fields; the header has ", width));
    }
    auto field = [&](int c) {
      return std::string(absl::StripAsciiWhitespace((*fields)[index[c]]));
    };
    auto error = [&](int c, const std::string& reason) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ",
                                                     kColumns[c], " \"",
                                                     field(c), "\": ", reason));
    };
    Transaction t;
    absl::StatusOr<int64_t> ts = ParseTimestamp(field(0));
    if (!ts.ok()) return error(0, std::string(ts.status().message()));
    t.ts = *ts;
    t.account = field(1);
    if (!ValidAccount(t.account)) {
      return error(1, "must be 1-64 letters, digits, '-', '_' or '.'");
    }
    t.counterparty = field(2);
    if (t.counterparty.empty()) return error(2, "must not be empty");
    t.category = absl::AsciiStrToLower(field(3));
    if (t.category.empty()) return error(3, "must not be empty");
    t.country = absl::AsciiStrToUpper(field(4));
    if (t.country.size() != 2 || !absl::ascii_isalpha(t.country[0]) ||
        !absl::ascii_isalpha(t.country[1])) {
      return error(4, "must be a 2-letter ISO country code");
    }
    t.channel = absl::AsciiStrToLower(field(5));
    if (t.channel != "cash" && t.channel != "card" && t.channel != "wire" &&
        t.channel != "ach") {
      return error(5, "must be cash, card, wire or ach");
    }
    t.direction = absl::AsciiStrToLower(field(6));
    if (t.direction != "credit" && t.direction != "debit") {
      return error(6, "must be credit or debit");
    }
    absl::StatusOr<int64_t> cents = ParseAmountCents(field(7));
    if (!cents.ok()) return error(7, std::string(cents.status().message()));
    t.amount_cents = *cents;
    t.id = static_cast<int64_t>(rows.size()) + 1;
    rows.push_back(std::move(t));
  }
  if (!have_header) {
    return absl::InvalidArgumentError(
        absl::StrCat("line 1: empty file; the header must name ",
                     absl::StrJoin(kColumns, ",")));
  }
  if (rows.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", line_no + 1, ": no transactions after the header"));
  }
  return rows;
}

absl::StatusOr<std::vector<Transaction>> ReadTransactionsCsv(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  absl::StatusOr<std::vector<Transaction>> rows = ParseTransactionsCsv(in);
  if (!rows.ok()) {
    return absl::Status(rows.status().code(),
                        absl::StrCat(path, ": ", rows.status().message()));
  }
  return rows;
}

}  // namespace agentstream::specialists::data
