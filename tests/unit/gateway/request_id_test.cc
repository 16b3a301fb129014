#include "gateway/request_id.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::gateway {
namespace {

TEST(RequestIdTest, AcceptsShortTokens) {
  EXPECT_TRUE(IsValidRequestId("a"));
  EXPECT_TRUE(IsValidRequestId("req_4f1c9a"));
  EXPECT_TRUE(IsValidRequestId("A.b-C_9"));
  EXPECT_TRUE(IsValidRequestId(std::string(64, 'x')));
}

TEST(RequestIdTest, RejectsEverythingElse) {
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId(std::string(65, 'x')));
  for (const char* bad : {"a b", "a:b", "a/b", "a\nb", "a\rb", "<script>", "ü",
                          "a%20", "a,b", "a;b", "\"x\""}) {
    EXPECT_FALSE(IsValidRequestId(bad)) << bad;
  }
  EXPECT_FALSE(IsValidRequestId(std::string("a\0b", 3)));
}

TEST(RequestIdTest, GeneratedIdsHaveTheShapeAndAreValid) {
  const std::string id = GenerateRequestId();
  EXPECT_THAT(id, ::testing::MatchesRegex("req_[0-9a-f]{16}"));
  EXPECT_TRUE(IsValidRequestId(id));
}

TEST(RequestIdTest, GeneratedIdsDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(GenerateRequestId());
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(RequestIdTest, ValidClientIdIsKept) {
  EXPECT_EQ(AcceptOrGenerateRequestId("abc-123"), "abc-123");
}

TEST(RequestIdTest, InvalidClientIdIsReplacedNeverEchoed) {
  const std::string out = AcceptOrGenerateRequestId("evil\r\nX: y");
  EXPECT_THAT(out, ::testing::MatchesRegex("req_[0-9a-f]{16}"));
  EXPECT_EQ(out.find("evil"), std::string::npos);
  EXPECT_THAT(AcceptOrGenerateRequestId(""),
              ::testing::MatchesRegex("req_[0-9a-f]{16}"));
}

}  // namespace
}  // namespace agentstream::gateway
