// compliance_expert: serves the ComplianceExpert specialist over gRPC.
#include <memory>

#include "specialists/compliance_expert/compliance_expert.h"
#include "specialists/data/data_flags.h"
#include "specialists/sdk/specialist_server.h"

int main(int argc, char** argv) {
  using agentstream::specialists::ComplianceExpert;
  namespace data = agentstream::specialists::data;
  data::DataFlags data_flags;
  agentstream::specialists::SpecialistMain main;
  main.program = "compliance_expert";
  main.usage =
      "Serves the ComplianceExpert specialist (agentstream.v1.Specialist): "
      "AML rules (structuring, velocity, high-risk jurisdictions) over the "
      "transactions database, and PII in the request, masked.";
  main.register_flags = [&](agentstream::FlagSet& flags) {
    data::RegisterDataFlags(flags, &data_flags);
  };
  main.create = [&]()
      -> absl::StatusOr<std::unique_ptr<agentstream::specialists::Specialist>> {
    if (absl::Status s = data::PrepareDatabase(data_flags); !s.ok()) return s;
    data::ExitIfGenerateOnly(data_flags);
    return std::make_unique<ComplianceExpert>(data_flags.db);
  };
  return agentstream::specialists::RunSpecialistMain(argc, argv, main);
}
