#include "gateway/sse_encoder.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/sse_client.h"

namespace agentstream::gateway {
namespace {

using ::testing::ElementsAre;

// Parses `wire` with the independent test parser.
std::vector<agentstream::testing::SseEvent> Parse(const std::string& wire) {
  std::vector<agentstream::testing::SseEvent> events;
  agentstream::testing::SseParser parser;
  parser.Feed(wire, [&](agentstream::testing::SseEvent e) {
    events.push_back(std::move(e));
  });
  return events;
}

TEST(SseEncoderTest, RetryBlock) {
  EXPECT_EQ(EncodeRetry(2000), "retry: 2000\n\n");
  EXPECT_EQ(EncodeRetry(-5), "retry: 0\n\n");
}

TEST(SseEncoderTest, EventWithIdNameAndData) {
  EXPECT_EQ(EncodeEvent("r:1", "message", "{\"a\":1}"),
            "id: r:1\nevent: message\ndata: {\"a\":1}\n\n");
}

TEST(SseEncoderTest, EmptyIdAndEventWriteNoLines) {
  EXPECT_EQ(EncodeEvent("", "", "x"), "data: x\n\n");
}

TEST(SseEncoderTest, MultiLinePayloadIsOneDataLinePerLine) {
  EXPECT_EQ(EncodeEvent("", "", "a\nb\nc"), "data: a\ndata: b\ndata: c\n\n");
}

TEST(SseEncoderTest, CrLfAndCrlfAreAllLineBreaks) {
  EXPECT_EQ(EncodeEvent("", "", "a\rb\r\nc\n\nd"),
            "data: a\ndata: b\ndata: c\ndata:\ndata: d\n\n");
  // A trailing break survives as an empty last line.
  EXPECT_EQ(EncodeEvent("", "", "a\r\n"), "data: a\ndata:\n\n");
}

TEST(SseEncoderTest, PayloadRoundTripsThroughAParser) {
  const std::string payload = "line1\nline2\r\nline3\rline4";
  auto events = Parse(EncodeEvent("1", "x", payload));
  ASSERT_EQ(events.size(), 1u);
  // The parser normalises every break to LF.
  EXPECT_EQ(events[0].data, "line1\nline2\nline3\nline4");
}

TEST(SseEncoderTest, CrLfInIdAndEventAreStripped) {
  const std::string wire =
      EncodeEvent("r:1\r\nevent: evil\ndata: x", "mes\rsage\n", "ok");
  EXPECT_EQ(wire, "id: r:1event: evildata: x\nevent: message\ndata: ok\n\n");
  auto events = Parse(wire);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "message");
  EXPECT_EQ(events[0].data, "ok");
}

TEST(SseEncoderTest, NulIsStrippedFromFields) {
  EXPECT_EQ(SanitizeFieldValue(std::string("a\0b", 3)), "ab");
}

TEST(SseEncoderTest, UnicodePassesThroughUntouched) {
  const std::string text = "Grüße 你好 🚀 \u2028 done";
  EXPECT_EQ(EncodeEvent("ü:1", "ñ", text),
            "id: ü:1\nevent: ñ\ndata: " + text + "\n\n");
  auto events = Parse(EncodeEvent("", "", text));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, text);
}

TEST(SseEncoderTest, CommentHeartbeatHasNoIdAndIsNotAnEvent) {
  EXPECT_EQ(EncodeHeartbeat(HeartbeatStyle::kComment, "{}"), ": heartbeat\n\n");
  EXPECT_TRUE(Parse(EncodeHeartbeat(HeartbeatStyle::kComment, "{}")).empty());
}

TEST(SseEncoderTest, EventHeartbeatHasNoId) {
  const std::string wire =
      EncodeHeartbeat(HeartbeatStyle::kEvent, "{\"type\":\"heartbeat\"}");
  EXPECT_EQ(wire, "event: heartbeat\ndata: {\"type\":\"heartbeat\"}\n\n");
  auto events = Parse(wire);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].has_id);
}

TEST(SseEncoderTest, MultiLineComment) {
  EXPECT_EQ(EncodeComment("a\nb"), ": a\n: b\n\n");
}

TEST(SseEncoderTest, ConcatenatedEventsParseSeparately) {
  auto events = Parse(EncodeEvent("1", "a", "x") + EncodeComment("hb") +
                      EncodeEvent("2", "b", "y"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "1");
  EXPECT_EQ(events[1].id, "2");
  std::vector<std::string> names = {events[0].event, events[1].event};
  EXPECT_THAT(names, ElementsAre("a", "b"));
}

}  // namespace
}  // namespace agentstream::gateway
