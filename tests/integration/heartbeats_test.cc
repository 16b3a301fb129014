// Heartbeats with the real binaries (gateway --heartbeat-ms=100): during an
// idle stretch of a run (Synthetic's start_delay_ms) the stream carries
// heartbeats at about the interval; they carry no id, so the resume point
// never moves; `heartbeat=event` sends them as `event: heartbeat`.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"

namespace agentstream::testing {
namespace {

constexpr int kIdleMs = 2000;

class HeartbeatsTest : public TopologyTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_gateway_args = {"--heartbeat-ms=100"};
    StartTopology(options);
  }
};

double MedianGapMs(const std::vector<absl::Time>& times) {
  std::vector<double> gaps;
  for (size_t i = 1; i < times.size(); ++i) {
    gaps.push_back(absl::ToDoubleMilliseconds(times[i] - times[i - 1]));
  }
  if (gaps.empty()) return -1;
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  return gaps[gaps.size() / 2];
}

TEST_F(HeartbeatsTest, CommentHeartbeatsAtTheIntervalWithoutIds) {
  const std::string rid = "hb-comment-1";
  const RawSseResult r = RawSse(NewRunRequest(
      topology_->gateway_port(),
      SyntheticChatPath(
          {{"count", 5}, {"rate", 100}, {"start_delay_ms", kIdleMs}}),
      rid, absl::Seconds(30)));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.EndedWithDone());
  EXPECT_EQ(CheckDenseRun(MessagesOf(r), r.RunId()), "");
  const double median = MedianGapMs(r.comment_times);
  std::cout << "[heartbeats] comment heartbeats=" << r.comments
            << " median_gap_ms=" << median << " over an idle stretch of "
            << kIdleMs << " ms" << std::endl;
  // ~20 expected in 2 s; loose bounds on a shared machine.
  EXPECT_GE(r.comments, 8);
  EXPECT_GE(median, 60);
  EXPECT_LE(median, 400);
  // No heartbeat is an event, and no `id:` line goes with a comment.
  for (const SseEvent& e : r.events) EXPECT_NE(e.event, "heartbeat");
  EXPECT_THAT(r.body, ::testing::Not(::testing::HasSubstr(": heartbeat\nid:")));
  EXPECT_GT(GatewayMetric(*topology_, "heartbeats_sent_total"), 0);
}

TEST_F(HeartbeatsTest, EventHeartbeatsCarryNoIdAndKeepTheResumePoint) {
  const std::string rid = "hb-event-1";
  RawSseRequest req = NewRunRequest(
      topology_->gateway_port(),
      SyntheticChatPath(
          {{"count", 5}, {"rate", 100}, {"start_delay_ms", kIdleMs}},
          "&heartbeat=event"),
      rid, absl::Seconds(30));
  // The EventSource last-event-id when each heartbeat was dispatched.
  std::vector<std::string> id_at_heartbeat;
  std::string last_id;
  req.on_event = [&](const SseEvent& e) {
    if (e.has_id) last_id = e.id;
    if (e.event == "heartbeat") id_at_heartbeat.push_back(last_id);
    return RawSseAction{};
  };
  const RawSseResult r = RawSse(req);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.EndedWithDone());
  EXPECT_EQ(CheckDenseRun(MessagesOf(r), r.RunId()), "");
  std::vector<absl::Time> times;
  for (const SseEvent& e : r.events) {
    if (e.event != "heartbeat") continue;
    times.push_back(e.received_at);
    EXPECT_FALSE(e.has_id) << "heartbeat with an id: " << e.id;
    EXPECT_EQ(e.json.value("type", ""), "heartbeat") << e.data;
  }
  const double median = MedianGapMs(times);
  std::cout << "[heartbeats] event heartbeats=" << times.size()
            << " median_gap_ms=" << median << std::endl;
  EXPECT_GE(times.size(), 8u);
  EXPECT_GE(median, 60);
  EXPECT_LE(median, 400);
  // Heartbeats never move the resume point: at each one the client's last
  // event id is exactly that of the update before it, "<rid>:<number of
  // updates received so far>" (`connected` is "<rid>:0"; seq is dense from
  // 1, checked above).
  std::vector<std::string> want_at_heartbeat;
  int updates_before = 0;
  for (const SseEvent& e : r.events) {
    if (e.event == "message") ++updates_before;
    if (e.event == "heartbeat") {
      want_at_heartbeat.push_back(absl::StrCat(r.RunId(), ":", updates_before));
    }
  }
  EXPECT_EQ(id_at_heartbeat, want_at_heartbeat);
  // And the stream's last event id (the parser's, as EventSource keeps it)
  // is that of the last update, whatever heartbeats followed it.
  EXPECT_EQ(r.last_event_id,
            absl::StrCat(r.RunId(), ":", MessagesOf(r).size()));
  // The idle stretch: the resume point did not move while heartbeats went.
  ASSERT_FALSE(id_at_heartbeat.empty());
  EXPECT_EQ(id_at_heartbeat.front(),
            id_at_heartbeat[id_at_heartbeat.size() / 2]);
}

}  // namespace
}  // namespace agentstream::testing
