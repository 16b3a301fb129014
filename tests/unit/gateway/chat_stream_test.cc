#include "gateway/chat_stream.h"

#include <deque>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/sse_client.h"
#include "tests/unit/gateway/fake_orchestrator.h"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A RunStream driven by a script of Wait() results; a timeout advances the
// fake clock by the requested wait, so no test sleeps.
class ScriptedRun final : public RunStream {
 public:
  struct Step {
    Next next;
    std::vector<Update> updates;
  };
  ScriptedRun(FakeClock& clock, std::deque<Step> steps, absl::Status final)
      : clock_(clock), steps_(std::move(steps)), final_(std::move(final)) {}

  Opening WaitOpening(absl::Duration) override { return Opening::kAccepted; }
  Next Wait(absl::Duration timeout, std::vector<Update>* out) override {
    waits.push_back(timeout);
    if (steps_.empty()) {
      clock_.Advance(timeout);
      return Next::kTimeout;
    }
    Step step = std::move(steps_.front());
    steps_.pop_front();
    if (step.next == Next::kTimeout) clock_.Advance(timeout);
    for (auto& u : step.updates) out->push_back(std::move(u));
    return step.next;
  }
  absl::Status status() const override { return final_; }
  void Cancel() override { ++cancels; }
  bool WaitFinished(absl::Duration) override { return finished_by_itself; }

  int cancels = 0;
  bool finished_by_itself = true;
  std::vector<absl::Duration> waits;

 private:
  FakeClock& clock_;
  std::deque<Step> steps_;
  const absl::Status final_;
};

class RecordingSink final : public EventSink {
 public:
  bool Write(std::string_view bytes) override {
    writes.emplace_back(bytes);
    return writable;
  }
  bool PeerGone() override { return ++peer_checks > gone_after_checks; }
  std::string All() const {
    std::string all;
    for (const auto& w : writes) all += w;
    return all;
  }
  std::vector<std::string> writes;
  bool writable = true;
  int peer_checks = 0;
  int gone_after_checks = 1 << 30;
};

std::vector<agentstream::testing::SseEvent> Parse(const std::string& wire) {
  std::vector<agentstream::testing::SseEvent> events;
  agentstream::testing::SseParser parser;
  parser.Feed(wire, [&](agentstream::testing::SseEvent e) {
    events.push_back(std::move(e));
  });
  return events;
}

std::vector<std::string> Names(
    const std::vector<agentstream::testing::SseEvent>& events) {
  std::vector<std::string> names;
  for (const auto& e : events) names.push_back(e.event);
  return names;
}

using Next = RunStream::Next;
using testing::CompleteUpdate;
using testing::ErrorUpdate;
using testing::ProgressUpdate;
using testing::StatusUpdate;
using testing::TimeoutUpdate;

class ChatStreamTest : public ::testing::Test {
 protected:
  ChatStreamResult Drive(ScriptedRun& run, std::vector<Update> first = {},
                         HeartbeatStyle style = HeartbeatStyle::kComment) {
    StreamFormat format;
    format.heartbeat = style;
    ChatStreamEncoder encoder("rid", format, 1500);
    return RunChatStream(run, encoder, std::move(first), sink_, clock_,
                         options_, stop_);
  }
  // Drives a run that sends a status update (seq 1) and then finishes with
  // the call's status `final`.
  ChatStreamResult DriveRunEndingWith(absl::Status final) {
    ScriptedRun run(clock_, {{Next::kFinished, {}}}, std::move(final));
    return Drive(run, {StatusUpdate(1, "x")});
  }
  // The stream counts into metrics_.
  void CountMetrics() { options_.metrics = &metrics_; }
  // The events written so far.
  std::vector<agentstream::testing::SseEvent> Events() const {
    return Parse(sink_.All());
  }

  FakeClock clock_;
  RecordingSink sink_;
  ChatStreamOptions options_{.heartbeat_interval = absl::Seconds(15),
                             .poll_interval = absl::Milliseconds(200)};
  std::atomic<bool> stop_{false};
  GatewayMetrics metrics_;
};

TEST_F(ChatStreamTest, FullRunShape) {
  ScriptedRun run(
      clock_,
      {{Next::kUpdates,
        {ProgressUpdate(2, "DataAnalyst", 10, "a"),
         ErrorUpdate(3, "unavailable", "x"), TimeoutUpdate(4, "slow")}},
       {Next::kUpdates, {CompleteUpdate(5, "ok")}}},
      absl::OkStatus());
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "analyzing")});
  EXPECT_EQ(result.end, StreamEnd::kDone);
  EXPECT_EQ(result.done, DoneStatus::kComplete);
  EXPECT_EQ(run.cancels, 0);
  const std::string wire = sink_.All();
  EXPECT_EQ(wire.rfind("retry: 1500\n\nid: rid:0\nevent: connected\n", 0), 0u)
      << wire;
  auto events = Parse(wire);
  EXPECT_THAT(Names(events),
              ElementsAre("connected", "message", "message", "message", "error",
                          "message", "timeout", "message", "done"));
  EXPECT_EQ(result.events_sent, 9);
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.has_id ? e.id : "-");
  EXPECT_THAT(ids, ElementsAre("rid:0", "rid:1", "rid:2", "rid:3", "-", "rid:4",
                               "-", "rid:5", "-"));
  // The named copy carries the same payload as its message.
  EXPECT_EQ(events[4].data, events[3].data);
  EXPECT_EQ(events[4].json["type"], "error");
  EXPECT_EQ(events[8].json,
            nlohmann::json::parse(
                R"({"type":"done","status":"complete","request_id":"rid"})"));
  for (const auto& e : events) EXPECT_EQ(e.json["request_id"], "rid");
}

// Selective updates: only the types asked for, with the run's own ids (so
// seqs have holes), errors and timeouts always; `done` still says how the
// run ended although its `complete` update was not sent.
TEST_F(ChatStreamTest, OnlyTheSelectedTypesGoWithTheRunsIds) {
  ScriptedRun run(
      clock_,
      {{Next::kUpdates,
        {ProgressUpdate(2, "DataAnalyst", 10, "a"),
         ErrorUpdate(3, "unavailable", "x"), TimeoutUpdate(4, "slow"),
         ProgressUpdate(5, "DataAnalyst", 90, "b")}},
       {Next::kUpdates, {CompleteUpdate(6, "ok")}}},
      absl::OkStatus());
  auto types = ParseTypeList("progress");
  ASSERT_TRUE(types.ok());
  StreamFormat format;
  format.types = *types;
  ChatStreamEncoder encoder("rid", format, 1500);
  const ChatStreamResult result =
      RunChatStream(run, encoder, {StatusUpdate(1, "analyzing")}, sink_, clock_,
                    options_, stop_);
  EXPECT_EQ(result.end, StreamEnd::kDone);
  EXPECT_EQ(result.done, DoneStatus::kComplete);
  auto events = Parse(sink_.All());
  EXPECT_THAT(Names(events),
              ElementsAre("connected", "message", "message", "error", "message",
                          "timeout", "message", "done"));
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.has_id ? e.id : "-");
  EXPECT_THAT(ids, ElementsAre("rid:0", "rid:2", "rid:3", "-", "rid:4", "-",
                               "rid:5", "-"));
  EXPECT_EQ(result.events_sent, 8);
  EXPECT_EQ(encoder.last_seq(), 6u);
}

// Batching: updates go as `event: batch` once batch_max wait, or the
// oldest waited batch_ms (on the fake clock), or an error, timeout or
// complete is among them; the batch's id is its last seq; named copies
// follow their batch; the batch goes before `done`.
TEST_F(ChatStreamTest, BatchesByCountTimeAndEnding) {
  ScriptedRun run(
      clock_,
      {// Nothing more for a while: the first update goes alone once it
       // waited 50 ms (on the fake clock).
       {Next::kTimeout, {}},
       // Three together: a batch of 2 goes, the third waits.
       {Next::kUpdates,
        {ProgressUpdate(2, "A", 10, "a"), ProgressUpdate(3, "A", 20, "b"),
         ProgressUpdate(4, "A", 30, "c")}},
       // An error flushes the batch at once, and its copy follows.
       {Next::kUpdates, {ErrorUpdate(5, "unavailable", "x")}},
       // complete flushes, then done.
       {Next::kUpdates,
        {ProgressUpdate(6, "A", 50, "e"), CompleteUpdate(7, "ok")}}},
      absl::OkStatus());
  StreamFormat format;
  format.batch = {.max_updates = 2, .max_wait = absl::Milliseconds(50)};
  options_.poll_interval = absl::Milliseconds(80);
  ChatStreamEncoder encoder("rid", format, 1500);
  const ChatStreamResult result =
      RunChatStream(run, encoder, {StatusUpdate(1, "analyzing")}, sink_, clock_,
                    options_, stop_);
  EXPECT_EQ(result.end, StreamEnd::kDone);
  EXPECT_EQ(result.done, DoneStatus::kComplete);
  auto events = Parse(sink_.All());
  EXPECT_THAT(Names(events), ElementsAre("connected", "batch", "batch", "batch",
                                         "error", "batch", "done"));
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.has_id ? e.id : "-");
  EXPECT_THAT(
      ids, ElementsAre("rid:0", "rid:1", "rid:3", "rid:5", "-", "rid:7", "-"));
  std::vector<std::vector<uint64_t>> seqs;
  for (const auto& e : events) {
    if (e.event != "batch") continue;
    EXPECT_EQ(e.json["type"], "batch");
    EXPECT_EQ(e.json["request_id"], "rid");
    seqs.emplace_back();
    for (const auto& u : e.json["updates"]) seqs.back().push_back(u["seq"]);
  }
  EXPECT_THAT(seqs, ElementsAre(ElementsAre(1), ElementsAre(2, 3),
                                ElementsAre(4, 5), ElementsAre(6, 7)));
  EXPECT_EQ(events[4].json["type"], "error");
  EXPECT_EQ(events[4].json["seq"], 5);
  // The lone first update went on its timer, in a write of its own, after
  // waiting its 50 ms.
  ASSERT_GE(sink_.writes.size(), 2u);
  EXPECT_THAT(Names(Parse(sink_.writes[0])), ElementsAre("connected"));
  EXPECT_THAT(Names(Parse(sink_.writes[1])), ElementsAre("batch"));
  EXPECT_EQ(run.waits.front(), absl::Milliseconds(50));
}

TEST_F(ChatStreamTest, APendingBatchGoesBeforeTheStreamEnds) {
  ScriptedRun run(clock_, {{Next::kFinished, {}}},
                  absl::UnavailableError("lost"));
  StreamFormat format;
  format.batch = {.max_updates = 10, .max_wait = absl::Seconds(5)};
  ChatStreamEncoder encoder("rid", format, 1500);
  RunChatStream(run, encoder, {StatusUpdate(1, "a"), StatusUpdate(2, "b")},
                sink_, clock_, options_, stop_);
  auto events = Parse(sink_.All());
  EXPECT_THAT(Names(events), ElementsAre("connected", "batch", "error"));
  EXPECT_EQ(events[1].id, "rid:2");
  EXPECT_EQ(events[2].json["code"], "unavailable");
}

TEST_F(ChatStreamTest, QueuedUpdatesGoOutInOneWrite) {
  ScriptedRun run(
      clock_,
      {{Next::kUpdates,
        {ProgressUpdate(2, "A", 1, "a"), ProgressUpdate(3, "A", 2, "b"),
         ProgressUpdate(4, "A", 3, "c")}},
       {Next::kFinished, {}}},
      absl::OkStatus());
  Drive(run, {StatusUpdate(1, "x")});
  ASSERT_GE(sink_.writes.size(), 2u);
  // connected + first update, then the three queued ones together.
  EXPECT_EQ(Parse(sink_.writes[0]).size(), 2u);
  EXPECT_EQ(Parse(sink_.writes[1]).size(), 3u);
}

TEST_F(ChatStreamTest, HeartbeatsFollowTheIntervalWithoutIds) {
  options_.heartbeat_interval = absl::Milliseconds(100);
  options_.poll_interval = absl::Milliseconds(40);
  // 25 idle waits (40, 40, 20, ...) cover 500 ms, then the run ends.
  std::deque<ScriptedRun::Step> steps;
  for (int i = 0; i < 15; ++i) steps.push_back({Next::kTimeout, {}});
  steps.push_back({Next::kFinished, {}});
  ScriptedRun run(clock_, std::move(steps), absl::OkStatus());
  const absl::Time start = clock_.Now();
  Drive(run);
  const absl::Duration idle = clock_.Now() - start;
  const std::string wire = sink_.All();
  int heartbeats = 0;
  for (size_t p = wire.find(": heartbeat\n\n"); p != std::string::npos;
       p = wire.find(": heartbeat\n\n", p + 1)) {
    ++heartbeats;
  }
  EXPECT_EQ(heartbeats, static_cast<int>(idle / absl::Milliseconds(100)))
      << wire;
  EXPECT_GE(heartbeats, 5);
  for (absl::Duration w : run.waits) EXPECT_LE(w, absl::Milliseconds(40));
}

TEST_F(ChatStreamTest, EventHeartbeats) {
  options_.heartbeat_interval = absl::Milliseconds(100);
  ScriptedRun run(
      clock_,
      {{Next::kTimeout, {}}, {Next::kTimeout, {}}, {Next::kFinished, {}}},
      absl::OkStatus());
  Drive(run, {}, HeartbeatStyle::kEvent);
  auto events = Events();
  EXPECT_THAT(Names(events),
              ElementsAre("connected", "heartbeat", "heartbeat", "done"));
  EXPECT_FALSE(events[1].has_id);
  EXPECT_FALSE(events[2].has_id);
  EXPECT_EQ(events[1].json["type"], "heartbeat");
}

TEST_F(ChatStreamTest, ClientGoneWhileIdleCancelsTheRun) {
  sink_.gone_after_checks = 2;
  ScriptedRun run(clock_, {}, absl::OkStatus());
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "x")});
  EXPECT_EQ(result.end, StreamEnd::kClientGone);
  EXPECT_EQ(run.cancels, 1);
  EXPECT_EQ(sink_.peer_checks, 3);
  // Each check came after at most one poll interval of waiting.
  EXPECT_LE(clock_.Now() - absl::FromUnixSeconds(1700000000),
            absl::Milliseconds(600));
}

TEST_F(ChatStreamTest, ClientGoneWhileBusyIsNoticedToo) {
  sink_.gone_after_checks = 0;
  std::deque<ScriptedRun::Step> steps;
  for (int i = 0; i < 100; ++i) {
    steps.push_back({Next::kUpdates, {ProgressUpdate(i + 2, "A", 1, "a")}});
  }
  ScriptedRun run(clock_, std::move(steps), absl::OkStatus());
  // Every Wait returns updates at once; time moves only by this advance.
  options_.poll_interval = absl::ZeroDuration();
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "x")});
  EXPECT_EQ(result.end, StreamEnd::kClientGone);
  EXPECT_EQ(run.cancels, 1);
}

TEST_F(ChatStreamTest, FailedWriteCancelsTheRun) {
  sink_.writable = false;
  ScriptedRun run(clock_, {}, absl::OkStatus());
  EXPECT_EQ(Drive(run).end, StreamEnd::kClientGone);
  EXPECT_EQ(run.cancels, 1);
}

TEST_F(ChatStreamTest, OrchestratorLostIsARetryableErrorWithoutDone) {
  CountMetrics();
  const ChatStreamResult result =
      DriveRunEndingWith(absl::UnavailableError("connection reset"));
  EXPECT_EQ(result.end, StreamEnd::kReconnect);
  EXPECT_EQ(result.ending, CallEnding::kUpstreamLost);
  auto events = Events();
  // No `done`: EventSource reconnects by itself with Last-Event-ID rid:1.
  EXPECT_THAT(Names(events), ElementsAre("connected", "message", "error"));
  EXPECT_FALSE(events[2].has_id);
  EXPECT_EQ(events[2].json["code"], "unavailable");
  EXPECT_EQ(events[2].json["retryable"], true);
  EXPECT_EQ(events[2].json["source"], "gateway");
  EXPECT_THAT(events[2].json["message"].get<std::string>(),
              HasSubstr("connection reset"));
  EXPECT_THAT(events[2].json["message"].get<std::string>(),
              HasSubstr("Last-Event-ID: rid:1"));
  EXPECT_EQ(metrics_.upstream_failures_total.load(), 1);
  EXPECT_EQ(metrics_.events_sent_total.load(), 3);
}

TEST_F(ChatStreamTest, SlowConsumerCutOffIsRetryableWithoutDone) {
  ScriptedRun run(
      clock_,
      {{Next::kUpdates, {ProgressUpdate(2, "A", 5, "a")}},
       {Next::kFinished, {}}},
      absl::ResourceExhaustedError("slow_consumer: 1100 updates behind"));
  CountMetrics();
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "x")});
  EXPECT_EQ(result.end, StreamEnd::kReconnect);
  auto events = Events();
  EXPECT_THAT(Names(events),
              ElementsAre("connected", "message", "message", "error"));
  EXPECT_EQ(events[3].json["code"], "slow_consumer");
  EXPECT_EQ(events[3].json["retryable"], true);
  EXPECT_THAT(events[3].json["message"].get<std::string>(),
              HasSubstr("Last-Event-ID: rid:2"));
  EXPECT_EQ(metrics_.slow_consumer_cutoffs_total.load(), 1);
  EXPECT_EQ(run.cancels, 0);
}

TEST_F(ChatStreamTest, GapMidStreamIsAnErrorThenFailedDone) {
  CountMetrics();
  const ChatStreamResult result =
      DriveRunEndingWith(absl::OutOfRangeError("gap: seq 2 was evicted"));
  EXPECT_EQ(result.end, StreamEnd::kDone);
  EXPECT_EQ(result.done, DoneStatus::kFailed);
  auto events = Events();
  EXPECT_THAT(Names(events),
              ElementsAre("connected", "message", "error", "done"));
  EXPECT_EQ(events[2].json["code"], "gap");
  EXPECT_EQ(events[2].json["retryable"], false);
  EXPECT_THAT(events[2].json["message"].get<std::string>(),
              HasSubstr("start the question again"));
  EXPECT_THAT(events[2].json["message"].get<std::string>(),
              HasSubstr("gap: seq 2 was evicted"));
  EXPECT_EQ(events[3].json["status"], "failed");
  EXPECT_EQ(metrics_.gaps_total.load(), 1);
}

TEST_F(ChatStreamTest, OtherFailuresAreAnErrorThenFailedDone) {
  const ChatStreamResult result =
      DriveRunEndingWith(absl::InternalError("merge broke"));
  EXPECT_EQ(result.end, StreamEnd::kDone);
  EXPECT_EQ(result.done, DoneStatus::kFailed);
  auto events = Events();
  EXPECT_THAT(Names(events),
              ElementsAre("connected", "message", "error", "done"));
  EXPECT_EQ(events[2].json["code"], "internal");
  EXPECT_EQ(events[2].json["retryable"], false);
  EXPECT_EQ(events[3].json["status"], "failed");
}

TEST(ClassifyCallEndingTest, EveryCode) {
  EXPECT_EQ(ClassifyCallEnding(absl::OkStatus(), false), CallEnding::kFinal);
  EXPECT_EQ(ClassifyCallEnding(absl::ResourceExhaustedError("slow_consumer: x"),
                               false),
            CallEnding::kSlowConsumer);
  EXPECT_EQ(ClassifyCallEnding(absl::ResourceExhaustedError("other"), false),
            CallEnding::kFailed);
  EXPECT_EQ(ClassifyCallEnding(absl::OutOfRangeError("gap: x"), false),
            CallEnding::kGap);
  EXPECT_EQ(ClassifyCallEnding(absl::NotFoundError("x"), true),
            CallEnding::kGap);
  EXPECT_EQ(ClassifyCallEnding(absl::NotFoundError("x"), false),
            CallEnding::kFailed);
  EXPECT_EQ(ClassifyCallEnding(absl::UnavailableError("x"), false),
            CallEnding::kUpstreamLost);
  EXPECT_EQ(ClassifyCallEnding(absl::DeadlineExceededError("x"), false),
            CallEnding::kUpstreamLost);
  EXPECT_EQ(ClassifyCallEnding(absl::CancelledError("x"), false),
            CallEnding::kCancelled);
  EXPECT_EQ(ClassifyCallEnding(absl::InternalError("x"), false),
            CallEnding::kFailed);
}

TEST_F(ChatStreamTest, ResumedStreamConnectsAtItsResumePoint) {
  ScriptedRun run(clock_, {{Next::kUpdates, {CompleteUpdate(8, "ok")}}},
                  absl::OkStatus());
  ChatStreamEncoder encoder("rid", StreamFormat(), 1500, uint64_t{6});
  RunChatStream(run, encoder, {TimeoutUpdate(7, "slow")}, sink_, clock_,
                options_, stop_);
  auto events = Events();
  ASSERT_THAT(Names(events), ElementsAre("connected", "message", "timeout",
                                         "message", "done"));
  EXPECT_EQ(events[0].id, "rid:6");
  EXPECT_EQ(events[0].json,
            nlohmann::json::parse(R"({"type":"connected","status":"resumed",)"
                                  R"("request_id":"rid","after_seq":6})"));
  EXPECT_EQ(events[1].id, "rid:7");
  EXPECT_EQ(events[3].id, "rid:8");
}

TEST_F(ChatStreamTest, ResumeThatEndsAtOnceKeepsTheResumePoint) {
  // Lost again before anything new came: the hint names the same point.
  ScriptedRun run(clock_, {{Next::kFinished, {}}},
                  absl::UnavailableError("gone"));
  ChatStreamEncoder encoder("rid", StreamFormat(), 1500, uint64_t{42});
  EXPECT_EQ(RunChatStream(run, encoder, {}, sink_, clock_, options_, stop_).end,
            StreamEnd::kReconnect);
  auto events = Events();
  ASSERT_THAT(Names(events), ElementsAre("connected", "error"));
  EXPECT_EQ(events[0].id, "rid:42");
  EXPECT_THAT(events[1].json["message"].get<std::string>(),
              HasSubstr("rid:42"));
}

TEST(GapStreamTest, ConnectedGapErrorAndFailedDone) {
  ChatStreamEncoder encoder("rid", StreamFormat(), 2000, uint64_t{3});
  const std::string wire =
      GapStream(encoder, absl::NotFoundError("no such run"));
  auto events = Parse(wire);
  ASSERT_THAT(Names(events), ElementsAre("connected", "error", "done"));
  EXPECT_EQ(wire.rfind("retry: 2000\n\nid: rid:3\n", 0), 0u) << wire;
  EXPECT_FALSE(events[1].has_id);
  EXPECT_EQ(events[1].json["type"], "error");
  EXPECT_EQ(events[1].json["request_id"], "rid");
  EXPECT_EQ(events[1].json["code"], "gap");
  EXPECT_EQ(events[1].json["retryable"], false);
  EXPECT_EQ(events[1].json["source"], "gateway");
  EXPECT_THAT(events[1].json["message"].get<std::string>(),
              HasSubstr("start the question again"));
  EXPECT_EQ(events[2].json["status"], "failed");
}

TEST_F(ChatStreamTest, EndWithoutCompleteIsFailed) {
  EXPECT_EQ(DriveRunEndingWith(absl::OkStatus()).done, DoneStatus::kFailed);
}

TEST_F(ChatStreamTest, CancelledRunSaysCancelled) {
  Update cancelled = StatusUpdate(2, "cancelled");
  cancelled.mutable_status()->set_status(agentstream::v1::RUN_STATUS_CANCELLED);
  ScriptedRun run(clock_,
                  {{Next::kUpdates, {cancelled}}, {Next::kFinished, {}}},
                  absl::OkStatus());
  EXPECT_EQ(Drive(run, {StatusUpdate(1, "x")}).done, DoneStatus::kCancelled);
}

TEST_F(ChatStreamTest, CompleteEndsTheStreamAndCancelsALingeringCall) {
  ScriptedRun run(clock_, {{Next::kUpdates, {CompleteUpdate(2, "ok")}}},
                  absl::OkStatus());
  run.finished_by_itself = false;
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "x")});
  EXPECT_EQ(result.done, DoneStatus::kComplete);
  EXPECT_EQ(run.cancels, 1);
  EXPECT_EQ(Names(Events()).back(), "done");
}

TEST_F(ChatStreamTest, StopEndsWithARetryableErrorWithoutDone) {
  stop_ = true;
  ScriptedRun run(clock_, {}, absl::OkStatus());
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "x")});
  EXPECT_EQ(result.end, StreamEnd::kStopped);
  EXPECT_EQ(run.cancels, 1);  // The call ends; the run is the orchestrator's.
  auto events = Events();
  EXPECT_THAT(Names(events), ElementsAre("connected", "message", "error"));
  EXPECT_EQ(events[2].json["code"], "unavailable");
  EXPECT_EQ(events[2].json["retryable"], true);
  EXPECT_THAT(events[2].json["message"].get<std::string>(),
              HasSubstr("the gateway is shutting down; reconnect"));
}

TEST_F(ChatStreamTest, HeartbeatsAndEventsAreCountedLive) {
  options_.heartbeat_interval = absl::Milliseconds(100);
  CountMetrics();
  ScriptedRun run(clock_,
                  {{Next::kTimeout, {}},
                   {Next::kTimeout, {}},
                   {Next::kTimeout, {}},
                   {Next::kTimeout, {}},
                   {Next::kUpdates, {CompleteUpdate(2, "ok")}}},
                  absl::OkStatus());
  const ChatStreamResult result = Drive(run, {StatusUpdate(1, "x")});
  EXPECT_EQ(result.heartbeats_sent, 4);
  EXPECT_EQ(metrics_.heartbeats_sent_total.load(), 4);
  EXPECT_EQ(metrics_.events_sent_total.load(), result.events_sent);
  EXPECT_EQ(result.events_sent, 4);  // connected, 2 messages, done.
}

TEST_F(ChatStreamTest, PayloadRequestIdIsTheStreams) {
  Update u = StatusUpdate(1, "line1\nline2");
  u.set_request_id("other");
  ScriptedRun run(clock_, {{Next::kFinished, {}}}, absl::OkStatus());
  Drive(run, {u});
  auto events = Events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1].json["request_id"], "rid");
  EXPECT_EQ(events[1].json["message"], "line1\nline2");
}

}  // namespace
}  // namespace agentstream::gateway
