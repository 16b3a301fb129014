// data_analyst: serves the DataAnalyst specialist over gRPC.
#include <memory>

#include "specialists/data/data_flags.h"
#include "specialists/data_analyst/data_analyst.h"
#include "specialists/sdk/specialist_server.h"

int main(int argc, char** argv) {
  using agentstream::specialists::DataAnalyst;
  namespace data = agentstream::specialists::data;
  data::DataFlags data_flags;
  agentstream::specialists::SpecialistMain main;
  main.program = "data_analyst";
  main.usage =
      "Serves the DataAnalyst specialist (agentstream.v1.Specialist): SQL "
      "totals, monthly trend, top counterparties and outliers over the "
      "transactions database.";
  main.register_flags = [&](agentstream::FlagSet& flags) {
    data::RegisterDataFlags(flags, &data_flags);
  };
  main.create = [&]()
      -> absl::StatusOr<std::unique_ptr<agentstream::specialists::Specialist>> {
    if (absl::Status s = data::PrepareDatabase(data_flags); !s.ok()) return s;
    data::ExitIfGenerateOnly(data_flags);
    return std::make_unique<DataAnalyst>(data_flags.db);
  };
  return agentstream::specialists::RunSpecialistMain(argc, argv, main);
}
