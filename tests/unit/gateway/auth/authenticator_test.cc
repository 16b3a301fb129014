// The facade (gateway/auth/authenticator.h): modes, and a request through
// extraction and verification.
#include "gateway/auth/authenticator.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/auth/jwt_tool.h"

namespace agentstream::gateway::auth {
namespace {

using ::testing::HasSubstr;

TEST(AuthenticatorTest, ModeNoneIsAnonymousForEveryRequest) {
  absl::StatusOr<std::unique_ptr<Authenticator>> a =
      Authenticator::Create(AuthOptions{});
  ASSERT_TRUE(a.ok()) << a.status();
  CredentialInput in;
  in.authorization = {"Basic garbage"};
  const AuthResult r = (*a)->Authenticate(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.principal->name, "");
  EXPECT_FALSE(r.principal->admin || r.principal->metrics);
  EXPECT_EQ(r.source, CredentialSource::kNone);
}

TEST(AuthenticatorTest, ParseAuthMode) {
  EXPECT_EQ(*ParseAuthMode("none"), AuthMode::kNone);
  EXPECT_EQ(*ParseAuthMode("jwt"), AuthMode::kJwt);
  EXPECT_EQ(*ParseAuthMode("token"), AuthMode::kToken);
  EXPECT_FALSE(ParseAuthMode("JWT").ok());
  EXPECT_EQ(AuthModeName(AuthMode::kToken), "token");
}

TEST(AuthenticatorTest, OptionErrorsNameTheFlag) {
  AuthOptions o;
  o.mode = AuthMode::kToken;
  absl::StatusOr<std::unique_ptr<Authenticator>> a = Authenticator::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()),
              HasSubstr("--auth-token-file"));
  o.mode = AuthMode::kJwt;
  a = Authenticator::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()),
              HasSubstr("--auth-jwt-secret-file"));
  o = AuthOptions{};
  o.clock_skew = absl::Seconds(-1);
  EXPECT_FALSE(Authenticator::Create(o).ok());
  o = AuthOptions{};
  o.admin_scope = "has space";
  EXPECT_FALSE(Authenticator::Create(o).ok());
}

class TokenModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = agentstream::testing::MakeTempDir("am");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    absl::StatusOr<NewToken> t = MakeToken("alice", {"agentstream:admin"});
    ASSERT_TRUE(t.ok());
    token_ = t->token;
    testing::WriteFile(dir_ + "/tokens", t->line);
    AuthOptions o;
    o.mode = AuthMode::kToken;
    o.token_file = dir_ + "/tokens";
    o.allow_query_token = true;
    absl::StatusOr<std::unique_ptr<Authenticator>> a =
        Authenticator::Create(o, &clock_);
    ASSERT_TRUE(a.ok()) << a.status();
    auth_ = std::move(*a);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  FakeClock clock_;
  std::string dir_;
  std::string token_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(TokenModeTest, EachSourceAndEachFailure) {
  const std::string header = "Bearer " + token_;
  const std::string cookie = "agentstream_token=" + token_;
  const std::string query = "access_token=" + token_;
  CredentialInput in;
  in.authorization = {header};
  AuthResult r = auth_->Authenticate(in);
  ASSERT_TRUE(r.ok()) << r.failure.description;
  EXPECT_EQ(r.principal->name, "alice");
  EXPECT_TRUE(r.principal->admin);
  EXPECT_EQ(r.source, CredentialSource::kAuthorizationHeader);

  in = CredentialInput{};
  in.cookie = {cookie};
  r = auth_->Authenticate(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.source, CredentialSource::kCookie);

  in = CredentialInput{};
  in.query = query;
  r = auth_->Authenticate(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.source, CredentialSource::kQuery);

  // Nothing presented: no error code (RFC 6750 3.1), 401.
  r = auth_->Authenticate(CredentialInput{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.error, "");
  EXPECT_EQ(HttpStatusFor(r.failure), 401);
  EXPECT_EQ(WwwAuthenticate(r.failure), "Bearer realm=\"agentstream\"");

  // Malformed: 400 invalid_request.
  in = CredentialInput{};
  in.authorization = {"Bearer"};
  r = auth_->Authenticate(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.error, kInvalidRequest);
  EXPECT_EQ(HttpStatusFor(r.failure), 400);

  // A token that does not verify: 401 invalid_token, never echoed.
  std::string wrong = token_;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  const std::string wrong_header = "Bearer " + wrong;
  in.authorization = {wrong_header};
  r = auth_->Authenticate(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.error, kInvalidToken);
  EXPECT_EQ(r.source, CredentialSource::kAuthorizationHeader);
  EXPECT_THAT(WwwAuthenticate(r.failure),
              ::testing::AllOf(HasSubstr("error=\"invalid_token\""),
                               ::testing::Not(HasSubstr(wrong.substr(4)))));
}

// Many HTTP threads at once while the file is rewritten under them (run
// under the sanitizer build, this is where a race would show).
TEST_F(TokenModeTest, ConcurrentUseDuringReloads) {
  const std::string header = "Bearer " + token_;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      CredentialInput in;
      in.authorization = {header};
      for (int i = 0; i < 2000; ++i) {
        if (!auth_->Authenticate(in).ok()) ++failures;
      }
    });
  }
  const std::string line =
      agentstream::testing::ReadFileOrEmpty(dir_ + "/tokens");
  for (int i = 0; i < 20; ++i) {
    // Replaced as operators should: written aside, then renamed over.
    testing::WriteFile(dir_ + "/tokens.new",
                       "# " + std::to_string(i) + "\n" + line);
    ASSERT_EQ(
        std::rename((dir_ + "/tokens.new").c_str(), (dir_ + "/tokens").c_str()),
        0);
    clock_.Advance(absl::Seconds(1));
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace agentstream::gateway::auth
