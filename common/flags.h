// A small command-line flag parser shared by every binary.
//
// Why not absl flags: our flags are repeatable (`--specialist NAME=ADDR`
// twice), read an environment variable as their default (for containers),
// and `--help` must show exactly this binary's flags.
//
// Accepted forms: `--name=value`, `--name value`, `--bool-flag`,
// `--no-bool-flag`. Underscores and dashes in names are equivalent.
// Precedence: command line > environment variable > built-in default.
#ifndef AGENTSTREAM_COMMON_FLAGS_H_
#define AGENTSTREAM_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace agentstream {

class FlagSet final {
 public:
  // `usage` is printed under the program name by --help.
  FlagSet(std::string program, std::string usage);

  // Each registration keeps the pointer; the target holds the default value
  // and must outlive Parse(). `env` may be empty (no environment variable).
  void String(const std::string& name, std::string* target,
              const std::string& help, const std::string& env = "");
  void Int(const std::string& name, int64_t* target, const std::string& help,
           const std::string& env = "");
  void Double(const std::string& name, double* target, const std::string& help,
              const std::string& env = "");
  void Bool(const std::string& name, bool* target, const std::string& help,
            const std::string& env = "");
  // Repeatable. From the environment, values are comma-separated. Command-line
  // values replace (not extend) the environment's.
  void Repeated(const std::string& name, std::vector<std::string>* target,
                const std::string& help, const std::string& env = "");

  // Parses argv[1..]. Returns kInvalidArgument naming the flag on unknown
  // flags, missing values and malformed numbers. Sets help_requested() on
  // -h/--help (and stops parsing).
  absl::Status Parse(int argc, char** argv);

  bool help_requested() const { return help_requested_; }
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Usage() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool, kRepeated };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string env;
    std::string default_text;
  };
  void Add(const std::string& name, Kind kind, void* target,
           const std::string& help, const std::string& env);
  Flag* Find(const std::string& name);
  absl::Status Set(Flag& flag, const std::string& value, bool from_env);

  const std::string program_;
  const std::string usage_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  std::vector<std::string> seen_repeated_;
  bool help_requested_ = false;
};

// Parses, prints usage and exits 0 on --help, prints the error and exits 2 on
// bad flags. For mains.
void ParseFlagsOrExit(FlagSet& flags, int argc, char** argv);

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_FLAGS_H_
