// The fixed-seed transaction generator: the same options give the same rows,
// byte for byte (its own PRNG; no std:: distributions, whose output differs
// between standard libraries). The data ends at a fixed instant, not "now".
//
// Planted patterns (docs/DATA.md lists them with their exact dates), all in
// the last 6 months unless noted:
//   ACC-1042  structuring (5 cash deposits of 9,500-9,990 within 4 days),
//             a velocity burst (24 transactions within 6 hours), high
//             counterparty concentration (30 wires to one counterparty),
//             an outlier (a 248,000.00 wire to a high-risk jurisdiction);
//   ACC-1337  structuring (4 cash deposits of 9,000-9,800 within 6 days);
//   ACC-1500  a velocity burst (30 transactions within 5 hours);
//   ACC-1777  repeated wires to high-risk jurisdictions;
//   ACC-1234  structuring 19 months before the end (outside "last 6 months").
#ifndef AGENTSTREAM_SPECIALISTS_DATA_GENERATOR_H_
#define AGENTSTREAM_SPECIALISTS_DATA_GENERATOR_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "specialists/data/sql.h"
#include "specialists/data/transactions.h"

namespace agentstream::specialists::data {

// 2026-10-31T23:59:59Z: the newest possible transaction.
inline constexpr int64_t kGeneratedEndTs = 1793491199;
// 2024-11-01T00:00:00Z: 24 months before the end.
inline constexpr int64_t kGeneratedStartTs = 1730419200;

struct GeneratorOptions {
  uint64_t seed = 42;
  int accounts = 1000;  // ACC-1000 .. ACC-(1000+accounts-1); >= 800.
};

// Rows sorted by time with ids 1..N.
std::vector<Transaction> GenerateTransactions(const GeneratorOptions& options);

// Generates into `db` (schema, rows, indexes, meta source
// "generated:seed=N"), in one transaction.
absl::Status GenerateDatabase(sqlite3* db, const GeneratorOptions& options);

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_GENERATOR_H_
