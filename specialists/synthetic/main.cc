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
      "(AnalyzeRequest.options {\"count\",\"size\",\"rate\","
      "\"progress_every\",\"start_delay_ms\",\"stall_after\",\"fail_after\"} "
      "override the flags of the same name, spelt with - for _). The last four "
      "pace and inject faults for tests.";
  main.register_flags = [&](agentstream::FlagSet& flags) {
    flags.Int("count", &defaults.count, "Partial results per request.",
              "AGENTSTREAM_COUNT");
    flags.Int("size", &defaults.size, "Payload bytes per partial result.",
              "AGENTSTREAM_SIZE");
    flags.Double("rate", &defaults.rate,
                 "Partial results per second; 0 sends as fast as possible.",
                 "AGENTSTREAM_RATE");
    flags.Int("progress-every", &defaults.progress_every,
              "A progress update before every k-th partial result; 0: one "
              "whenever the whole percentage changes.",
              "AGENTSTREAM_PROGRESS_EVERY");
    flags.Int("start-delay-ms", &defaults.start_delay_ms,
              "Wait (cancellably) this long before the first update.",
              "AGENTSTREAM_START_DELAY_MS");
    flags.Int("stall-after", &defaults.stall_after,
              "After this many partial results, emit nothing more and wait "
              "until cancelled; -1: never.",
              "AGENTSTREAM_STALL_AFTER");
    flags.Int("fail-after", &defaults.fail_after,
              "After this many partial results, fail with INTERNAL; -1: never.",
              "AGENTSTREAM_FAIL_AFTER");
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
