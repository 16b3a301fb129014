// risk_analyst: serves the RiskAnalyst specialist over gRPC.
#include <memory>

#include "specialists/data/data_flags.h"
#include "specialists/risk_analyst/risk_analyst.h"
#include "specialists/sdk/specialist_server.h"

int main(int argc, char** argv) {
  using agentstream::specialists::RiskAnalyst;
  namespace data = agentstream::specialists::data;
  data::DataFlags data_flags;
  agentstream::specialists::SpecialistMain main;
  main.program = "risk_analyst";
  main.usage =
      "Serves the RiskAnalyst specialist (agentstream.v1.Specialist): "
      "volatility, concentration (HHI), exposure and a 0-10 risk score with "
      "a confidence over the transactions database.";
  main.register_flags = [&](agentstream::FlagSet& flags) {
    data::RegisterDataFlags(flags, &data_flags);
  };
  main.create = [&]()
      -> absl::StatusOr<std::unique_ptr<agentstream::specialists::Specialist>> {
    if (absl::Status s = data::PrepareDatabase(data_flags); !s.ok()) return s;
    data::ExitIfGenerateOnly(data_flags);
    return std::make_unique<RiskAnalyst>(data_flags.db);
  };
  return agentstream::specialists::RunSpecialistMain(argc, argv, main);
}
