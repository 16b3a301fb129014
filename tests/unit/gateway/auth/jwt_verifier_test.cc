// JWT verification (gateway/auth/jwt_verifier.h) with keys and tokens made
// by Python's jwt and cryptography (jwt_tool.py), never by our own code:
// each algorithm accepted, and every way a token must be refused.
#include "gateway/auth/jwt_verifier.h"

#include <filesystem>
#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/auth/jwt_tool.h"

namespace agentstream::gateway::auth {
namespace {

using ::testing::HasSubstr;
using testing::RunJwtTool;
using testing::WriteFile;
using Json = nlohmann::json;

constexpr int64_t kNow = 1700000000;  // FakeClock's start
// 32 bytes: the shortest secret allowed.
constexpr char kSecret1[] = "first-secret-0123456789abcdefghij";
constexpr char kSecret2[] = "second-secret-0123456789abcdefghi";

class JwtVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::JwtToolAvailable()) return;
    absl::StatusOr<std::string> dir =
        agentstream::testing::MakeTempDir("auth_jwt");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new std::string(*dir);
    absl::StatusOr<std::string> made = RunJwtTool({"keys", *dir_});
    ASSERT_TRUE(made.ok()) << made.status();
    WriteFile(Path("hs1.key"), kSecret1);
    WriteFile(Path("hs2.key"), kSecret2);
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { REQUIRE_JWT_TOOL(); }

  static std::string Path(const std::string& name) {
    return *dir_ + "/" + name;
  }

  static Json Claims() {
    return Json{{"sub", "alice"}, {"iat", kNow}, {"exp", kNow + 600}};
  }

  static std::string Sign(const std::string& alg, const std::string& key,
                          const Json& claims, const std::string& kid = "") {
    std::vector<std::string> args = {"sign", alg, Path(key), claims.dump()};
    if (!kid.empty()) args.push_back(kid);
    absl::StatusOr<std::string> token = RunJwtTool(args);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }

  // A verifier over the given options (key file paths already set).
  std::unique_ptr<JwtVerifier> Make(const AuthOptions& options) {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
        JwtVerifier::Create(options, &clock_);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? std::move(*v) : nullptr;
  }

  AuthOptions Secrets() {
    WriteFile(Path("secrets"), std::string("# rotation: both\n") + kSecret1 +
                                   "\n\n" + kSecret2 + "\n");
    AuthOptions o;
    o.mode = AuthMode::kJwt;
    o.jwt_secret_file = Path("secrets");
    return o;
  }
  AuthOptions Pem(const std::string& contents) {
    WriteFile(Path("pub.pem"), contents);
    AuthOptions o;
    o.mode = AuthMode::kJwt;
    o.jwt_public_key_file = Path("pub.pem");
    return o;
  }
  static std::string Read(const std::string& name) {
    return agentstream::testing::ReadFileOrEmpty(Path(name));
  }
  AuthOptions Jwks(const std::string& file) {
    std::filesystem::copy_file(
        Path(file), Path("keys.json"),
        std::filesystem::copy_options::overwrite_existing);
    AuthOptions o;
    o.mode = AuthMode::kJwt;
    o.jwks_file = Path("keys.json");
    return o;
  }

  static std::string Accepted(const std::variant<Principal, AuthFailure>& r) {
    if (const auto* f = std::get_if<AuthFailure>(&r)) {
      return "refused: " + f->error + ": " + f->description;
    }
    return std::get<Principal>(r).name;
  }
  static std::string Refused(const std::variant<Principal, AuthFailure>& r) {
    if (const auto* f = std::get_if<AuthFailure>(&r)) {
      EXPECT_EQ(f->error, kInvalidToken);
      return f->description;
    }
    return "accepted as " + std::get<Principal>(r).name;
  }

  FakeClock clock_{absl::FromUnixSeconds(kNow)};
  static std::string* dir_;
};

std::string* JwtVerifierTest::dir_ = nullptr;

TEST_F(JwtVerifierTest, Hs256WithEitherOfTwoSecrets) {
  auto v = Make(Secrets());
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(Accepted(v->Verify(Sign("HS256", "hs1.key", Claims()))), "alice");
  EXPECT_EQ(Accepted(v->Verify(Sign("HS256", "hs2.key", Claims()))), "alice");
  WriteFile(Path("other.key"), "another-secret-0123456789abcdefgh");
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "other.key", Claims()))),
              HasSubstr("signature"));
}

TEST_F(JwtVerifierTest, Rs256AndEs256WithPemKeys) {
  auto v = Make(Pem(Read("rsa.pub") + Read("ec.pub")));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(Accepted(v->Verify(Sign("RS256", "rsa.pem", Claims()))), "alice");
  EXPECT_EQ(Accepted(v->Verify(Sign("ES256", "ec.pem", Claims()))), "alice");
  // Signed by a key that is not configured.
  EXPECT_THAT(Refused(v->Verify(Sign("RS256", "rsa2.pem", Claims()))),
              HasSubstr("signature"));
  // A kid means nothing to keys that have none: each key is tried.
  EXPECT_EQ(Accepted(v->Verify(Sign("ES256", "ec.pem", Claims(), "k-1"))),
            "alice");
}

TEST_F(JwtVerifierTest, TamperedTokensAreRefused) {
  auto v = Make(Pem(Read("rsa.pub")));
  ASSERT_NE(v, nullptr);
  const std::string good = Sign("RS256", "rsa.pem", Claims());
  ASSERT_EQ(Accepted(v->Verify(good)), "alice");
  // The payload swapped for another principal's, signature kept.
  Json mallory = Claims();
  mallory["sub"] = "mallory";
  const std::string other = Sign("RS256", "rsa2.pem", mallory);
  const size_t d1 = good.find('.'), d2 = good.rfind('.');
  const size_t o1 = other.find('.'), o2 = other.rfind('.');
  EXPECT_THAT(Refused(v->Verify(good.substr(0, d1) + other.substr(o1, o2 - o1) +
                                good.substr(d2))),
              HasSubstr("signature"));
  // One signature character changed.
  std::string flipped = good;
  flipped[d2 + 5] = flipped[d2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_THAT(Refused(v->Verify(flipped)), HasSubstr("signature"));
  EXPECT_THAT(Refused(v->Verify(good.substr(0, d2))), HasSubstr("not a JWT"));
  EXPECT_THAT(Refused(v->Verify(std::string(kMaxTokenBytes + 1, 'a'))),
              HasSubstr("not a JWT"));
}

TEST_F(JwtVerifierTest, ExpiryWithClockSkew) {
  auto v = Make(Secrets());
  ASSERT_NE(v, nullptr);
  Json c = Claims();
  c["exp"] = kNow - 61;  // past the default 60 s of skew
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("expired"));
  c["exp"] = kNow - 30;  // within the skew
  const std::string within = Sign("HS256", "hs1.key", c);
  EXPECT_EQ(Accepted(v->Verify(within)), "alice");
  clock_.Advance(absl::Seconds(31));
  EXPECT_THAT(Refused(v->Verify(within)), HasSubstr("expired"));
}

TEST_F(JwtVerifierTest, NotBeforeWithClockSkew) {
  auto v = Make(Secrets());
  ASSERT_NE(v, nullptr);
  Json c = Claims();
  c["nbf"] = kNow + 120;
  const std::string later = Sign("HS256", "hs1.key", c);
  EXPECT_THAT(Refused(v->Verify(later)), HasSubstr("not valid yet"));
  c["nbf"] = kNow + 30;
  EXPECT_EQ(Accepted(v->Verify(Sign("HS256", "hs1.key", c))), "alice");
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(Accepted(v->Verify(later)), "alice");
}

TEST_F(JwtVerifierTest, ExpIsRequiredUnlessConfiguredOtherwise) {
  Json c = Claims();
  c.erase("exp");
  AuthOptions o = Secrets();
  auto v = Make(o);
  ASSERT_NE(v, nullptr);
  const std::string token = Sign("HS256", "hs1.key", c);
  EXPECT_THAT(Refused(v->Verify(token)), HasSubstr("no exp"));
  o.jwt_require_exp = false;
  auto lenient = Make(o);
  ASSERT_NE(lenient, nullptr);
  EXPECT_EQ(Accepted(lenient->Verify(token)), "alice");
}

TEST_F(JwtVerifierTest, IssuerAndAudience) {
  AuthOptions o = Secrets();
  o.jwt_issuer = "https://idp.example";
  o.jwt_audience = "agentstream";
  auto v = Make(o);
  ASSERT_NE(v, nullptr);
  Json c = Claims();
  c["iss"] = "https://idp.example";
  c["aud"] = "agentstream";
  EXPECT_EQ(Accepted(v->Verify(Sign("HS256", "hs1.key", c))), "alice");
  c["aud"] = Json::array({"other", "agentstream"});
  EXPECT_EQ(Accepted(v->Verify(Sign("HS256", "hs1.key", c))), "alice");
  c["aud"] = "other";
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("audience"));
  c.erase("aud");
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("audience"));
  c["aud"] = "agentstream";
  c["iss"] = "https://evil.example";
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("issuer"));
}

TEST_F(JwtVerifierTest, SubIsRequired) {
  auto v = Make(Secrets());
  ASSERT_NE(v, nullptr);
  Json c = Claims();
  c.erase("sub");
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("sub"));
  c["sub"] = "";
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("sub"));
  c["sub"] = "two words";
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("sub"));
  c["sub"] = std::string(kMaxSubjectBytes + 1, 'a');
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("sub"));
}

TEST_F(JwtVerifierTest, AlgNoneIsRefusedAndNeverConfigurable) {
  auto v = Make(Secrets());
  ASSERT_NE(v, nullptr);
  absl::StatusOr<std::string> none = RunJwtTool({"none", Claims().dump()});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(Refused(v->Verify(*none)), HasSubstr("algorithm"));
  AuthOptions o = Secrets();
  o.jwt_algorithms = {"none"};
  EXPECT_FALSE(ResolveJwtAlgorithms(o).ok());
}

// The classic attack on libraries that take `alg` from the token: an HS256
// token whose HMAC key is the server's RSA public key (which is public).
TEST_F(JwtVerifierTest, KeyConfusionIsRefused) {
  auto v = Make(Pem(Read("rsa.pub")));
  ASSERT_NE(v, nullptr);
  absl::StatusOr<std::string> forged =
      RunJwtTool({"forge-hs256", Path("pub.pem"), Claims().dump()});
  ASSERT_TRUE(forged.ok()) << forged.status();
  EXPECT_THAT(Refused(v->Verify(*forged)), HasSubstr("algorithm"));
  // Nor can it be configured in.
  AuthOptions o = Pem(Read("rsa.pub"));
  o.jwt_algorithms = {"RS256", "HS256"};
  absl::StatusOr<std::vector<std::string>> algs = ResolveJwtAlgorithms(o);
  ASSERT_FALSE(algs.ok());
  EXPECT_THAT(std::string(algs.status().message()), HasSubstr("HS256"));
}

TEST_F(JwtVerifierTest, OnlyConfiguredAlgorithms) {
  AuthOptions o = Pem(Read("rsa.pub") + Read("ec.pub"));
  o.jwt_algorithms = {"RS256"};
  auto v = Make(o);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(Accepted(v->Verify(Sign("RS256", "rsa.pem", Claims()))), "alice");
  EXPECT_THAT(Refused(v->Verify(Sign("ES256", "ec.pem", Claims()))),
              HasSubstr("algorithm"));
  EXPECT_THAT(Refused(v->Verify(Sign("RS512", "rsa.pem", Claims()))),
              HasSubstr("algorithm"));
}

TEST_F(JwtVerifierTest, WeakAndPrivateKeysAreRefusedAtLoad) {
  AuthOptions o = Pem(Read("rsa1024.pub"));
  EXPECT_FALSE(JwtVerifier::Create(o, &clock_).ok());
  o = Pem(Read("rsa.pem"));
  absl::StatusOr<std::unique_ptr<JwtVerifier>> v =
      JwtVerifier::Create(o, &clock_);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("private key"));
  WriteFile(Path("short"), "too-short\n");
  o = AuthOptions{};
  o.jwt_secret_file = Path("short");
  v = JwtVerifier::Create(o, &clock_);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("line 1"));
}

TEST_F(JwtVerifierTest, JwksPicksTheKeyByKid) {
  auto v = Make(Jwks("jwks.json"));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(Accepted(v->Verify(Sign("RS256", "rsa.pem", Claims(), "rsa-1"))),
            "alice");
  EXPECT_EQ(Accepted(v->Verify(Sign("ES256", "ec.pem", Claims(), "ec-1"))),
            "alice");
  // The right key under the wrong kid, and a kid nobody has.
  EXPECT_THAT(Refused(v->Verify(Sign("RS256", "rsa.pem", Claims(), "ec-1"))),
              HasSubstr("unknown"));
  EXPECT_THAT(Refused(v->Verify(Sign("RS256", "rsa2.pem", Claims(), "rsa-2"))),
              HasSubstr("unknown"));
}

TEST_F(JwtVerifierTest, JwksRotationAndABadNewFile) {
  AuthOptions o = Jwks("jwks.json");
  auto v = Make(o);
  ASSERT_NE(v, nullptr);
  const std::string old_token = Sign("RS256", "rsa.pem", Claims(), "rsa-1");
  const std::string new_token = Sign("RS256", "rsa2.pem", Claims(), "rsa-2");
  ASSERT_EQ(Accepted(v->Verify(old_token)), "alice");
  ASSERT_THAT(Refused(v->Verify(new_token)), HasSubstr("unknown"));

  // Both key sets during the rotation.
  Json both = Json::parse(Read("jwks.json"));
  const Json second = Json::parse(Read("jwks2.json"));
  for (const Json& k : second["keys"]) {
    both["keys"].push_back(k);
  }
  WriteFile(Path("keys.json"), both.dump());
  // Not re-read before the reload interval has passed.
  EXPECT_THAT(Refused(v->Verify(new_token)), HasSubstr("unknown"));
  clock_.Advance(o.reload_interval);
  EXPECT_EQ(Accepted(v->Verify(new_token)), "alice");
  EXPECT_EQ(Accepted(v->Verify(old_token)), "alice");

  // A broken file keeps the keys we had.
  WriteFile(Path("keys.json"), "{\"keys\": [ broken");
  clock_.Advance(o.reload_interval);
  EXPECT_EQ(Accepted(v->Verify(new_token)), "alice");
  EXPECT_EQ(v->key_loads(), 2u);

  // The old key retired.
  std::filesystem::copy_file(Path("jwks2.json"), Path("keys.json"),
                             std::filesystem::copy_options::overwrite_existing);
  clock_.Advance(o.reload_interval);
  EXPECT_EQ(Accepted(v->Verify(new_token)), "alice");
  EXPECT_THAT(Refused(v->Verify(old_token)), HasSubstr("unknown"));
}

TEST_F(JwtVerifierTest, SecretFileRotation) {
  AuthOptions o = Secrets();
  WriteFile(Path("secrets"), std::string(kSecret1) + "\n");
  auto v = Make(o);
  ASSERT_NE(v, nullptr);
  const std::string t2 = Sign("HS256", "hs2.key", Claims());
  EXPECT_THAT(Refused(v->Verify(t2)), HasSubstr("signature"));
  WriteFile(Path("secrets"), std::string(kSecret2) + "\n");
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Accepted(v->Verify(t2)), "alice");
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", Claims()))),
              HasSubstr("signature"));
}

TEST_F(JwtVerifierTest, ScopesGiveAdminAndMetrics) {
  auto v = Make(Secrets());
  ASSERT_NE(v, nullptr);
  Json c = Claims();
  c["scope"] = "read agentstream:admin";
  auto r = v->Verify(Sign("HS256", "hs1.key", c));
  ASSERT_TRUE(std::holds_alternative<Principal>(r)) << Accepted(r);
  Principal p = std::get<Principal>(r);
  EXPECT_THAT(p.scopes, ::testing::ElementsAre("read", "agentstream:admin"));
  EXPECT_TRUE(p.admin);
  EXPECT_TRUE(p.metrics);

  c.erase("scope");
  c["scp"] = Json::array({"agentstream:metrics"});
  r = v->Verify(Sign("HS256", "hs1.key", c));
  ASSERT_TRUE(std::holds_alternative<Principal>(r)) << Accepted(r);
  p = std::get<Principal>(r);
  EXPECT_FALSE(p.admin);
  EXPECT_TRUE(p.metrics);

  c["scp"] = "not-an-array-but-one-scope";
  r = v->Verify(Sign("HS256", "hs1.key", c));
  ASSERT_TRUE(std::holds_alternative<Principal>(r)) << Accepted(r);
  EXPECT_FALSE(std::get<Principal>(r).metrics);

  c["scp"] = Json::array({"has space"});
  EXPECT_THAT(Refused(v->Verify(Sign("HS256", "hs1.key", c))),
              HasSubstr("scope"));
}

TEST_F(JwtVerifierTest, ConfigurationErrors) {
  AuthOptions o;
  o.mode = AuthMode::kJwt;
  EXPECT_FALSE(ResolveJwtAlgorithms(o).ok());  // no key source
  o.jwt_secret_file = "a";
  o.jwks_file = "b";
  EXPECT_FALSE(ResolveJwtAlgorithms(o).ok());  // two
  o.jwks_file.clear();
  o.jwt_algorithms = {"RS256"};
  EXPECT_FALSE(ResolveJwtAlgorithms(o).ok());  // RS256 with secrets
  o.jwt_algorithms = {"HS999"};
  EXPECT_FALSE(ResolveJwtAlgorithms(o).ok());
  o.jwt_algorithms.clear();
  EXPECT_THAT(*ResolveJwtAlgorithms(o), ::testing::ElementsAre("HS256"));
  o.jwt_algorithms = {"HS256, HS512", "HS384"};
  EXPECT_THAT(*ResolveJwtAlgorithms(o),
              ::testing::ElementsAre("HS256", "HS512", "HS384"));
  o.jwt_secret_file = Path("missing");
  EXPECT_FALSE(JwtVerifier::Create(o, &clock_).ok());
}

}  // namespace
}  // namespace agentstream::gateway::auth
