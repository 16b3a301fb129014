// The flags every database-backed specialist takes, and the start-up step
// that makes the database exist (generated or loaded from CSV).
#ifndef AGENTSTREAM_SPECIALISTS_DATA_DATA_FLAGS_H_
#define AGENTSTREAM_SPECIALISTS_DATA_DATA_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/flags.h"

namespace agentstream::specialists::data {

struct DataFlags {
  std::string db = "var/agentstream.db";
  std::string csv;
  int64_t seed = 42;
  // Make the database and exit instead of serving (an init step that makes
  // a shared data set once, e.g. docker compose's `dataset` service).
  bool generate_only = false;
};

// --db (AGENTSTREAM_DB), --csv (AGENTSTREAM_CSV), --seed (AGENTSTREAM_SEED),
// --generate-only (AGENTSTREAM_GENERATE_ONLY).
void RegisterDataFlags(FlagSet& flags, DataFlags* data);

// EnsureDatabase() with the flags' values.
absl::Status PrepareDatabase(const DataFlags& data);

// For mains, after PrepareDatabase() succeeded: with --generate-only, logs
// where the database is and exits the process with status 0; otherwise
// returns.
void ExitIfGenerateOnly(const DataFlags& data);

}  // namespace agentstream::specialists::data

#endif  // AGENTSTREAM_SPECIALISTS_DATA_DATA_FLAGS_H_
