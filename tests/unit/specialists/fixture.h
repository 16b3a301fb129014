// A small hand-made transactions database with known answers, shared by the
// specialists' unit tests. docs: the rows are listed in fixture.cc.
#ifndef AGENTSTREAM_TESTS_UNIT_SPECIALISTS_FIXTURE_H_
#define AGENTSTREAM_TESTS_UNIT_SPECIALISTS_FIXTURE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentstream/v1/update.pb.h"
#include "nlohmann/json.hpp"
#include "specialists/data/transactions.h"
#include "specialists/sdk/cancel_token.h"
#include "specialists/sdk/specialist.h"
#include "tests/testing/subprocess.h"

namespace agentstream::specialists::testing {

// Newest transaction: 2026-06-30 12:00:00Z, so "last 6 months" is
// [2026-01-01, 2026-07-01).
inline constexpr int64_t kFixtureFrom6m = 1767225600;  // 2026-01-01
inline constexpr int64_t kFixtureTo = 1782864000;      // 2026-07-01

std::vector<data::Transaction> FixtureRows();
// FixtureRows() in a database file of a fresh temporary directory, removed
// with the object (ScopedTempDir).
struct FixtureDb {
  agentstream::testing::ScopedTempDir dir;
  std::string path;
};
// Writes FixtureRows() to a fresh database file; the file, or why it could
// not.
absl::StatusOr<FixtureDb> MakeFixtureDb();

// Runs `specialist.Analyze` with an in-memory sink; collects every update.
struct Captured {
  absl::Status status;
  std::vector<agentstream::v1::Update> updates;
  std::vector<nlohmann::json> partials;  // partial_result payloads, in order.
  // The partial result whose `key` equals `value` (null json if none).
  nlohmann::json Partial(const std::string& key,
                         const std::string& value) const;
  int Count(agentstream::v1::Update::KindCase kind) const;
  // Every update as JSON text, for "never echoed" checks; timestamps and
  // durations are zeroed, since a clock reading may hold any digits.
  std::string AllText() const;
};
Captured RunAnalyze(Specialist& specialist, const std::string& question,
                    const std::string& task = "");

}  // namespace agentstream::specialists::testing

#endif  // AGENTSTREAM_TESTS_UNIT_SPECIALISTS_FIXTURE_H_
