#include "common/sse_parser.h"

#include <vector>

#include "gtest/gtest.h"

namespace agentstream {
namespace {

std::vector<SseFields> ParseAll(SseStreamParser& parser, std::string_view in) {
  std::vector<SseFields> events;
  parser.Feed(in, [&](SseFields e) { events.push_back(std::move(e)); });
  return events;
}

TEST(SseStreamParserTest, FieldsOfTheGatewaysWire) {
  SseStreamParser parser;
  int comments = 0;
  parser.on_comment = [&](std::string_view c) {
    EXPECT_EQ(c, " heartbeat");
    ++comments;
  };
  std::vector<SseFields> events =
      ParseAll(parser,
               "retry: 2000\n\nid: r:0\nevent: connected\ndata: {\"a\":1}\n\n"
               ": heartbeat\n\ndata: line1\ndata: line2\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "r:0");
  EXPECT_TRUE(events[0].has_id);
  EXPECT_EQ(events[0].event, "connected");
  EXPECT_EQ(events[0].data, "{\"a\":1}");
  EXPECT_FALSE(events[1].has_id);
  EXPECT_EQ(events[1].event, "message");
  EXPECT_EQ(events[1].data, "line1\nline2");
  EXPECT_EQ(parser.retry_ms(), 2000);
  EXPECT_EQ(comments, 1);
  EXPECT_EQ(parser.comments(), 1);
  // The last id is kept across an event without one.
  EXPECT_EQ(parser.last_event_id(), "r:0");
}

TEST(SseStreamParserTest, LineEndsSplitAnywhere) {
  const std::string wire = "id: r:1\r\ndata: x\r\n\r\nid: r:2\rdata: y\r\r";
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    SseStreamParser parser;
    std::vector<SseFields> events =
        ParseAll(parser, std::string_view(wire).substr(0, cut));
    for (SseFields& e : ParseAll(parser, std::string_view(wire).substr(cut))) {
      events.push_back(std::move(e));
    }
    ASSERT_EQ(events.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(events[0].data, "x");
    EXPECT_EQ(events[1].data, "y");
    EXPECT_EQ(parser.last_event_id(), "r:2");
  }
}

TEST(SseStreamParserTest, AnEventWithoutDataIsDroppedButItsIdCounts) {
  SseStreamParser parser;
  EXPECT_TRUE(ParseAll(parser, "id: r:5\nevent: nothing\n\n").empty());
  EXPECT_EQ(parser.last_event_id(), "r:5");
  EXPECT_TRUE(ParseAll(parser, "retry: soon\n\n").empty());
  EXPECT_FALSE(parser.retry_ms().has_value());
  // An id with NUL is ignored, as EventSource ignores it.
  ParseAll(parser, std::string("id: a\0b\ndata: z\n\n", 17));
  EXPECT_EQ(parser.last_event_id(), "r:5");
}

}  // namespace
}  // namespace agentstream
