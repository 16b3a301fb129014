#include "common/flags.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agentstream {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  return out;
}

TEST(FlagSetTest, ParsesAllFormsAndRepeatedValues) {
  std::string host = "127.0.0.1";
  int64_t port = 1;
  bool verbose = false;
  bool color = true;
  double rate = 1.5;
  std::vector<std::string> specialists;
  FlagSet flags("prog", "test");
  flags.String("host", &host, "host");
  flags.Int("port", &port, "port");
  flags.Bool("verbose", &verbose, "v");
  flags.Bool("color", &color, "c");
  flags.Double("rate", &rate, "r");
  flags.Repeated("specialist", &specialists, "s");
  std::vector<std::string> args = {
      "prog",      "--host=0.0.0.0",     "--port",      "8080",
      "--verbose", "--no-color",         "--rate=2.25", "--specialist",
      "A=a:1",     "--specialist=B=b:2", "positional"};
  auto argv = Argv(args);
  ASSERT_THAT(flags.Parse(argv.size(), argv.data()), IsOk());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 8080);
  EXPECT_TRUE(verbose);
  EXPECT_FALSE(color);
  EXPECT_DOUBLE_EQ(rate, 2.25);
  EXPECT_THAT(specialists, ElementsAre("A=a:1", "B=b:2"));
  EXPECT_THAT(flags.positional(), ElementsAre("positional"));
}

TEST(FlagSetTest, UnderscoresAndDashesAreEquivalent) {
  std::string port_file;
  FlagSet flags("prog", "test");
  flags.String("port-file", &port_file, "p");
  std::vector<std::string> args = {"prog", "--port_file=/tmp/x"};
  auto argv = Argv(args);
  ASSERT_THAT(flags.Parse(argv.size(), argv.data()), IsOk());
  EXPECT_EQ(port_file, "/tmp/x");
}

TEST(FlagSetTest, RejectsUnknownFlagsAndBadNumbersNamingThem) {
  int64_t port = 0;
  FlagSet flags("prog", "test");
  flags.Int("port", &port, "p");
  std::vector<std::string> unknown = {"prog", "--nope=1"};
  auto argv = Argv(unknown);
  EXPECT_THAT(flags.Parse(argv.size(), argv.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nope")));
  FlagSet flags2("prog", "test");
  flags2.Int("port", &port, "p");
  std::vector<std::string> bad = {"prog", "--port=eighty"};
  argv = Argv(bad);
  EXPECT_THAT(flags2.Parse(argv.size(), argv.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("port")));
  FlagSet flags3("prog", "test");
  flags3.Int("port", &port, "p");
  std::vector<std::string> missing = {"prog", "--port"};
  argv = Argv(missing);
  EXPECT_THAT(flags3.Parse(argv.size(), argv.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("value")));
}

TEST(FlagSetTest, EnvironmentIsTheDefaultAndCommandLineWins) {
  setenv("AGENTSTREAM_TEST_PORT", "9090", 1);
  setenv("AGENTSTREAM_TEST_SPECS", "A=a:1, B=b:2", 1);
  int64_t port = 1;
  int64_t other = 2;
  std::vector<std::string> specs;
  FlagSet flags("prog", "test");
  flags.Int("port", &port, "p", "AGENTSTREAM_TEST_PORT");
  flags.Int("other", &other, "o", "AGENTSTREAM_TEST_PORT");
  flags.Repeated("specialist", &specs, "s", "AGENTSTREAM_TEST_SPECS");
  std::vector<std::string> args = {"prog", "--other=3"};
  auto argv = Argv(args);
  ASSERT_THAT(flags.Parse(argv.size(), argv.data()), IsOk());
  EXPECT_EQ(port, 9090);
  EXPECT_EQ(other, 3);
  EXPECT_THAT(specs, ElementsAre("A=a:1", " B=b:2"));
  unsetenv("AGENTSTREAM_TEST_PORT");
  unsetenv("AGENTSTREAM_TEST_SPECS");
}

TEST(FlagSetTest, HelpListsEveryFlagWithDefaultAndEnvironment) {
  int64_t port = 8080;
  FlagSet flags("gateway", "Serves SSE.");
  flags.Int("port", &port, "TCP port.", "AGENTSTREAM_PORT");
  std::vector<std::string> args = {"prog", "--help"};
  auto argv = Argv(args);
  ASSERT_THAT(flags.Parse(argv.size(), argv.data()), IsOk());
  EXPECT_TRUE(flags.help_requested());
  const std::string usage = flags.Usage();
  EXPECT_THAT(usage, HasSubstr("Usage: gateway"));
  EXPECT_THAT(usage, HasSubstr("--port=INT"));
  EXPECT_THAT(usage, HasSubstr("default: 8080"));
  EXPECT_THAT(usage, HasSubstr("AGENTSTREAM_PORT"));
}

}  // namespace
}  // namespace agentstream
