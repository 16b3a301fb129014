#include "gateway/cli/options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::cli {
namespace {

using ::testing::HasSubstr;

std::optional<std::string> NoEnv(const char*) { return std::nullopt; }

TEST(OptionsTest, DefaultsAndTheQuestion) {
  absl::StatusOr<CliOptions> o = ParseArgs({"how", "are", "you?"}, NoEnv);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->message, "how are you?");
  EXPECT_EQ(o->gateway, "http://127.0.0.1:8080");
  EXPECT_FALSE(o->json);
  EXPECT_TRUE(o->specialists.empty());
  EXPECT_TRUE(o->token.empty());
}

TEST(OptionsTest, Flags) {
  absl::StatusOr<CliOptions> o =
      ParseArgs({"--json", "--gateway=http://h:1/base/", "--specialists",
                 "A, B,,C", "--token", "t0k", "--", "--not-a-flag"},
                NoEnv);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->gateway, "http://h:1/base");
  EXPECT_THAT(o->specialists, ::testing::ElementsAre("A", "B", "C"));
  EXPECT_EQ(o->token, "t0k");
  EXPECT_EQ(o->message, "--not-a-flag");
}

TEST(OptionsTest, TheEnvironmentAndTheFlagsWin) {
  auto env = [](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "AGENTSTREAM_TOKEN") return "from-env";
    if (std::string(name) == "AGENTSTREAM_GATEWAY") return "http://env:2";
    return std::nullopt;
  };
  absl::StatusOr<CliOptions> o = ParseArgs({"q"}, env);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->token, "from-env");
  EXPECT_EQ(o->gateway, "http://env:2");
  o = ParseArgs({"--token", "flag", "--gateway", "http://f:3", "q"}, env);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->token, "flag");
  EXPECT_EQ(o->gateway, "http://f:3");
}

TEST(OptionsTest, UsageErrors) {
  EXPECT_THAT(ParseArgs({}, NoEnv).status().message(),
              HasSubstr("no question"));
  EXPECT_THAT(ParseArgs({"--bogus", "q"}, NoEnv).status().message(),
              HasSubstr("unknown option --bogus"));
  EXPECT_THAT(ParseArgs({"q", "--token"}, NoEnv).status().message(),
              HasSubstr("--token needs a value"));
  EXPECT_THAT(
      ParseArgs({"--gateway", "127.0.0.1:8080", "q"}, NoEnv).status().message(),
      HasSubstr("http://"));
  absl::StatusOr<CliOptions> help = ParseArgs({"--help"}, NoEnv);
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help);
}

TEST(OptionsTest, HelpNamesEveryFlagAndExitCode) {
  const std::string help = HelpText();
  for (const char* s :
       {"--gateway", "--token", "--specialists", "--json", "--help",
        "AGENTSTREAM_TOKEN", "Last-Event-ID", "Cancel the run? [y/N]",
        "not a terminal", "130 cancelled", "http://127.0.0.1:8080"}) {
    EXPECT_THAT(help, HasSubstr(s));
  }
}

}  // namespace
}  // namespace agentstream::cli
