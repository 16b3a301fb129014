// `gateway token add|list` (gateway/auth/token_command.h), run in-process.
#include "gateway/auth/token_command.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/auth/token_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace agentstream::gateway::auth {
namespace {

using ::testing::HasSubstr;

struct CommandRun {
  int code;
  std::string out;
};

CommandRun Token(std::vector<std::string> args) {
  args.insert(args.begin(), "token");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStdout();
  const int code = RunTokenCommand(static_cast<int>(args.size()), argv.data());
  return CommandRun{code, ::testing::internal::GetCapturedStdout()};
}

class TokenCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = agentstream::testing::MakeTempDir("tc");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    file_ = dir_ + "/tokens";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  std::string file_;
};

TEST_F(TokenCommandTest, AddCreatesAPrivateFileAndPrintsTheTokenOnce) {
  const CommandRun add =
      Token({"add", "--file", file_, "--name", "ci-bot", "--scope",
             "agentstream:metrics", "--scope", "read"});
  ASSERT_EQ(add.code, 0);
  ASSERT_EQ(add.out.back(), '\n');
  const std::string token = add.out.substr(0, add.out.size() - 1);
  ASSERT_TRUE(ParseOpaqueToken(token).has_value()) << token;

  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string contents = agentstream::testing::ReadFileOrEmpty(file_);
  EXPECT_EQ(contents.find(token.substr(21)), std::string::npos);

  absl::StatusOr<TokenTable> table = ParseTokenFile(contents);
  ASSERT_TRUE(table.ok()) << table.status();
  const auto r = VerifyOpaqueToken(token, *table, AuthOptions{});
  ASSERT_TRUE(std::holds_alternative<Principal>(r));
  EXPECT_EQ(std::get<Principal>(r).name, "ci-bot");
  EXPECT_TRUE(std::get<Principal>(r).metrics);

  // A second entry is appended; list shows both, without hashes.
  ASSERT_EQ(Token({"add", "--file", file_, "--name", "alice"}).code, 0);
  const CommandRun list = Token({"list", "--file", file_});
  ASSERT_EQ(list.code, 0);
  EXPECT_THAT(list.out, HasSubstr(" ci-bot agentstream:metrics,read\n"));
  EXPECT_THAT(list.out, HasSubstr(" alice -\n"));
  // The first line's salt and hash (fields 4 and 5) are not listed.
  std::istringstream first(contents.substr(0, contents.find('\n')));
  std::string id, name, scopes, salt, hash;
  first >> id >> name >> scopes >> salt >> hash;
  ASSERT_EQ(hash.size(), 64u);
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr(salt)));
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr(hash)));
}

TEST_F(TokenCommandTest, AddKeepsTheModeOfAnExistingFileAndEndsItsLastLine) {
  { std::ofstream(file_) << "# made by hand, no final newline"; }
  ::chmod(file_.c_str(), 0640);
  ASSERT_EQ(Token({"add", "--file", file_, "--name", "bob"}).code, 0);
  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_TRUE(
      ParseTokenFile(agentstream::testing::ReadFileOrEmpty(file_)).ok());
}

TEST_F(TokenCommandTest, RefusesMalformedFilesAndBadArguments) {
  { std::ofstream(file_) << "not a token line\n"; }
  const CommandRun bad = Token({"add", "--file", file_, "--name", "bob"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.out, "");
  EXPECT_EQ(agentstream::testing::ReadFileOrEmpty(file_), "not a token line\n");
  EXPECT_EQ(Token({"list", "--file", file_}).code, 1);
  EXPECT_EQ(Token({"add", "--file", dir_ + "/t2"}).code, 2);  // no --name
  EXPECT_EQ(Token({"add", "--name", "x"}).code, 2);           // no --file
  EXPECT_EQ(Token({"remove", "--file", file_}).code, 2);
  EXPECT_EQ(Token({}).code, 2);
  EXPECT_EQ(Token({"add", "--file", dir_ + "/t3", "--name", "a b"}).code, 1);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/t3"));
  EXPECT_EQ(Token({"list", "--file", dir_ + "/missing"}).code, 1);
}

}  // namespace
}  // namespace agentstream::gateway::auth

namespace agentstream::gateway::auth {
namespace {

// The real binary's dispatch (gateway/main.cc): `gateway token ...` runs
// the subcommand before any server setup, and --help names it.
std::string RunBinary(const std::string& args, int* status) {
  const std::string cmd = agentstream::testing::BinDir() + "/gateway " + args;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

TEST_F(TokenCommandTest, TheGatewayBinaryDispatchesTokenCommands) {
  int status = -1;
  const std::string token = RunBinary("token add --file " + file_ +
                                          " --name ops --scope "
                                          "agentstream:admin 2>/dev/null",
                                      &status);
  ASSERT_EQ(status, 0) << token;
  ASSERT_TRUE(ParseOpaqueToken(token.substr(0, token.size() - 1)).has_value())
      << token;
  const std::string list = RunBinary("token list --file " + file_, &status);
  EXPECT_EQ(status, 0);
  EXPECT_THAT(list, HasSubstr(" ops agentstream:admin\n"));
  RunBinary("token 2>/dev/null", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string help = RunBinary("--help", &status);
  EXPECT_EQ(status, 0);
  EXPECT_THAT(help, HasSubstr("gateway token add --file FILE --name NAME"));
}

}  // namespace
}  // namespace agentstream::gateway::auth
