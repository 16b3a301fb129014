// What the replay server sends and when (gateway/replay/replay_plan.h):
// requests parsed like the gateway's, plans on a recording (resume, types,
// timing scaled by speed, bounded pauses), and the pacer with heartbeats.
#include "gateway/replay/replay_plan.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/sse_client.h"

namespace agentstream::gateway::replay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Updates at 1 s, 1.5 s, 2 s (an error, with its copy), 3 s; then done.
constexpr char kRun[] =
    "retry: 2000\n\n"
    "id: req_a:0\nevent: connected\ndata: {\"type\":\"connected\"}\n\n"
    "id: req_a:1\nevent: message\n"
    "data: {\"type\":\"status\",\"seq\":1,\"emitted_at_ns\":1000000000}\n\n"
    "id: req_a:2\nevent: message\n"
    "data: {\"type\":\"progress\",\"seq\":2,\"emitted_at_ns\":1500000000}\n\n"
    "id: req_a:3\nevent: message\n"
    "data: {\"type\":\"error\",\"seq\":3,\"emitted_at_ns\":2000000000}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"seq\":3,\"emitted_at_ns\":2000000000}\n\n"
    "id: req_a:5\nevent: message\n"
    "data: {\"type\":\"complete\",\"seq\":5,\"emitted_at_ns\":3000000000}\n\n"
    "event: done\ndata: {\"type\":\"done\",\"status\":\"complete\"}\n\n";

Recording TestRun() {
  auto rec = ParseRecording(kRun);
  EXPECT_TRUE(rec.ok()) << rec.status();
  return *rec;
}

QueryParams Q(
    std::initializer_list<std::pair<const std::string, std::string>> params) {
  return QueryParams(params);
}

// Every planned event as "<ms> <event>:<id>" (ids without the run).
std::vector<std::string> Shape(const ReplayPlan& plan) {
  std::vector<std::string> out;
  for (const PlannedEvent& e : plan.events) {
    testing::SseParser parser;
    parser.Feed(e.bytes, [&](testing::SseEvent ev) {
      out.push_back(absl::StrCat(absl::ToInt64Milliseconds(e.at), " ", ev.event,
                                 ":", ev.has_id ? ev.id : "-"));
    });
  }
  return out;
}

ReplayRequest Fresh(double speed = 1) {
  ReplayRequest r;
  r.speed = speed;
  return r;
}

TEST(PlanReplayTest, AFreshStreamKeepsTheRecordedTiming) {
  const Recording rec = TestRun();
  auto plan = PlanReplay(&rec, Fresh(), ReplayOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->opening, Opening::kStream);
  EXPECT_EQ(plan->request_id, "req_a");
  EXPECT_THAT(
      Shape(*plan),
      ElementsAre("0 connected:req_a:0", "0 message:req_a:1",
                  "500 message:req_a:2", "1000 message:req_a:3", "1000 error:-",
                  "2000 message:req_a:5", "2000 done:-"));
  EXPECT_THAT(plan->events[0].bytes, HasSubstr("retry: 2000\n\n"));
  EXPECT_THAT(plan->events[0].bytes, HasSubstr("\"status\":\"connected\""));
  // The recorded bytes go as they were.
  EXPECT_EQ(plan->events[1].bytes,
            "id: req_a:1\nevent: message\ndata: {\"type\":\"status\","
            "\"seq\":1,\"emitted_at_ns\":1000000000}\n\n");
}

TEST(PlanReplayTest, SpeedDividesEveryPause) {
  const Recording rec = TestRun();
  auto plan = PlanReplay(&rec, Fresh(10), ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Shape(*plan),
              ElementsAre("0 connected:req_a:0", "0 message:req_a:1",
                          "50 message:req_a:2", "100 message:req_a:3",
                          "100 error:-", "200 message:req_a:5", "200 done:-"));
  auto slow = PlanReplay(&rec, Fresh(0.5), ReplayOptions{});
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(slow->events.back().at, absl::Seconds(4));
}

TEST(PlanReplayTest, LongPausesAreCutToMaxGapAndTimeNeverGoesBack) {
  auto rec = ParseRecording(
      "id: req_a:1\ndata: {\"type\":\"status\",\"emitted_at_ns\":1}\n\n"
      "id: req_a:2\ndata: {\"type\":\"status\",\"emitted_at_ns\":"
      "9000000000000}\n\n"
      "id: req_a:3\ndata: {\"type\":\"status\",\"emitted_at_ns\":5}\n\n"
      "id: req_a:4\ndata: {\"type\":\"status\",\"emitted_at_ns\":"
      "9000100000000}\n\n");
  ASSERT_TRUE(rec.ok()) << rec.status();
  ReplayOptions options;
  options.max_gap = absl::Seconds(2);
  auto plan = PlanReplay(&*rec, Fresh(), options);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Shape(*plan),
              ElementsAre("0 connected:req_a:0", "0 message:req_a:1",
                          "2000 message:req_a:2", "2000 message:req_a:3",
                          "2100 message:req_a:4"));
}

TEST(PlanReplayTest, AResumeSendsWhatFollowsThePointOnly) {
  const Recording rec = TestRun();
  ReplayRequest r = Fresh();
  r.after_seq = 2;
  auto plan = PlanReplay(&rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  // The first update after the point goes at once, then the recorded gaps.
  EXPECT_THAT(Shape(*plan),
              ElementsAre("0 connected:req_a:2", "0 message:req_a:3",
                          "0 error:-", "1000 message:req_a:5", "1000 done:-"));
  EXPECT_THAT(plan->events[0].bytes,
              HasSubstr("\"status\":\"resumed\",\"request_id\":\"req_a\","
                        "\"after_seq\":2"));
  // After seq 3: the error's copy goes with it.
  r.after_seq = 3;
  plan = PlanReplay(&rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Shape(*plan), ElementsAre("0 connected:req_a:3",
                                        "0 message:req_a:5", "0 done:-"));
  // A point between seqs (4 was never sent) resumes the same.
  r.after_seq = 4;
  plan = PlanReplay(&rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Shape(*plan), ElementsAre("0 connected:req_a:4",
                                        "0 message:req_a:5", "0 done:-"));
  // Last-Event-ID <rid>:0 is a resume from the start.
  r.after_seq = 0;
  plan = PlanReplay(&rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Shape(*plan).size(), 7u);
  EXPECT_THAT(plan->events[0].bytes, HasSubstr("\"status\":\"resumed\""));
}

TEST(PlanReplayTest, OpeningsAreTheGateways) {
  const Recording rec = TestRun();
  ReplayRequest r = Fresh();
  // At the run's last seq: 204.
  r.after_seq = 5;
  auto plan = PlanReplay(&rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->opening, Opening::kNoContent);
  EXPECT_TRUE(plan->events.empty());
  // Past it: 400.
  r.after_seq = 6;
  EXPECT_EQ(PlanReplay(&rec, r, ReplayOptions{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // An unknown run: a gap stream on a resume, else 404.
  r.run_id = "req_gone";
  r.after_seq = 3;
  plan = PlanReplay(nullptr, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->opening, Opening::kGapStream);
  EXPECT_THAT(Shape(*plan),
              ElementsAre("0 connected:req_gone:3", "0 error:-", "0 done:-"));
  EXPECT_THAT(plan->events[0].bytes, HasSubstr("\"code\":\"gap\""));
  EXPECT_THAT(plan->events[0].bytes, HasSubstr("\"status\":\"failed\""));
  r.after_seq.reset();
  EXPECT_EQ(PlanReplay(nullptr, r, ReplayOptions{}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PlanReplayTest, TypesKeepErrorsAndDoneAndTheTiming) {
  const Recording rec = TestRun();
  ReplayRequest r = Fresh();
  auto types = ParseTypeList("progress");
  ASSERT_TRUE(types.ok());
  r.types = *types;
  auto plan = PlanReplay(&rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  // Filtered updates still take their time: progress stays at 500 ms.
  EXPECT_THAT(
      Shape(*plan),
      ElementsAre("0 connected:req_a:0", "500 message:req_a:2",
                  "1000 message:req_a:3", "1000 error:-", "2000 done:-"));
}

TEST(PlanReplayTest, BatchesAreCutAtThePointAndByTypes) {
  auto rec = ParseRecording(
      "id: req_b:3\nevent: batch\n"
      "data: {\"type\":\"batch\",\"request_id\":\"req_b\",\"updates\":["
      "{\"type\":\"status\",\"seq\":1},{\"type\":\"progress\",\"seq\":2},"
      "{\"type\":\"status\",\"seq\":3}]}\n\n");
  ASSERT_TRUE(rec.ok()) << rec.status();
  ReplayRequest r = Fresh();
  r.after_seq = 1;
  auto types = ParseTypeList("progress");
  ASSERT_TRUE(types.ok());
  r.types = *types;
  auto plan = PlanReplay(&*rec, r, ReplayOptions{});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->events.size(), 2u);
  // Only seq 2 is left: the batch's id is its seq.
  EXPECT_EQ(plan->events[1].bytes,
            "id: req_b:2\nevent: batch\ndata: {\"type\":\"batch\","
            "\"request_id\":\"req_b\",\"updates\":[{\"type\":\"progress\","
            "\"seq\":2}]}\n\n");
}

TEST(ParseRequestTest, SpeedHasBounds) {
  EXPECT_EQ(*ParseSpeed({}, 3), 3);
  EXPECT_EQ(*ParseSpeed(Q({{"speed", "10"}}), 1), 10);
  EXPECT_EQ(*ParseSpeed(Q({{"speed", "0.5"}}), 1), 0.5);
  for (const char* bad :
       {"0", "-1", "abc", "", "nan", "inf", "1e9", "0.001", "10x", "1001"}) {
    auto s = ParseSpeed(Q({{"speed", bad}}), 1);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.status().message(), HasSubstr("speed")) << bad;
  }
}

TEST(ParseRequestTest, ChatStreamIsANewRunOrAResume) {
  const ReplayOptions options{.speed = 2};
  auto fresh = ParseChatRequest("", Q({{"message", "hello"}}), options);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->message, "hello");
  EXPECT_EQ(fresh->run_id, "");
  EXPECT_FALSE(fresh->after_seq.has_value());
  EXPECT_EQ(fresh->speed, 2);
  EXPECT_TRUE(fresh->types.all());

  auto by_run = ParseChatRequest(
      "", Q({{"message", "x"}, {"run", "req_a"}, {"speed", "10"}}), options);
  ASSERT_TRUE(by_run.ok());
  EXPECT_EQ(by_run->run_id, "req_a");
  EXPECT_EQ(by_run->speed, 10);

  auto resume = ParseChatRequest("req_a:7", {}, options);
  ASSERT_TRUE(resume.ok()) << resume.status();
  EXPECT_EQ(resume->run_id, "req_a");
  EXPECT_EQ(resume->after_seq, 7u);
  auto by_query =
      ParseChatRequest("", Q({{"last_event_id", "req_a:4"}}), options);
  ASSERT_TRUE(by_query.ok());
  EXPECT_EQ(by_query->after_seq, 4u);

  EXPECT_THAT(ParseChatRequest("", {}, options).status().message(),
              HasSubstr("message"));
  EXPECT_FALSE(ParseChatRequest("bad id", {}, options).ok());
  EXPECT_THAT(
      ParseChatRequest("", Q({{"message", "x"}, {"types", "nope"}}), options)
          .status()
          .message(),
      HasSubstr("nope"));
  EXPECT_FALSE(ParseChatRequest(
                   "", Q({{"message", "x"}, {"heartbeat", "loud"}}), options)
                   .ok());
  for (const char* name : {"batch_max", "batch_ms", "compress"}) {
    auto s = ParseChatRequest("", Q({{"message", "x"}, {name, "1"}}), options);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr(name));
  }
  auto hb = ParseChatRequest("", Q({{"message", "x"}, {"heartbeat", "event"}}),
                             options);
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->heartbeat, HeartbeatStyle::kEvent);
}

TEST(ParseRequestTest, APostBodyReadsAsTheQuery) {
  auto params = ChatBodyParams(
      R"({"message":"q","types":["progress","complete"],"speed":10,)"
      R"("heartbeat":"event","specialists":["X"],"compress":false})");
  ASSERT_TRUE(params.ok()) << params.status();
  auto r = ParseChatRequest("", *params, ReplayOptions{});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->message, "q");
  EXPECT_EQ(r->speed, 10);
  EXPECT_EQ(r->heartbeat, HeartbeatStyle::kEvent);
  EXPECT_THAT(r->types.Names(), ElementsAre("progress", "complete"));
  auto csv = ChatBodyParams(R"({"message":"q","types":"progress"})");
  ASSERT_TRUE(csv.ok());
  EXPECT_EQ(csv->find("types")->second, "progress");

  for (const char* bad : {"", "[]", "{", R"({"message":5})", R"({"types":[1]})",
                          R"({"types":{}})", R"({"speed":"fast"})"}) {
    EXPECT_EQ(ChatBodyParams(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  for (const char* refused :
       {R"({"message":"q","batch_max":5})",
        R"({"message":"q","compress":true})", R"({"message":"q","speed":0})"}) {
    auto p = ChatBodyParams(refused);
    ASSERT_TRUE(p.ok()) << refused;
    EXPECT_FALSE(ParseChatRequest("", *p, ReplayOptions{}).ok()) << refused;
  }
  EXPECT_TRUE(ParseChatRequest("", Q({{"message", "x"}, {"compress", "0"}}),
                               ReplayOptions{})
                  .ok());
}

TEST(ParseRequestTest, RunStreamFollowsTheGatewaysResumeRules) {
  const ReplayOptions options;
  auto all = ParseRunStreamRequest("req_a", "", {}, options);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->run_id, "req_a");
  EXPECT_FALSE(all->after_seq.has_value());
  auto after = ParseRunStreamRequest("req_a", "", Q({{"after", "3"}}), options);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->after_seq, 3u);
  // The header wins over after=, and must name the same run.
  auto header =
      ParseRunStreamRequest("req_a", "req_a:9", Q({{"after", "3"}}), options);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->after_seq, 9u);
  EXPECT_FALSE(ParseRunStreamRequest("req_a", "req_b:9", {}, options).ok());
  EXPECT_FALSE(ParseRunStreamRequest("bad id", "", {}, options).ok());
  EXPECT_FALSE(
      ParseRunStreamRequest("req_a", "", Q({{"after", "-1"}}), options).ok());
}

TEST(ReplayPacerTest, SendsWhatIsDueAndHeartbeatsWhileItWaits) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  std::vector<PlannedEvent> events = {{absl::ZeroDuration(), "a"},
                                      {absl::Seconds(1), "b"},
                                      {absl::Seconds(1), "c"},
                                      {absl::Seconds(35), "d"}};
  ReplayPacer pacer(events, t0, absl::Seconds(15), "H");
  ReplayPacer::Step s = pacer.Next(t0);
  EXPECT_EQ(s.bytes, "a");
  EXPECT_FALSE(s.finished);
  EXPECT_EQ(s.next, t0 + absl::Seconds(1));
  s = pacer.Next(t0 + absl::Seconds(1));
  EXPECT_EQ(s.bytes, "bc");
  EXPECT_EQ(s.events, 2);
  // The next event is at 35 s: a heartbeat at 15 s and 30 s before it.
  EXPECT_EQ(s.next, t0 + absl::Seconds(15));
  s = pacer.Next(t0 + absl::Seconds(15));
  EXPECT_EQ(s.bytes, "H");
  EXPECT_EQ(s.next, t0 + absl::Seconds(30));
  // Late: one heartbeat for the silence, and the grid holds.
  s = pacer.Next(t0 + absl::Seconds(34));
  EXPECT_EQ(s.bytes, "H");
  EXPECT_EQ(s.next, t0 + absl::Seconds(35));
  s = pacer.Next(t0 + absl::Seconds(35));
  EXPECT_EQ(s.bytes, "d");
  EXPECT_TRUE(s.finished);
}

TEST(ReplayPacerTest, NoHeartbeatAfterTheLastEvent) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  ReplayPacer pacer({{absl::Seconds(100), "x"}}, t0, absl::Seconds(15), "H");
  ReplayPacer::Step s = pacer.Next(t0 + absl::Seconds(200));
  EXPECT_EQ(s.bytes, "Hx");
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(HeartbeatBytes(HeartbeatStyle::kComment, "req_a"),
            ": heartbeat\n\n");
  EXPECT_THAT(HeartbeatBytes(HeartbeatStyle::kEvent, "req_a"),
              HasSubstr("event: heartbeat\ndata: {\"type\":\"heartbeat\","
                        "\"request_id\":\"req_a\"}"));
}

}  // namespace
}  // namespace agentstream::gateway::replay
