// Opaque tokens against a file of salted hashes (gateway/auth/token_file.h).
#include "gateway/auth/token_file.h"

#include <filesystem>
#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/auth/jwt_tool.h"

namespace agentstream::gateway::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A known answer computed with Python's hashlib, not our code:
// secret = bytes(range(32)), salt = bytes(range(100, 116)),
// hash = sha256(salt + secret).
constexpr char kKnownToken[] =
    "ast_0123456789abcdef_"
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kKnownLine[] =
    "0123456789abcdef ci-bot agentstream:metrics,read "
    "6465666768696a6b6c6d6e6f70717273 "
    "b5b7acda24b967eacdce57c3e25699e6b8156e9379cd3907829a54ae4266415d\n";

std::string Name(const std::variant<Principal, AuthFailure>& r) {
  if (const auto* f = std::get_if<AuthFailure>(&r)) {
    return "refused: " + f->error + ": " + f->description;
  }
  return std::get<Principal>(r).name;
}

TEST(TokenFileTest, KnownAnswer) {
  absl::StatusOr<TokenTable> t =
      ParseTokenFile(std::string("# tokens\n\n") + kKnownLine);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto r = VerifyOpaqueToken(kKnownToken, *t, AuthOptions{});
  ASSERT_EQ(Name(r), "ci-bot");
  const Principal& p = std::get<Principal>(r);
  EXPECT_THAT(p.scopes, ElementsAre("agentstream:metrics", "read"));
  EXPECT_TRUE(p.metrics);
  EXPECT_FALSE(p.admin);
}

TEST(TokenFileTest, MadeTokensVerifyAndNothingElseDoes) {
  absl::StatusOr<NewToken> a = MakeToken("alice", {"agentstream:admin"});
  absl::StatusOr<NewToken> b = MakeToken("bob", {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_THAT(a->token, ::testing::StartsWith("ast_"));
  EXPECT_EQ(a->token.size(), 4 + 16 + 1 + 64u);
  // The file line never holds the token's secret.
  EXPECT_EQ(a->line.find(a->token.substr(21)), std::string::npos);
  EXPECT_THAT(b->line, HasSubstr(" bob - "));
  absl::StatusOr<TokenTable> t = ParseTokenFile(a->line + b->line);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto ra = VerifyOpaqueToken(a->token, *t, AuthOptions{});
  ASSERT_EQ(Name(ra), "alice");
  EXPECT_TRUE(std::get<Principal>(ra).admin);
  EXPECT_TRUE(std::get<Principal>(ra).metrics);
  EXPECT_EQ(Name(VerifyOpaqueToken(b->token, *t, AuthOptions{})), "bob");

  // Wrong secret: the last hex digit changed.
  std::string wrong = a->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(Name(VerifyOpaqueToken(wrong, *t, AuthOptions{})),
            "refused: invalid_token: the token is unknown");
  // Unknown id with a valid secret.
  std::string unknown = a->token;
  unknown[4] = unknown[4] == '0' ? '1' : '0';
  EXPECT_EQ(Name(VerifyOpaqueToken(unknown, *t, AuthOptions{})),
            "refused: invalid_token: the token is unknown");
  // a's id with b's secret.
  EXPECT_THAT(
      Name(VerifyOpaqueToken(a->token.substr(0, 21) + b->token.substr(21), *t,
                             AuthOptions{})),
      HasSubstr("refused"));
}

TEST(TokenFileTest, TokenForm) {
  EXPECT_TRUE(ParseOpaqueToken(kKnownToken).has_value());
  const std::string t = kKnownToken;
  EXPECT_FALSE(ParseOpaqueToken("xst_" + t.substr(4)));
  EXPECT_FALSE(ParseOpaqueToken(t.substr(0, t.size() - 1)));
  EXPECT_FALSE(ParseOpaqueToken(t + "0"));
  std::string upper = t;
  upper[30] = 'A';
  EXPECT_FALSE(ParseOpaqueToken(upper));
  std::string sep = t;
  sep[20] = '-';
  EXPECT_FALSE(ParseOpaqueToken(sep));
  EXPECT_THAT(Name(VerifyOpaqueToken("eyJhbGciOi.x.y", TokenTable{}, {})),
              HasSubstr("ast_ form"));
  EXPECT_FALSE(MakeToken("has space", {}).ok());
  EXPECT_FALSE(MakeToken("", {}).ok());
  EXPECT_FALSE(MakeToken("ok", {"a,b"}).ok());
}

TEST(TokenFileTest, MalformedLinesAreReportedWithTheirNumbers) {
  const std::string file = std::string("# comment\n") +     // 1
                           kKnownLine +                     // 2
                           "0123 short line\n" +            // 3
                           "\n" +                           // 4
                           kKnownLine +                     // 5: same id
                           "  # indented comment\n" +       // 6
                           "fedcba9876543210 n - zz zz\n";  // 7
  absl::StatusOr<TokenTable> t = ParseTokenFile(file);
  ASSERT_FALSE(t.ok());
  const std::string msg(t.status().message());
  EXPECT_THAT(msg, HasSubstr("line 3: want 5 fields"));
  EXPECT_THAT(msg,
              HasSubstr("line 5: id 0123456789abcdef is already on line 2"));
  EXPECT_THAT(msg, HasSubstr("line 7: the salt"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("line 6")));
  EXPECT_TRUE(ParseTokenFile("").ok());
  EXPECT_TRUE(ParseTokenFile("# only comments\r\n\r\n").ok());
}

TEST(TokenFileTest, FileIsReloadedWhenItChanges) {
  absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("tok");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->path() + "/tokens";
  absl::StatusOr<NewToken> a = MakeToken("alice", {});
  absl::StatusOr<NewToken> b = MakeToken("bob", {});
  ASSERT_TRUE(a.ok() && b.ok());
  testing::WriteFile(path, a->line);
  FakeClock clock;
  AuthOptions o;
  o.mode = AuthMode::kToken;
  o.token_file = path;
  absl::StatusOr<std::unique_ptr<TokenFileVerifier>> v =
      TokenFileVerifier::Create(o, &clock);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(Name((*v)->Verify(a->token)), "alice");
  EXPECT_THAT(Name((*v)->Verify(b->token)), HasSubstr("refused"));

  testing::WriteFile(path, a->line + b->line);  // b added
  clock.Advance(o.reload_interval);
  EXPECT_EQ(Name((*v)->Verify(b->token)), "bob");

  testing::WriteFile(path, a->line + "garbage\n");  // broken: kept
  clock.Advance(o.reload_interval);
  EXPECT_EQ(Name((*v)->Verify(b->token)), "bob");

  testing::WriteFile(path, b->line);  // a retired
  clock.Advance(o.reload_interval);
  EXPECT_THAT(Name((*v)->Verify(a->token)), HasSubstr("refused"));
  EXPECT_EQ(Name((*v)->Verify(b->token)), "bob");
  EXPECT_EQ((*v)->file_loads(), 3u);
}

TEST(TokenFileTest, ABadFileAtStartIsAnError) {
  absl::StatusOr<agentstream::testing::ScopedTempDir> dir =
      agentstream::testing::ScopedTempDir::Make("tok");
  ASSERT_TRUE(dir.ok());
  AuthOptions o;
  o.mode = AuthMode::kToken;
  EXPECT_FALSE(TokenFileVerifier::Create(o, Clock::Real()).ok());
  o.token_file = dir->path() + "/missing";
  EXPECT_FALSE(TokenFileVerifier::Create(o, Clock::Real()).ok());
  testing::WriteFile(dir->path() + "/bad", "x y z\n");
  o.token_file = dir->path() + "/bad";
  absl::StatusOr<std::unique_ptr<TokenFileVerifier>> v =
      TokenFileVerifier::Create(o, Clock::Real());
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("line 1"));
}

}  // namespace
}  // namespace agentstream::gateway::auth
