// Key files (gateway/auth/jwt_keys.h): JWKS from Python's jwt (to_jwk), and
// what a key file must not be.
#include "gateway/auth/jwt_keys.h"

#include <filesystem>
#include <string>

#include "gateway/auth/auth_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/auth/jwt_tool.h"

namespace agentstream::gateway::auth {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string Error(const absl::StatusOr<KeySet>& s) {
  return s.ok() ? "ok" : std::string(s.status().message());
}

class JwtKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_JWT_TOOL();
    absl::StatusOr<std::string> dir =
        agentstream::testing::MakeTempDir("auth_keys");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    ASSERT_TRUE(testing::RunJwtTool({"keys", dir_}).ok());
    jwks_ =
        Json::parse(agentstream::testing::ReadFileOrEmpty(dir_ + "/jwks.json"));
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  Json Key(int i) const { return jwks_["keys"][i]; }
  static std::string Set(const std::vector<Json>& keys) {
    Json set = {{"keys", Json::array()}};
    for (const Json& k : keys) set["keys"].push_back(k);
    return set.dump();
  }
  std::string dir_;
  Json jwks_;
};

TEST_F(JwtKeysTest, JwksFromPythonBecomesTheSamePublicKeys) {
  absl::StatusOr<KeySet> set = ParseJwks(jwks_.dump());
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys.size(), 2u);
  EXPECT_EQ(set->keys[0].kind, KeyKind::kRsa);
  EXPECT_EQ(set->keys[0].kid, "rsa-1");
  EXPECT_EQ(set->keys[1].kind, KeyKind::kEcP256);
  EXPECT_EQ(set->keys[1].kid, "ec-1");
  // The PEM we derive from each JWK is the one Python wrote.
  absl::StatusOr<KeySet> pem = ParsePublicKeyPem(
      agentstream::testing::ReadFileOrEmpty(dir_ + "/rsa.pub") +
      agentstream::testing::ReadFileOrEmpty(dir_ + "/ec.pub"));
  ASSERT_TRUE(pem.ok()) << pem.status();
  ASSERT_EQ(pem->keys.size(), 2u);
  EXPECT_EQ(set->keys[0].material, pem->keys[0].material);
  EXPECT_EQ(set->keys[1].material, pem->keys[1].material);
}

TEST_F(JwtKeysTest, ShortCoordinatesArePaddedBack) {
  absl::StatusOr<KeySet> set = ParseJwks(
      agentstream::testing::ReadFileOrEmpty(dir_ + "/jwks_short.json"));
  ASSERT_TRUE(set.ok()) << set.status();
  absl::StatusOr<KeySet> pem = ParsePublicKeyPem(
      agentstream::testing::ReadFileOrEmpty(dir_ + "/ec0.pub"));
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_EQ(set->keys[0].material, pem->keys[0].material);
}

TEST_F(JwtKeysTest, BadJwksEntries) {
  Json off_curve = Key(1);
  std::string y = off_curve["y"];
  y[5] = y[5] == 'A' ? 'B' : 'A';
  off_curve["y"] = y;
  EXPECT_THAT(Error(ParseJwks(Set({off_curve}))), HasSubstr("keys[0]"));
  Json long_x = Key(1);
  long_x["x"] = std::string(long_x["x"]) + "AAAA";
  EXPECT_THAT(Error(ParseJwks(Set({long_x}))), HasSubstr("32 bytes"));
  Json p384 = Key(1);
  p384["crv"] = "P-384";
  EXPECT_THAT(Error(ParseJwks(Set({p384}))), HasSubstr("P-256"));
  Json no_n = Key(0);
  no_n.erase("n");
  EXPECT_THAT(Error(ParseJwks(Set({no_n}))), HasSubstr("`n`"));
  Json dup = Key(1);
  dup["kid"] = "rsa-1";
  EXPECT_THAT(Error(ParseJwks(Set({Key(0), dup}))), HasSubstr("twice"));
  // Skipped, not refused: encryption keys, other key types, algorithms we
  // do not verify; but a set with nothing usable is an error.
  Json enc = Key(0);
  enc["use"] = "enc";
  Json oct = {{"kty", "oct"}, {"k", "c2VjcmV0"}};
  Json ps = Key(0);
  ps["alg"] = "PS256";
  EXPECT_THAT(Error(ParseJwks(Set({enc, oct, ps}))), HasSubstr("no usable"));
  absl::StatusOr<KeySet> one = ParseJwks(Set({enc, oct, Key(1)}));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->keys.size(), 1u);
  Json many = Json{{"keys", Json::array()}};
  for (size_t i = 0; i <= kMaxKeys; ++i) many["keys"].push_back(oct);
  EXPECT_THAT(Error(ParseJwks(many.dump())), HasSubstr("more than"));
  EXPECT_THAT(Error(ParseJwks("[1,2]")), HasSubstr("not a JWKS"));
  EXPECT_THAT(Error(ParseJwks("{")), HasSubstr("not a JWKS"));
}

TEST(KeyFilesTest, Secrets) {
  const std::string s32(kMinHmacSecretBytes, 'k');
  absl::StatusOr<KeySet> set =
      ParseSecretFile("# comment\n" + s32 + "  \r\n\n" + s32 + "x\n");
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys.size(), 2u);
  EXPECT_EQ(set->keys[0].material, s32);
  EXPECT_EQ(set->keys[0].kind, KeyKind::kHmac);
  EXPECT_THAT(Error(ParseSecretFile(s32 + "\nshort\n")), HasSubstr("line 2"));
  EXPECT_THAT(Error(ParseSecretFile("# nothing\n")), HasSubstr("no secret"));
}

TEST(KeyFilesTest, PemErrors) {
  EXPECT_THAT(Error(ParsePublicKeyPem("")), HasSubstr("no PEM"));
  EXPECT_THAT(
      Error(ParsePublicKeyPem(
          "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")),
      HasSubstr("not a valid"));
  EXPECT_THAT(Error(ParsePublicKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n")),
              HasSubstr("without its end"));
  EXPECT_THAT(Error(ParsePublicKeyPem("-----BEGIN CERTIFICATE-----\n")),
              HasSubstr("other than PUBLIC KEY"));
}

}  // namespace
}  // namespace agentstream::gateway::auth
