// Reads a user's transactions from CSV (format in docs/DATA.md):
//
//   timestamp,account,counterparty,category,country,channel,direction,amount
//   2026-03-01T09:30:00Z,ACC-1042,"Acme, Inc.",groceries,US,card,debit,42.50
//
// The header names the columns (any order; an optional `id` column is
// ignored: ids follow file order). Fields may be double-quoted (RFC 4180,
// "" for a quote; no line breaks inside fields). Blank lines are skipped.
// Every error is kInvalidArgument naming the line and the reason:
//   "line 7: amount \"-5\": must be a positive number with at most 2
//    decimals"
#ifndef AGENTSTREAM_SPECIALISTS_DATA_CSV_LOADER_H_
#define AGENTSTREAM_SPECIALISTS_DATA_CSV_LOADER_H_

#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "specialists/data/transactions.h"

namespace agentstream::specialists::data {

absl::StatusOr<std::vector<Transaction>> ParseTransactionsCsv(std::istream& in);
// kNotFound when the file cannot be opened; the error names the path.
absl::StatusOr<std::vector<Transaction>> ReadTransactionsCsv(
    const std::string& path);

// Splits one CSV line into fields; kInvalidArgument for a stray quote.
absl::StatusOr<std::vector<std::string>> SplitCsvLine(std::string_view line);

// Parses "2026-03-01T09:30:00Z" (any RFC 3339 offset), "2026-03-01
// 09:30:00" (UTC) or "2026-03-01" (midnight UTC) to Unix seconds; the year
// has four digits.
absl::StatusOr<int64_t> ParseTimestamp(std::string_view text);
// Parses "42", "42.5", "42.50" to cents; positive, at most 2 decimals.
absl::StatusOr<int64_t> ParseAmountCents(std::string_view text);

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_CSV_LOADER_H_
