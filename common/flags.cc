#include "common/flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace agentstream {
namespace {

std::string Normalize(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

}  // namespace

FlagSet::FlagSet(std::string program, std::string usage)
    : program_(std::move(program)), usage_(std::move(usage)) {}

void FlagSet::Add(const std::string& name, Kind kind, void* target,
                  const std::string& help, const std::string& env) {
  Flag flag{Normalize(name), kind, target, help, env, ""};
  switch (kind) {
    case Kind::kString:
      flag.default_text = "\"" + *static_cast<std::string*>(target) + "\"";
      break;
    case Kind::kInt:
      flag.default_text = absl::StrCat(*static_cast<int64_t*>(target));
      break;
    case Kind::kDouble:
      flag.default_text = absl::StrCat(*static_cast<double*>(target));
      break;
    case Kind::kBool:
      flag.default_text = *static_cast<bool*>(target) ? "true" : "false";
      break;
    case Kind::kRepeated:
      flag.default_text =
          absl::StrJoin(*static_cast<std::vector<std::string>*>(target), ",");
      break;
  }
  flags_.push_back(std::move(flag));
}

void FlagSet::String(const std::string& name, std::string* target,
                     const std::string& help, const std::string& env) {
  Add(name, Kind::kString, target, help, env);
}
void FlagSet::Int(const std::string& name, int64_t* target,
                  const std::string& help, const std::string& env) {
  Add(name, Kind::kInt, target, help, env);
}
void FlagSet::Double(const std::string& name, double* target,
                     const std::string& help, const std::string& env) {
  Add(name, Kind::kDouble, target, help, env);
}
void FlagSet::Bool(const std::string& name, bool* target,
                   const std::string& help, const std::string& env) {
  Add(name, Kind::kBool, target, help, env);
}
void FlagSet::Repeated(const std::string& name,
                       std::vector<std::string>* target,
                       const std::string& help, const std::string& env) {
  Add(name, Kind::kRepeated, target, help, env);
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::Status FlagSet::Set(Flag& flag, const std::string& value, bool from_env) {
  const std::string where =
      from_env ? absl::StrCat("environment variable ", flag.env)
               : absl::StrCat("--", flag.name);
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.target) = value;
      return absl::OkStatus();
    case Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": not an integer: \"", value, "\""));
      }
      *static_cast<int64_t*>(flag.target) = v;
      return absl::OkStatus();
    }
    case Kind::kDouble: {
      double v;
      if (!absl::SimpleAtod(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": not a number: \"", value, "\""));
      }
      *static_cast<double*>(flag.target) = v;
      return absl::OkStatus();
    }
    case Kind::kBool: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": not a boolean: \"", value, "\""));
      }
      *static_cast<bool*>(flag.target) = v;
      return absl::OkStatus();
    }
    case Kind::kRepeated: {
      auto* target = static_cast<std::vector<std::string>*>(flag.target);
      if (from_env) {
        *target = absl::StrSplit(value, ',', absl::SkipWhitespace());
        return absl::OkStatus();
      }
      // The first command-line value replaces defaults and environment.
      if (std::find(seen_repeated_.begin(), seen_repeated_.end(), flag.name) ==
          seen_repeated_.end()) {
        target->clear();
        seen_repeated_.push_back(flag.name);
      }
      target->push_back(value);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unreachable");
}

absl::Status FlagSet::Parse(int argc, char** argv) {
  for (Flag& flag : flags_) {
    if (flag.env.empty()) continue;
    const char* value = std::getenv(flag.env.c_str());
    if (value == nullptr || *value == '\0') continue;
    if (absl::Status s = Set(flag, value, /*from_env=*/true); !s.ok()) return s;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_requested_ = true;
      return absl::OkStatus();
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.push_back(argv[i]);
      break;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string body = arg.substr(2);
    std::string name = body;
    std::string value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    name = Normalize(name);
    Flag* flag = Find(name);
    if (flag == nullptr && !has_value && name.rfind("no-", 0) == 0) {
      Flag* negated = Find(name.substr(3));
      if (negated != nullptr && negated->kind == Kind::kBool) {
        *static_cast<bool*>(negated->target) = false;
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (flag->kind == Kind::kBool) {
        *static_cast<bool*>(flag->target) = true;
        continue;
      }
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
      value = argv[++i];
    }
    if (absl::Status s = Set(*flag, value, /*from_env=*/false); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string FlagSet::Usage() const {
  std::string out =
      absl::StrCat("Usage: ", program_, " [flags]\n\n", usage_, "\n\nFlags:\n");
  for (const Flag& flag : flags_) {
    std::string value_hint;
    switch (flag.kind) {
      case Kind::kString:
      case Kind::kRepeated:
        value_hint = "=STRING";
        break;
      case Kind::kInt:
        value_hint = "=INT";
        break;
      case Kind::kDouble:
        value_hint = "=NUMBER";
        break;
      case Kind::kBool:
        break;
    }
    absl::StrAppend(&out, "  --", flag.name, value_hint, "\n      ",
                    absl::StrReplaceAll(flag.help, {{"\n", "\n      "}}));
    absl::StrAppend(&out, "\n      default: ",
                    flag.default_text.empty() ? "(none)" : flag.default_text);
    if (flag.kind == Kind::kRepeated) absl::StrAppend(&out, "; repeatable");
    if (!flag.env.empty()) absl::StrAppend(&out, "; environment: ", flag.env);
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Prints this text and exits.\n");
  return out;
}

void ParseFlagsOrExit(FlagSet& flags, int argc, char** argv) {
  absl::Status status = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    std::exit(0);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "agentstream",
                 std::string(status.message()).c_str());
    std::exit(2);
  }
}

}  // namespace agentstream
