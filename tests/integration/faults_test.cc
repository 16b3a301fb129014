// Faults with the real binaries (docs/ORCHESTRATOR.md and docs/GATEWAY.md;
// issue 4 items 6 and 7), each shown by the events the client receives:
// - a Synthetic replica killed before its first update: retried on the other
//   replica, the run completes ok;
// - killed after its first update: an `error` update naming it (retryable),
//   the run goes on and completes partial, naming what is missing;
// - a specialist hanging past its soft and hard deadlines: `timeout`
//   continuing, then `timeout` abandoned;
// - the orchestrator killed mid-stream: `error` unavailable and a clean end
//   without `done`; a reconnect gets 503 with Retry-After;
// - the gateway restarted mid-run: the client resumes through the new one
//   with nothing lost, and the run was started once.
#include <signal.h>

#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

// Each test starts its own topology.
class FaultsTest : public TopologyTest {
 protected:
  FaultsTest() : TopologyTest(/*log_chars_on_failure=*/40000) {}
  // Which of the Synthetic replicas is working on a call now ("" if none).
  std::string BusyReplica() {
    for (const std::string name : {"synthetic", "synthetic#2"}) {
      if (SpecialistMetric(*topology_, name, "analyses_active") > 0) {
        return name;
      }
    }
    return "";
  }
  // Starts `path` in a thread; `trigger` is notified once `pred` holds for
  // an event.
  std::thread Stream(RawSseRequest req, RawSseResult* out,
                     absl::Notification* trigger,
                     std::function<bool(const SseEvent&)> pred) {
    req.on_event = [trigger, pred](const SseEvent& e) {
      if (!trigger->HasBeenNotified() && pred(e)) trigger->Notify();
      return RawSseAction{};
    };
    return std::thread([req, out, trigger] {
      *out = RawSse(req);
      if (!trigger->HasBeenNotified()) trigger->Notify();
    });
  }
};

int CountType(const std::vector<SseEvent>& msgs, const std::string& type,
              const std::string& specialist = "") {
  int n = 0;
  for (const SseEvent& e : msgs) {
    if (e.json.value("type", "") == type &&
        (specialist.empty() || e.json.value("specialist", "") == specialist)) {
      ++n;
    }
  }
  return n;
}

TEST_F(FaultsTest, ReplicaKilledBeforeFirstUpdateIsRetriedOnTheOther) {
  TopologyOptions options = SyntheticOnlyOptions();
  options.replicas = {{"synthetic", 2}};
  ASSERT_NO_FATAL_FAILURE(StartTopology(options));
  const std::string correlation = "kill-before-1";
  const RawSseRequest req = NewRunRequest(
      topology_->gateway_port(),
      SyntheticChatPath(
          {{"count", 50}, {"rate", 200}, {"start_delay_ms", 1500}}),
      correlation, absl::Seconds(60));
  RawSseResult r;
  absl::Notification started;
  std::thread reader = Stream(req, &r, &started, [](const SseEvent& e) {
    return e.json.value("type", "") == "specialist_activated";
  });
  const JoinOnExit join_reader(reader);
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  std::string busy;
  ASSERT_TRUE(WaitFor([&] { return !(busy = BusyReplica()).empty(); },
                      absl::Seconds(5)));
  const std::string other = busy == "synthetic" ? "synthetic#2" : "synthetic";
  const int other_port = topology_->specialist_port(other);
  ASSERT_TRUE(topology_->StopProcess(busy, SIGKILL).ok());
  const absl::Time killed = absl::Now();
  reader.join();
  std::cout << "[faults] killed " << busy << " during start_delay; run ended "
            << absl::ToDoubleMilliseconds(absl::Now() - killed) << " ms later"
            << std::endl;

  ASSERT_EQ(r.status, 200) << r.body;
  const auto msgs = MessagesOf(r);
  EXPECT_EQ(CheckDenseRun(msgs, r.RunId()), "");
  EXPECT_TRUE(r.EndedWithDone());
  EXPECT_EQ(CountType(msgs, "error"), 0) << "a retry is not an error";
  EXPECT_EQ(CountType(msgs, "partial_result", "Synthetic"), 50);
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(msgs.back().json.value("outcome", ""), "ok") << msgs.back().data;
  // Every Synthetic update came from the surviving replica (the SDK stamps
  // each with its instance, hostname:port).
  for (const SseEvent& e : msgs) {
    if (e.json.value("type", "") == "partial_result") {
      EXPECT_THAT(e.json.value("instance", ""),
                  ::testing::EndsWith(absl::StrCat(":", other_port)))
          << e.data;
    }
  }
  EXPECT_EQ(SpecialistMetric(*topology_, other, "analyses_started_total"), 1);
  EXPECT_EQ(
      OrchestratorMetric(*topology_,
                         "specialist_retries_total{specialist=\"Synthetic\"}"),
      1);
}

TEST_F(FaultsTest, ReplicaKilledAfterFirstUpdateIsNamedAndTheRunGoesOn) {
  TopologyOptions options;
  options.specialists = {"data_analyst", "synthetic"};
  options.db_path = SharedTestDatabase();
  options.replicas = {{"synthetic", 2}};
  ASSERT_NO_FATAL_FAILURE(StartTopology(options));
  const std::string correlation = "kill-after-1";
  const RawSseRequest req = NewRunRequest(
      topology_->gateway_port(),
      absl::StrCat(
          "/api/chat/stream?specialists=Synthetic,DataAnalyst&message=",
          UrlEncode("What are the totals for ACC-1042?"), "&options=",
          UrlEncode(nlohmann::json({{"count", 1000}, {"rate", 50}}).dump())),
      correlation, absl::Seconds(60));
  RawSseResult r;
  absl::Notification first;
  std::thread reader = Stream(req, &r, &first, [](const SseEvent& e) {
    return e.json.value("type", "") == "partial_result" &&
           e.json.value("specialist", "") == "Synthetic";
  });
  const JoinOnExit join_reader(reader);
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(20)));
  std::string busy;
  ASSERT_TRUE(WaitFor([&] { return !(busy = BusyReplica()).empty(); },
                      absl::Seconds(5)));
  ASSERT_TRUE(topology_->StopProcess(busy, SIGKILL).ok());
  const absl::Time killed = absl::Now();
  reader.join();
  std::cout << "[faults] killed " << busy << " after its first update; run "
            << "ended " << absl::ToDoubleMilliseconds(absl::Now() - killed)
            << " ms later" << std::endl;

  ASSERT_EQ(r.status, 200) << r.body;
  const auto msgs = MessagesOf(r);
  EXPECT_EQ(CheckDenseRun(msgs, r.RunId()), "");
  EXPECT_TRUE(r.EndedWithDone());
  // The error update names the specialist and says whether to retry.
  nlohmann::json error;
  for (const SseEvent& e : msgs) {
    if (e.json.value("type", "") == "error") error = e.json;
  }
  ASSERT_TRUE(error.is_object()) << "no error update";
  EXPECT_EQ(error.value("specialist", ""), "Synthetic") << error.dump();
  EXPECT_EQ(error.value("retryable", false), true) << error.dump();
  // Also sent as an `error` event for addEventListener('error') clients.
  bool error_event = false;
  for (const SseEvent& e : r.events) error_event |= e.event == "error";
  EXPECT_TRUE(error_event);
  // The other specialist finished; the run completed partial.
  EXPECT_GT(CountType(msgs, "partial_result", "DataAnalyst"), 0);
  EXPECT_EQ(CountType(msgs, "specialist_complete"), 2);
  for (const SseEvent& e : msgs) {
    if (e.json.value("type", "") == "specialist_complete") {
      const std::string who = e.json.value("specialist", "");
      EXPECT_EQ(e.json.value("outcome", ""),
                who == "Synthetic" ? "failed" : "ok")
          << e.data;
    }
  }
  const nlohmann::json complete = msgs.back().json;
  EXPECT_EQ(complete.value("outcome", ""), "partial") << complete.dump();
  // What is missing is named by the synthesis or the answer.
  std::string synthesis_and_answer = complete.dump();
  for (const SseEvent& e : msgs) {
    if (e.json.value("type", "") == "synthesis") synthesis_and_answer += e.data;
  }
  EXPECT_THAT(complete["result"].dump(), HasSubstr("Synthetic"));
  EXPECT_THAT(synthesis_and_answer, HasSubstr("missing"));
  EXPECT_GE(
      OrchestratorMetric(*topology_,
                         "specialist_errors_total{specialist=\"Synthetic\"}"),
      1);
}

TEST_F(FaultsTest, HangPastSoftThenHardDeadline) {
  TopologyOptions options = SyntheticOnlyOptions();
  options.extra_orchestrator_args = {
      "--specialist-deadline=Synthetic=600:1500"};
  ASSERT_NO_FATAL_FAILURE(StartTopology(options));
  const std::string correlation = "hang-1";
  const RawSseResult r = RawSse(NewRunRequest(
      topology_->gateway_port(),
      SyntheticChatPath({{"count", 100}, {"rate", 100}, {"stall_after", 5}}),
      correlation, absl::Seconds(30)));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto msgs = MessagesOf(r);
  EXPECT_EQ(CheckDenseRun(msgs, r.RunId()), "");
  EXPECT_TRUE(r.EndedWithDone());
  EXPECT_EQ(CountType(msgs, "partial_result", "Synthetic"), 5);

  int64_t activated_ns = 0, continuing_ns = 0, abandoned_ns = 0;
  size_t continuing_at = 0, abandoned_at = 0;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const auto& j = msgs[i].json;
    const std::string type = j.value("type", "");
    if (type == "specialist_activated") {
      activated_ns = j.value("emitted_at_ns", int64_t{0});
    } else if (type == "timeout") {
      EXPECT_EQ(j.value("specialist", ""), "Synthetic") << j.dump();
      if (j.value("action", "") == "continuing" && continuing_at == 0) {
        continuing_at = i;
        continuing_ns = j.value("emitted_at_ns", int64_t{0});
      } else if (j.value("action", "") == "abandoned" && abandoned_at == 0) {
        abandoned_at = i;
        abandoned_ns = j.value("emitted_at_ns", int64_t{0});
      }
    }
  }
  ASSERT_GT(continuing_at, 0u) << "no timeout (continuing)";
  ASSERT_GT(abandoned_at, 0u) << "no timeout (abandoned)";
  EXPECT_LT(continuing_at, abandoned_at);
  const double soft_ms = (continuing_ns - activated_ns) / 1e6;
  const double hard_ms = (abandoned_ns - activated_ns) / 1e6;
  std::cout << "[faults] deadlines 600:1500 ms: timeout continuing at "
            << soft_ms << " ms, abandoned at " << hard_ms
            << " ms after activation; complete outcome "
            << msgs.back().json.value("outcome", "") << std::endl;
  // Never before its deadline; how late is printed above, not asserted
  // (a loaded machine delays the sweep), beyond a generous sanity bound.
  EXPECT_GE(soft_ms, 550);
  EXPECT_GE(hard_ms, 1450);
  EXPECT_LE(hard_ms, 15000);
  EXPECT_EQ(CountType(msgs, "specialist_complete", "Synthetic"), 1);
  for (const SseEvent& e : msgs) {
    if (e.json.value("type", "") == "specialist_complete") {
      EXPECT_EQ(e.json.value("outcome", ""), "timed_out") << e.data;
    }
  }
  EXPECT_NE(msgs.back().json.value("outcome", ""), "ok");
  // The `timeout` events are also sent under their own name.
  int timeout_events = 0;
  for (const SseEvent& e : r.events) timeout_events += e.event == "timeout";
  EXPECT_EQ(timeout_events, 2);
  // The abandoned call was cancelled: the specialist stops.
  EXPECT_TRUE(WaitFor(
      [&] {
        return SpecialistMetric(*topology_, "synthetic", "analyses_active") ==
               0;
      },
      absl::Seconds(2)));
  EXPECT_EQ(OrchestratorMetric(*topology_,
                               "specialist_timeouts_total{specialist="
                               "\"Synthetic\",action=\"continuing\"}"),
            1);
  EXPECT_EQ(OrchestratorMetric(*topology_,
                               "specialist_timeouts_total{specialist="
                               "\"Synthetic\",action=\"abandoned\"}"),
            1);
}

TEST_F(FaultsTest, OrchestratorKilledMidStreamEndsCleanlyThen503) {
  ASSERT_NO_FATAL_FAILURE(StartTopology(SyntheticOnlyOptions()));
  const std::string correlation = "orch-dies-1";
  const RawSseRequest req =
      NewRunRequest(topology_->gateway_port(),
                    SyntheticChatPath({{"count", 3000}, {"rate", 100}}),
                    correlation, absl::Seconds(30));
  RawSseResult r;
  absl::Notification going;
  std::thread reader = Stream(req, &r, &going, [](const SseEvent& e) {
    return e.json.value("seq", 0) >= 30;
  });
  const JoinOnExit join_reader(reader);
  ASSERT_TRUE(going.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(topology_->StopProcess("orchestrator", SIGKILL).ok());
  const absl::Time killed = absl::Now();
  reader.join();
  const double end_ms = absl::ToDoubleMilliseconds(absl::Now() - killed);
  std::cout << "[faults] orchestrator SIGKILLed: stream ended " << end_ms
            << " ms later" << std::endl;

  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete) << "not a clean end of the response: " << r.error;
  EXPECT_FALSE(r.EndedWithDone());
  ASSERT_FALSE(r.events.empty());
  const SseEvent& last = r.events.back();
  EXPECT_EQ(last.event, "error") << last.data;
  EXPECT_EQ(last.json.value("code", ""), "unavailable") << last.data;
  EXPECT_EQ(last.json.value("retryable", false), true) << last.data;
  EXPECT_FALSE(last.has_id) << "an error event must not move the resume point";
  EXPECT_LT(end_ms, 5000);

  // EventSource reconnects: the orchestrator is gone, 503 + Retry-After.
  RawSseRequest again = req;
  again.on_event = nullptr;
  again.headers.emplace_back("Last-Event-ID", r.last_event_id);
  again.timeout = absl::Seconds(20);
  const RawSseResult retry = RawSse(again);
  EXPECT_EQ(retry.status, 503) << retry.body;
  EXPECT_FALSE(retry.Header("Retry-After").empty());
  EXPECT_EQ(GatewayMetric(*topology_, "upstream_failures_total"), 1);
}

TEST_F(FaultsTest, GatewayRestartedMidRunClientResumesThroughTheNewOne) {
  ASSERT_NO_FATAL_FAILURE(StartTopology(SyntheticOnlyOptions()));
  const std::string correlation = "gw-restart-1";
  const nlohmann::json synth = {{"count", 400}, {"rate", 100}};
  const RawSseRequest req =
      NewRunRequest(topology_->gateway_port(), SyntheticChatPath(synth),
                    correlation, absl::Seconds(30));
  RawSseResult first;
  absl::Notification going;
  std::thread reader = Stream(req, &first, &going, [](const SseEvent& e) {
    return e.json.value("seq", 0) >= 50;
  });
  const JoinOnExit join_reader(reader);
  ASSERT_TRUE(going.WaitForNotificationWithTimeout(absl::Seconds(20)));
  const absl::Time t0 = absl::Now();
  auto port = topology_->RestartGateway();
  ASSERT_TRUE(port.ok()) << port.status();
  const double restart_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  reader.join();

  ASSERT_EQ(first.status, 200);
  EXPECT_FALSE(first.EndedWithDone());
  ASSERT_FALSE(first.events.empty());
  EXPECT_EQ(first.events.back().event, "error") << first.events.back().data;
  EXPECT_EQ(first.events.back().json.value("code", ""), "unavailable");
  EXPECT_EQ(first.events.back().json.value("retryable", false), true);

  const RawSseResult rest = RawSse(
      ResumeRequest(*port, req.path, first.last_event_id, absl::Seconds(30)));
  ASSERT_EQ(rest.status, 200) << rest.body;
  const std::vector<SseEvent> joined = JoinedMessages(first, rest);
  std::cout << "[faults] gateway restarted in " << restart_ms
            << " ms; before=" << MessagesOf(first).size()
            << " after=" << MessagesOf(rest).size() << std::endl;
  EXPECT_EQ(CheckDenseRun(joined, first.RunId()), "");
  EXPECT_TRUE(rest.EndedWithDone());
  EXPECT_EQ(joined.back().json.value("outcome", ""), "ok");
  EXPECT_EQ(CountType(joined, "partial_result", "Synthetic"), 400);
  EXPECT_EQ(OrchestratorMetric(*topology_, "runs_started_total"), 1);
  EXPECT_EQ(SpecialistMetric(*topology_, "synthetic", "analyses_started_total"),
            1);
}

}  // namespace
}  // namespace agentstream::testing
