// Second observers with the real binaries: the client that started a run
// and an observer attached through /api/runs/{id}/stream receive identical
// updates (same ids, same bytes, same order); an observer attaching late
// gets the replay of what it missed, then the live rest; one attaching with
// ?after=K gets exactly the updates after K. And a resume point the log no
// longer holds (evicted, or past the TTL) is an explicit `gap` error.
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"

namespace agentstream::testing {
namespace {

class ObserversTest : public TopologyTest {
 protected:
  void SetUp() override { StartTopology(SyntheticOnlyOptions()); }
  // Attaches to `rid` from the start, retrying while the run is not known
  // yet (the starter's request may still be on its way).
  RawSseResult Observe(
      const std::string& rid, const std::string& query = "",
      std::function<RawSseAction(const SseEvent&)> on_event = nullptr) {
    RawSseResult r;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    do {
      RawSseRequest req;
      req.port = topology_->gateway_port();
      req.path = RunStreamPath(rid, query);
      req.timeout = absl::Seconds(60);
      req.on_event = on_event;
      r = RawSse(req);
      if (r.status != 404) break;
      absl::SleepFor(absl::Milliseconds(10));
    } while (absl::Now() < deadline);
    return r;
  }
};

std::vector<std::pair<std::string, std::string>> IdsAndData(
    const std::vector<SseEvent>& messages) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const SseEvent& e : messages) out.emplace_back(e.id, e.data);
  return out;
}

TEST_F(ObserversTest, ObserversSeeIdenticalSequencesAndLateOneGetsReplay) {
  // The run's id is the gateway's, learnt from `connected`.
  std::string rid;
  const int port = topology_->gateway_port();
  // About 2.5 s of updates: long enough to attach in the middle.
  const nlohmann::json options = {{"count", 500}, {"size", 100}, {"rate", 200}};

  absl::Notification a_started, a_third;
  std::atomic<int64_t> a_seen{0};
  RawSseResult a;
  std::thread starter([&] {
    RawSseRequest req = NewRunRequest(port, SyntheticChatPath(options),
                                      "observed-run-1", absl::Seconds(60));
    req.on_event = [&](const SseEvent& e) {
      if (e.event == "connected" && !a_started.HasBeenNotified()) {
        rid = e.json.value("request_id", "");
        a_started.Notify();
      }
      if (e.event == "message") {
        const int64_t n = ++a_seen;
        if (n == 250 && !a_third.HasBeenNotified()) a_third.Notify();
      }
      return RawSseAction{};
    };
    a = RawSse(req);
    if (!a_started.HasBeenNotified()) a_started.Notify();
    if (!a_third.HasBeenNotified()) a_third.Notify();
  });
  const JoinOnExit join_starter(starter);

  ASSERT_TRUE(a_started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  RawSseResult b;
  std::thread second([&] { b = Observe(rid); });
  const JoinOnExit join_second(second);

  ASSERT_TRUE(a_third.WaitForNotificationWithTimeout(absl::Seconds(30)));
  const int64_t seen_at_attach = a_seen.load();
  const absl::Time c_attach = absl::Now();
  RawSseResult c = Observe(rid);
  const absl::Time c_end = absl::Now();

  // An observer from a point: exactly what follows it.
  RawSseResult d = Observe(rid, "?after=100");
  starter.join();
  second.join();

  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  ASSERT_EQ(c.status, 200) << c.body;
  ASSERT_EQ(d.status, 200) << d.body;
  const auto am = MessagesOf(a), bm = MessagesOf(b), cm = MessagesOf(c),
             dm = MessagesOf(d);
  EXPECT_EQ(CheckDenseRun(am, rid), "");
  EXPECT_TRUE(a.EndedWithDone());
  EXPECT_TRUE(b.EndedWithDone());
  EXPECT_TRUE(c.EndedWithDone());
  EXPECT_TRUE(d.EndedWithDone());
  // Same updates, same bytes, same order.
  EXPECT_EQ(IdsAndData(am), IdsAndData(bm));
  EXPECT_EQ(IdsAndData(am), IdsAndData(cm));
  EXPECT_EQ(a.events.back().data, b.events.back().data);
  EXPECT_EQ(a.events.back().data, c.events.back().data);
  ASSERT_GT(am.size(), 300u);

  // The late observer attached in the middle of the run: it got the replay
  // of the first part at once, then the rest live (updates emitted after it
  // attached).
  ASSERT_GE(cm.size(), static_cast<size_t>(seen_at_attach));
  const int64_t c_attach_ns = absl::ToUnixNanos(c_attach);
  int64_t live = 0;
  for (const SseEvent& e : cm) {
    if (e.json.value("emitted_at_ns", int64_t{0}) > c_attach_ns) ++live;
  }
  const absl::Duration replay_time =
      cm[static_cast<size_t>(seen_at_attach) - 1].received_at - c_attach;
  std::cout << "[observers] updates=" << am.size()
            << " late_observer_attached_after=" << seen_at_attach
            << " replayed_in_ms=" << absl::ToDoubleMilliseconds(replay_time)
            << " live_after_attach=" << live << " late_observer_total_ms="
            << absl::ToDoubleMilliseconds(c_end - c_attach) << std::endl;
  EXPECT_GT(live, 50) << "the late observer saw no live part";
  EXPECT_LT(replay_time, absl::Seconds(1)) << "replay was not immediate";

  // ?after=100: seq 101..N, then done.
  ASSERT_FALSE(dm.empty());
  EXPECT_EQ(dm.front().json.value("seq", 0), 101);
  EXPECT_EQ(IdsAndData(dm),
            IdsAndData(std::vector<SseEvent>(am.begin() + 100, am.end())));
  ASSERT_FALSE(d.events.empty());
  EXPECT_EQ(d.events.front().event, "connected");
  EXPECT_EQ(d.events.front().id, rid + ":100");

  // Runs started: one, whatever the number of observers.
  EXPECT_EQ(OrchestratorMetric(*topology_, "runs_started_total"), 1);
}

TEST_F(ObserversTest, UnknownRunIs404AndBadAfterIs400) {
  const int port = topology_->gateway_port();
  EXPECT_EQ(HttpCall(port, "GET", RunStreamPath("no-such-run")).status, 404);
  EXPECT_EQ(
      HttpCall(port, "GET", RunStreamPath("no-such-run", "?after=x")).status,
      400);
}

// A resume point the log no longer holds is an explicit `gap`, never a
// silent hole: evicted (--max-log-events) while the run is kept, or the
// whole log gone after its TTL (a tombstone remembers the last seq).
class GapTest : public TopologyTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_orchestrator_args = {"--max-log-events=50",
                                       "--log-ttl-ms=300"};
    StartTopology(options);
  }
  RawSseResult Resume(const std::string& last_event_id) {
    return RawSse(
        ResumeRequest(topology_->gateway_port(),
                      SyntheticChatPath({{"count", 300}, {"rate", 0}}),
                      last_event_id, absl::Seconds(20)));
  }
  void ExpectGap(const RawSseResult& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(MessagesOf(r).empty()) << "updates after a gap";
    ASSERT_GE(r.events.size(), 3u) << r.body;
    EXPECT_EQ(r.events[0].event, "connected");
    const SseEvent& error = r.events[r.events.size() - 2];
    EXPECT_EQ(error.event, "error") << error.data;
    EXPECT_EQ(error.json.value("code", ""), "gap") << error.data;
    EXPECT_EQ(error.json.value("retryable", true), false) << error.data;
    EXPECT_FALSE(error.json.value("message", "").empty());
    EXPECT_EQ(r.events.back().event, "done");
    EXPECT_EQ(r.events.back().json.value("status", ""), "failed");
  }
};

TEST_F(GapTest, EvictedOrExpiredResumePointIsAnExplicitGap) {
  // Paced, so that this live follower never lags 50 updates behind.
  const RawSseResult whole =
      RawSse(NewRunRequest(topology_->gateway_port(),
                           SyntheticChatPath({{"count", 300}, {"rate", 500}}),
                           "gap-run-1", absl::Seconds(20)));
  ASSERT_EQ(whole.status, 200);
  const std::string rid = whole.RunId();
  const auto msgs = MessagesOf(whole);
  ASSERT_EQ(CheckDenseRun(msgs, rid), "");
  const uint64_t last = msgs.back().json.value("seq", uint64_t{0});
  ASSERT_GT(last, 100u);

  // Within the TTL the log holds only the last 50 updates.
  {
    const RawSseResult tail = Resume(absl::StrCat(rid, ":", last - 10));
    EXPECT_EQ(tail.status, 200);
    EXPECT_EQ(MessagesOf(tail).size(), 10u) << tail.body.substr(0, 500);
    ExpectGap(Resume(absl::StrCat(rid, ":5")));
  }
  // After the TTL: the tombstone answers the end (204) and a gap before.
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_EQ(Resume(absl::StrCat(rid, ":", last)).status, 204);
  ExpectGap(Resume(absl::StrCat(rid, ":5")));
  std::cout << "[gap] run of " << last << " updates, log of 50: resume at 5 "
            << "-> gap; after the TTL: resume at the end -> 204, at 5 -> gap"
            << std::endl;
  EXPECT_GE(OrchestratorMetric(*topology_, "gaps_total"), 2);
  EXPECT_GE(GatewayMetric(*topology_, "gaps_total"), 2);
}

}  // namespace
}  // namespace agentstream::testing
