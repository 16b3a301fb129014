// synthetic: serves the Synthetic load-generating specialist over gRPC.
#include <memory>

#include "specialists/sdk/specialist_server.h"
#include "specialists/synthetic/synthetic.h"

int main(int argc, char** argv) {
  using agentstream::specialists::Synthetic;
  using agentstream::specialists::SyntheticParams;
  SyntheticParams defaults;
  agentstream::specialists::SpecialistMain main;
  main.program = "synthetic";
  main.usage =
      "Serves the Synthetic specialist (agentstream.v1.Specialist): per "
      "request, --count partial results of --size bytes at --rate per second "
      "(AnalyzeRequest.options {\"count\",\"size\",\"rate\"} override them).";
  main.register_flags = [&](agentstream::FlagSet& flags) {
    flags.Int("count", &defaults.count, "Partial results per request.",
              "AGENTSTREAM_COUNT");
    flags.Int("size", &defaults.size, "Payload bytes per partial result.",
              "AGENTSTREAM_SIZE");
    flags.Double("rate", &defaults.rate,
                 "Partial results per second; 0 sends as fast as possible.",
                 "AGENTSTREAM_RATE");
  };
  main.create = [&]()
      -> absl::StatusOr<std::unique_ptr<agentstream::specialists::Specialist>> {
    agentstream::specialists::AnalyzeRequest empty;
    absl::StatusOr<SyntheticParams> checked =
        agentstream::specialists::ResolveSyntheticParams(defaults, empty);
    if (!checked.ok()) return checked.status();
    return std::make_unique<Synthetic>(*checked);
  };
  return agentstream::specialists::RunSpecialistMain(argc, argv, main);
}
