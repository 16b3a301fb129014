#include "common/http/router.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::http {
namespace {

using Kind = Router::Match::Kind;

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.Add("GET", "/api/chat/stream", 1).ok());
    ASSERT_TRUE(router_.Add("POST", "/api/chat/stream", 2).ok());
    ASSERT_TRUE(router_.Add("GET", "/api/runs/{id}/stream", 3).ok());
    ASSERT_TRUE(router_.Add("DELETE", "/api/runs/{id}", 4).ok());
    ASSERT_TRUE(router_.Add("GET", "/healthz", 5, /*serves_head=*/true).ok());
    ASSERT_TRUE(router_.Add("GET", "/{path...}", 6, /*serves_head=*/true).ok());
  }
  Router router_;
};

TEST_F(RouterTest, FindsLiteralAndParameterRoutes) {
  auto m = router_.Find("POST", "/api/chat/stream");
  EXPECT_EQ(m.kind, Kind::kFound);
  EXPECT_EQ(m.route, 2u);
  m = router_.Find("GET", "/api/runs/req_1%2E2/stream");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_EQ(m.route, 3u);
  EXPECT_EQ(RouteParam(m, "id"), "req_1.2");
  m = router_.Find("DELETE", "/api/runs/abc");
  EXPECT_EQ(m.route, 4u);
  EXPECT_EQ(RouteParam(m, "id"), "abc");
}

TEST_F(RouterTest, AKnownPathWithAnotherMethodIs405WithAllow) {
  auto m = router_.Find("PUT", "/api/chat/stream");
  EXPECT_EQ(m.kind, Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, OPTIONS, POST");
  m = router_.Find("OPTIONS", "/api/runs/x");
  EXPECT_EQ(m.kind, Kind::kOptions);
  EXPECT_EQ(m.allow, "DELETE, OPTIONS");
}

TEST_F(RouterTest, HeadRunsAGetOnlyWhereTheRouteAllowsIt) {
  auto m = router_.Find("HEAD", "/healthz");
  EXPECT_EQ(m.kind, Kind::kFound);
  EXPECT_TRUE(m.head);
  EXPECT_EQ(m.route, 5u);
  // A GET that starts a run never runs for a HEAD.
  m = router_.Find("HEAD", "/api/chat/stream");
  EXPECT_EQ(m.kind, Kind::kMethodNotAllowed);
  EXPECT_THAT(m.allow, ::testing::Not(::testing::HasSubstr("HEAD")));
}

TEST_F(RouterTest, TheCatchAllTakesTheRestAndEmptySegmentsDoNotMatchParams) {
  auto m = router_.Find("GET", "/");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_EQ(m.route, 6u);
  EXPECT_EQ(RouteParam(m, "path"), "");
  m = router_.Find("GET", "/a/b%2Fc");
  EXPECT_EQ(RouteParam(m, "path"), "a/b/c");
  // {id} needs a non-empty segment: falls through to the catch-all.
  m = router_.Find("GET", "/api/runs//stream");
  EXPECT_EQ(m.route, 6u);
}

TEST_F(RouterTest, LongAndOddPathsAreLinear) {
  const std::string long_path = "/" + std::string(1 << 20, 'a');
  EXPECT_EQ(router_.Find("GET", long_path).route, 6u);
  const std::string slashes(1 << 20, '/');
  EXPECT_EQ(router_.Find("GET", slashes).kind, Kind::kFound);
  EXPECT_EQ(router_.Find("GET", "no-slash").kind, Kind::kNotFound);
}

TEST(RouterAddTest, RefusesMalformedPatterns) {
  Router r;
  EXPECT_THAT(r.Add("GET", "no-slash", 0),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.Add("GET", "/{rest...}/x", 0),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.Add("GET", "/a{b", 0),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.Add("GE T", "/a", 0),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace agentstream::http
