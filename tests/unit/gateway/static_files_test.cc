#include "gateway/static_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace agentstream::gateway {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::IsOkAndHolds;
using ::agentstream::testing::StatusIs;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<agentstream::testing::ScopedTempDir> base =
        agentstream::testing::ScopedTempDir::Make("gw_static_");
    ASSERT_THAT(base, IsOk());
    dir_ = *std::move(base);
    base_ = dir_.path();
    root_ = base_ + "/web";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/js").c_str(), 0755), 0);
    Write(root_ + "/index.html", "<html></html>");
    Write(root_ + "/js/app.js", "1");
    Write(root_ + "/.env", "secret");
    Write(base_ + "/secret.txt", "secret");
    ASSERT_EQ(
        symlink((base_ + "/secret.txt").c_str(), (root_ + "/link.txt").c_str()),
        0);
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  agentstream::testing::ScopedTempDir dir_;
  std::string base_;
  std::string root_;
};

TEST_F(StaticFilesTest, ServesIndexAndFiles) {
  char real[PATH_MAX];
  ASSERT_NE(realpath(root_.c_str(), real), nullptr);
  const std::string root(real);
  EXPECT_THAT(ResolveStaticPath(root_, "/"),
              IsOkAndHolds(root + "/index.html"));
  EXPECT_THAT(ResolveStaticPath(root_, "/index.html"),
              IsOkAndHolds(root + "/index.html"));
  EXPECT_THAT(ResolveStaticPath(root_, "/js/app.js"),
              IsOkAndHolds(root + "/js/app.js"));
}

TEST_F(StaticFilesTest, RefusesTraversalHiddenAndOutsideLinks) {
  for (const char* path :
       {"/../secret.txt", "/js/../../secret.txt", "/./index.html", "/.env",
        "/link.txt", "/js", "/missing.js", "//etc/passwd", "/js\\app.js",
        "relative", ""}) {
    EXPECT_THAT(ResolveStaticPath(root_, path),
                StatusIs(absl::StatusCode::kNotFound))
        << path;
  }
  EXPECT_THAT(ResolveStaticPath(root_, std::string("/index.html\0x", 13)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StaticFilesTest, MissingRootIsNotFound) {
  EXPECT_THAT(ResolveStaticPath(base_ + "/nope", "/"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ContentTypeTest, ByExtension) {
  EXPECT_EQ(ContentTypeForPath("/a/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("app.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("x.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("s.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("i.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeForPath("d.json"), "application/json");
  EXPECT_EQ(ContentTypeForPath("agentstream.d.ts"),
            "text/plain; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("noext"), "application/octet-stream");
}

}  // namespace
}  // namespace agentstream::gateway
