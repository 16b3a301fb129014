#include "specialists/data/data_flags.h"

#include <cstdlib>

#include "common/log.h"
#include "specialists/data/transactions.h"

namespace agentstream::specialists::data {

void RegisterDataFlags(FlagSet& flags, DataFlags* data) {
  flags.String("db", &data->db,
               "SQLite database of transactions; created at first start "
               "(relative paths are relative to the working directory).",
               "AGENTSTREAM_DB");
  flags.String("csv", &data->csv,
               "Load transactions from this CSV file (see docs/DATA.md) "
               "instead of generating them.",
               "AGENTSTREAM_CSV");
  flags.Int("seed", &data->seed,
            "Seed of the generated data set (used only when --db is "
            "created without --csv).",
            "AGENTSTREAM_SEED");
  flags.Bool("generate-only", &data->generate_only,
             "Make the database (as above) and exit 0 without serving.",
             "AGENTSTREAM_GENERATE_ONLY");
}

absl::Status PrepareDatabase(const DataFlags& data) {
  return EnsureDatabase(data.db, data.csv, static_cast<uint64_t>(data.seed));
}

void ExitIfGenerateOnly(const DataFlags& data) {
  if (!data.generate_only) return;
  AS_LOG(INFO) << "database ready at " << data.db
               << "; --generate-only: exiting";
  std::exit(0);
}

}  // namespace agentstream::specialists::data
