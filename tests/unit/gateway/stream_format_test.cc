#include "gateway/stream_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StreamFormatTest, DefaultsWhenNothingIsAsked) {
  auto f = ParseStreamFormatQuery({});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->heartbeat, HeartbeatStyle::kComment);
  EXPECT_TRUE(f->types.all());
  EXPECT_FALSE(f->batch.on());
}

TEST(StreamFormatTest, EitherBatchParameterTurnsBatchingOn) {
  auto both =
      ParseStreamFormatQuery({{"batch_max", "20"}, {"batch_ms", "250"}});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->batch.max_updates, 20);
  EXPECT_EQ(both->batch.max_wait, absl::Milliseconds(250));
  auto max = ParseStreamFormatQuery({{"batch_max", "3"}});
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->batch.max_updates, 3);
  EXPECT_EQ(max->batch.max_wait, absl::Milliseconds(kDefaultBatchMs));
  auto ms = ParseStreamFormatQuery({{"batch_ms", "10"}});
  ASSERT_TRUE(ms.ok());
  EXPECT_EQ(ms->batch.max_updates, kDefaultBatchMax);
  EXPECT_EQ(ms->batch.max_wait, absl::Milliseconds(10));
}

TEST(StreamFormatTest, BatchBoundsAndBadValuesAreRefused) {
  for (const char* bad :
       {"0", "-1", "1001", "1.5", "x", "", "99999999999999"}) {
    auto f = ParseStreamFormatQuery({{"batch_max", bad}});
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(f.status().message(), HasSubstr("batch_max must be"));
  }
  EXPECT_TRUE(ParseStreamFormatQuery({{"batch_max", "1000"}}).ok());
  EXPECT_TRUE(ParseStreamFormatQuery({{"batch_ms", "10000"}}).ok());
  EXPECT_FALSE(ParseStreamFormatQuery({{"batch_ms", "10001"}}).ok());
  EXPECT_FALSE(ParseStreamFormatQuery({{"batch_ms", "0"}}).ok());
}

TEST(StreamFormatTest, ThePostBodysFields) {
  StreamFormat f;
  ASSERT_TRUE(
      MergeStreamFormatJson(nlohmann::json::parse(
                                R"({"heartbeat":"event","types":["progress"],
                          "batch_max":7,"batch_ms":30})"),
                            &f)
          .ok());
  EXPECT_EQ(f.heartbeat, HeartbeatStyle::kEvent);
  EXPECT_THAT(f.types.Names(), ElementsAre("progress"));
  EXPECT_EQ(f.batch.max_updates, 7);
  EXPECT_EQ(f.batch.max_wait, absl::Milliseconds(30));
  StreamFormat g;
  for (const char* bad :
       {R"({"batch_max":"7"})", R"({"batch_max":0})", R"({"batch_max":2.5})",
        R"({"batch_ms":-3})", R"({"batch_ms":100000})", R"({"types":5})",
        R"({"heartbeat":1})"}) {
    EXPECT_EQ(MergeStreamFormatJson(nlohmann::json::parse(bad), &g).code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(StreamFormatTest, Compress) {
  EXPECT_FALSE(ParseStreamFormatQuery({})->compress);
  EXPECT_TRUE(ParseStreamFormatQuery({{"compress", "1"}})->compress);
  EXPECT_TRUE(ParseStreamFormatQuery({{"compress", "true"}})->compress);
  EXPECT_FALSE(ParseStreamFormatQuery({{"compress", "0"}})->compress);
  auto bad = ParseStreamFormatQuery({{"compress", "yes"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("compress must be"));
  StreamFormat f;
  ASSERT_TRUE(
      MergeStreamFormatJson(nlohmann::json::parse(R"({"compress":true})"), &f)
          .ok());
  EXPECT_TRUE(f.compress);
  ASSERT_TRUE(
      MergeStreamFormatJson(nlohmann::json::parse(R"({"compress":0})"), &f)
          .ok());
  EXPECT_FALSE(f.compress);
  EXPECT_FALSE(
      MergeStreamFormatJson(nlohmann::json::parse(R"({"compress":"1"})"), &f)
          .ok());
  // The threshold is the server's: a client cannot set it.
  EXPECT_EQ(
      ParseStreamFormatQuery({{"compress_min_bytes", "1"}})->compress_min_bytes,
      kDefaultCompressMinBytes);
}

}  // namespace
}  // namespace agentstream::gateway
