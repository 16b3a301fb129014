#include "gateway/cli/options.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace agentstream::cli {

std::string HelpText() {
  const CliOptions d;
  return absl::StrCat(
      "usage: agentstream [options] QUESTION...\n"
      "\n"
      "Asks QUESTION through the agentstream gateway's HTTP API "
      "(POST /api/chat/stream)\n"
      "and shows the run live: a line per specialist with a progress bar "
      "and its\n"
      "current action, its tool calls and partial results, then the "
      "answer.\n"
      "\n"
      "options:\n"
      "  --gateway URL        the gateway (default ",
      d.gateway,
      "; env AGENTSTREAM_GATEWAY)\n"
      "  --token TOKEN        sent as Authorization: Bearer (env "
      "AGENTSTREAM_TOKEN;\n"
      "                       prefer the environment: arguments are "
      "visible to others)\n"
      "  --specialists A,B    ask these specialists (default: the planner "
      "chooses)\n"
      "  --json               print the raw updates, one JSON object a line "
      "(the\n"
      "                       gateway's connected and done included)\n"
      "  --help               this text\n"
      "\n"
      "On a terminal the screen is redrawn in place; otherwise (a pipe, a "
      "file) each\n"
      "update is one plain line, without escape codes.\n"
      "When the connection drops, the client resumes the run with "
      "Last-Event-ID\n"
      "(GET /api/runs/ID/stream), waiting the gateway's retry: interval, "
      "doubled\n"
      "per failed attempt; it gives up after ",
      d.max_reconnects,
      " attempts in a row.\n"
      "Ctrl-C asks \"Cancel the run? [y/N]\"; yes cancels it (DELETE "
      "/api/runs/ID)\n"
      "and waits for the stream to end; a second Ctrl-C while asking "
      "cancels and\n"
      "exits at once. When standard input is not a terminal, Ctrl-C "
      "(SIGINT) cancels\n"
      "without asking.\n"
      "\n"
      "exit status: ",
      kExitComplete, " complete, ", kExitFailed, " failed or lost, ",
      kExitUsage, " usage, ", kExitCancelled, " cancelled\n");
}

absl::StatusOr<CliOptions> ParseArgs(
    const std::vector<std::string>& args,
    const std::function<std::optional<std::string>(const char*)>& getenv) {
  CliOptions o;
  if (auto v = getenv("AGENTSTREAM_GATEWAY"); v && !v->empty()) o.gateway = *v;
  if (auto v = getenv("AGENTSTREAM_TOKEN"); v) o.token = *v;
  std::vector<std::string> words;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--") {
      words.insert(words.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (!absl::StartsWith(arg, "--")) {
      words.push_back(arg);
      continue;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take = [&]() -> absl::StatusOr<std::string> {
      if (value) return *value;
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(name + " needs a value");
      }
      return args[++i];
    };
    if (name == "--help" || name == "-h") {
      o.help = true;
    } else if (name == "--json") {
      if (value) return absl::InvalidArgumentError("--json takes no value");
      o.json = true;
    } else if (name == "--gateway") {
      absl::StatusOr<std::string> v = take();
      if (!v.ok()) return v.status();
      o.gateway = *v;
    } else if (name == "--token") {
      absl::StatusOr<std::string> v = take();
      if (!v.ok()) return v.status();
      o.token = *v;
    } else if (name == "--specialists") {
      absl::StatusOr<std::string> v = take();
      if (!v.ok()) return v.status();
      o.specialists = absl::StrSplit(*v, ',', absl::SkipWhitespace());
      for (std::string& s : o.specialists) {
        s = std::string(absl::StripAsciiWhitespace(s));
      }
    } else {
      return absl::InvalidArgumentError("unknown option " + name);
    }
  }
  if (o.help) return o;
  o.message = absl::StrJoin(words, " ");
  if (absl::StripAsciiWhitespace(o.message).empty()) {
    return absl::InvalidArgumentError("no question given");
  }
  while (absl::EndsWith(o.gateway, "/")) o.gateway.pop_back();
  if (!absl::StartsWith(o.gateway, "http://") &&
      !absl::StartsWith(o.gateway, "https://")) {
    return absl::InvalidArgumentError(
        "--gateway must be an http:// or https:// URL: " + o.gateway);
  }
  return o;
}

}  // namespace agentstream::cli
