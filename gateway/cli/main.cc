// agentstream: the terminal client of the gateway (docs/CLIENT.md "Terminal
// client"). Usage: agentstream [--gateway URL] [--json] QUESTION...
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "gateway/cli/client_app.h"
#include "gateway/cli/options.h"

int main(int argc, char** argv) {
  using agentstream::cli::CliOptions;
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<CliOptions> options = agentstream::cli::ParseArgs(
      args, [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (v == nullptr) return std::nullopt;
        return std::string(v);
      });
  if (!options.ok()) {
    std::fprintf(stderr, "agentstream: %s\n\n%s",
                 std::string(options.status().message()).c_str(),
                 agentstream::cli::HelpText().c_str());
    return agentstream::cli::kExitUsage;
  }
  if (options->help) {
    std::fputs(agentstream::cli::HelpText().c_str(), stdout);
    return agentstream::cli::kExitComplete;
  }
  return agentstream::cli::RunClient(*options);
}
