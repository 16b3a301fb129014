// The replay server (issue 12, point 6; docs/CLIENT.md, "Mock server") on a
// real recording: the ACC-1042 question asked through the whole path (every
// process real), its stream saved as `curl -N` saves it, then the `replay`
// binary serving that file, read with the repo's SSE client: the same events
// in the same order with the same ids, faster with `speed`, a resume
// mid-way by Last-Event-ID and by `after=` that repeats and skips nothing,
// and the gateway's answers to a resume at the end and to bad values.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/whole_path_fixture.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/subprocess.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kQuestion[] =
    "Assess the risk and AML compliance of account ACC-1042 over the last 6 "
    "months";

uint64_t SeqOf(const SseEvent& e) {
  uint64_t seq = 0;
  const size_t colon = e.id.rfind(':');
  EXPECT_NE(colon, std::string::npos) << e.id;
  EXPECT_TRUE(absl::SimpleAtoi(e.id.substr(colon + 1), &seq)) << e.id;
  return seq;
}

// An event as a comparable line: name, id (or -), data.
std::string Line(const SseEvent& e) {
  return absl::StrCat(e.event, " ", e.has_id ? e.id : "-", " ", e.data);
}

std::vector<std::string> Lines(const std::vector<SseEvent>& events,
                               size_t from = 0) {
  std::vector<std::string> out;
  for (size_t i = from; i < events.size(); ++i) out.push_back(Line(events[i]));
  return out;
}

absl::Duration Span(const SseResponse& r) {
  if (r.events.size() < 2) return absl::ZeroDuration();
  return r.events.back().received_at - r.events.front().received_at;
}

class ReplayTest : public WholePathTest {
 protected:
  // The live run, recorded once for the suite, and a replay server on it.
  static void SetUpTestSuite() {
    WholePathTest::SetUpTestSuite();
    if (topology_ == nullptr) return;
    live_ =
        new SseResponse(Ask(absl::StrCat("message=", UrlEncode(kQuestion))));
  }
  static void TearDownTestSuite() {
    delete live_;
    live_ = nullptr;
    WholePathTest::TearDownTestSuite();
  }

  void SetUp() override {
    WholePathTest::SetUp();
    ASSERT_NE(live_, nullptr);
    ASSERT_EQ(live_->status, 200) << live_->error;
    ASSERT_FALSE(live_->events.empty());
    ASSERT_EQ(live_->events.back().event, "done");
    ASSERT_EQ(live_->events.back().json.value("status", ""), "complete");
    rid_ = live_->events.front().json.value("request_id", "");
    ASSERT_FALSE(rid_.empty());
    auto dir = ScopedTempDir::Make("replay_it");
    ASSERT_TRUE(dir.ok()) << dir.status();
    scoped_dir_ = *std::move(dir);
    dir_ = scoped_dir_.path();
    // Every byte of the body as it came: what `curl -N ... > run.sse` saves.
    std::ofstream(absl::StrCat(dir_, "/acc1042.sse"), std::ios::binary)
        << live_->raw;
    StartReplay({});
  }

  // Starts `replay` on the recording with `extra` flags (replacing a
  // running one).
  void StartReplay(const std::vector<std::string>& extra) {
    replay_.reset();
    const std::string port_file = absl::StrCat(dir_, "/port");
    std::remove(port_file.c_str());
    std::vector<std::string> args = {"--dir", dir_,          "--port",
                                     "0",     "--port-file", port_file};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process =
        Subprocess::Start({.binary = "replay",
                           .args = args,
                           .log_path = absl::StrCat(dir_, "/replay.log"),
                           .env = {}});
    ASSERT_TRUE(process.ok()) << process.status();
    replay_ = *std::move(process);
    auto port = WaitForPortFile(port_file, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status() << replay_->ReadLog();
    port_ = *port;
  }

  void TearDown() override {
    if (HasFailure() && replay_ != nullptr) std::cerr << replay_->ReadLog();
    WholePathTest::TearDown();
  }

  SseResponse Get(const std::string& path,
                  const std::string& last_event_id = "") const {
    return Send(path, last_event_id, "");
  }
  // A POST when `body` is not empty.
  SseResponse Send(const std::string& path, const std::string& last_event_id,
                   const std::string& body) const {
    SseRequest req;
    if (!body.empty()) {
      req.method = "POST";
      req.body = body;
    }
    req.port = port_;
    req.path = path;
    req.timeout = absl::Seconds(60);
    if (!last_event_id.empty()) {
      req.headers.emplace("Last-Event-ID", last_event_id);
    }
    return StreamSse(req);
  }

  static inline SseResponse* live_ = nullptr;
  std::string rid_;
  // The recording, the replay server's port file and log (kept when the
  // test failed); removed after the server has stopped.
  ScopedTempDir scoped_dir_;
  std::string dir_;
  std::unique_ptr<Subprocess> replay_;
  int port_ = 0;
};

TEST_F(ReplayTest, ServesTheRecordedRunAsTheLiveStreamWasFasterWithSpeed) {
  const std::string path =
      absl::StrCat("/api/chat/stream?message=", UrlEncode(kQuestion));
  const SseResponse replayed = Get(path);
  ASSERT_EQ(replayed.status, 200) << replayed.error;
  EXPECT_EQ(replayed.Header("X-Request-Id"), rid_);
  EXPECT_THAT(replayed.Header("Content-Type"), HasSubstr("text/event-stream"));
  EXPECT_EQ(replayed.retry_ms, live_->retry_ms);
  // Same events, same order, same ids, same data.
  EXPECT_EQ(Lines(replayed.events), Lines(live_->events));

  const SseResponse fast = Get(absl::StrCat(path, "&speed=10"));
  ASSERT_EQ(fast.status, 200) << fast.error;
  EXPECT_EQ(Lines(fast.events), Lines(live_->events));
  // Also by run id, on the other endpoint.
  const SseResponse by_id = Get(absl::StrCat("/api/runs/", rid_, "/stream"));
  ASSERT_EQ(by_id.status, 200) << by_id.error;
  EXPECT_EQ(Lines(by_id.events), Lines(live_->events));

  // Figures, not assertions (timing varies with the machine).
  std::cout << "replay of ACC-1042 (" << live_->events.size()
            << " events): live " << absl::FormatDuration(Span(*live_))
            << ", replay speed=1 " << absl::FormatDuration(Span(replayed))
            << ", speed=10 " << absl::FormatDuration(Span(fast)) << "\n";
}

TEST_F(ReplayTest, ResumesMidWayWithNothingRepeatedOrSkipped) {
  // The live stream's updates; cut after the middle one.
  std::vector<size_t> updates;
  for (size_t i = 0; i < live_->events.size(); ++i) {
    if (live_->events[i].event == "message") updates.push_back(i);
  }
  ASSERT_GT(updates.size(), 4u);
  const size_t cut = updates[updates.size() / 2];
  const uint64_t after = SeqOf(live_->events[cut]);
  const std::string point = absl::StrCat(rid_, ":", after);
  // What the live stream sent after that update: copies of it included.
  const std::vector<std::string> rest = Lines(live_->events, cut + 1);

  // Last-Event-ID on the chat endpoint, as EventSource reconnects.
  const SseResponse resumed = Get("/api/chat/stream", point);
  ASSERT_EQ(resumed.status, 200) << resumed.error;
  ASSERT_FALSE(resumed.events.empty());
  const SseEvent& connected = resumed.events.front();
  EXPECT_EQ(connected.event, "connected");
  EXPECT_EQ(connected.id, point);
  EXPECT_EQ(connected.json.value("status", ""), "resumed");
  EXPECT_EQ(connected.json.value("after_seq", uint64_t{0}), after);
  EXPECT_EQ(Lines(resumed.events, 1), rest);

  // after= on the run's endpoint, faster.
  const SseResponse attached = Get(
      absl::StrCat("/api/runs/", rid_, "/stream?after=", after, "&speed=10"));
  ASSERT_EQ(attached.status, 200) << attached.error;
  EXPECT_EQ(Lines(attached.events, 1), rest);

  // The first half and the resume together: every seq once, in order.
  std::vector<uint64_t> seqs;
  for (size_t i = 0; i <= cut; ++i) {
    if (live_->events[i].event == "message") {
      seqs.push_back(SeqOf(live_->events[i]));
    }
  }
  for (const SseEvent& e : resumed.events) {
    if (e.event == "message") seqs.push_back(SeqOf(e));
  }
  ASSERT_EQ(seqs.size(), updates.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_EQ(seqs[i], SeqOf(live_->events[updates[i]])) << i;
  }
}

TEST_F(ReplayTest, AnswersLikeTheGatewayAtTheEndAndToBadValues) {
  const uint64_t last = SeqOf(live_->events[live_->events.size() - 2]);
  // Nothing after the last seq: 204, which stops EventSource.
  EXPECT_EQ(Get("/api/chat/stream", absl::StrCat(rid_, ":", last)).status, 204);
  EXPECT_EQ(
      Get(absl::StrCat("/api/runs/", rid_, "/stream?after=", last + 1)).status,
      400);
  // An unknown run: 404; resumed: the gateway's gap stream.
  EXPECT_EQ(Get("/api/runs/req_unknown/stream").status, 404);
  const SseResponse gap = Get("/api/chat/stream", "req_unknown:3");
  ASSERT_EQ(gap.status, 200);
  ASSERT_EQ(gap.events.size(), 3u);
  EXPECT_EQ(gap.events[1].json.value("code", ""), "gap");
  EXPECT_EQ(gap.events[2].json.value("status", ""), "failed");
  // Bad values: 400 JSON naming them.
  for (const char* query :
       {"message=x&speed=0", "message=x&speed=fast", "message=x&types=nope",
        "message=x&batch_max=5", "speed=2"}) {
    const SseResponse r = Get(absl::StrCat("/api/chat/stream?", query));
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(r.Header("Content-Type"), "application/json") << query;
    const nlohmann::json body = nlohmann::json::parse(r.raw, nullptr, false);
    EXPECT_EQ(body.value("error", ""), "invalid_argument") << r.raw;
  }
  // types on recorded data: only those kinds, errors and done still.
  const SseResponse only = Get(absl::StrCat(
      "/api/runs/", rid_, "/stream?types=complete&heartbeat=event&speed=10"));
  ASSERT_EQ(only.status, 200);
  ASSERT_GE(only.events.size(), 3u);
  for (size_t i = 1; i + 1 < only.events.size(); ++i) {
    const std::string type = only.events[i].json.value("type", "");
    EXPECT_TRUE(type == "complete" || type == "error" || type == "timeout")
        << type;
  }
  EXPECT_EQ(only.events[only.events.size() - 2].id,
            absl::StrCat(rid_, ":", last));
  EXPECT_EQ(only.events.back().event, "done");
}

TEST_F(ReplayTest, PostBoundsAndStopAreTheGateways) {
  // POST with a JSON body, as the library sends long questions.
  const SseResponse posted =
      Send("/api/chat/stream", "",
           nlohmann::json{{"message", kQuestion}, {"speed", 10}}.dump());
  ASSERT_EQ(posted.status, 200) << posted.error;
  EXPECT_EQ(Lines(posted.events), Lines(live_->events));

  // One stream at most; it plays 100 times slower, with heartbeat events.
  ASSERT_NO_FATAL_FAILURE(
      StartReplay({"--max-streams", "1", "--heartbeat-ms", "100"}));
  SseResponse held;
  absl::Notification opened;
  std::thread holder([&] {
    SseRequest req;
    req.port = port_;
    req.path =
        absl::StrCat("/api/runs/", rid_, "/stream?speed=0.01&heartbeat=event");
    req.timeout = absl::Seconds(60);
    req.stop = [&](const SseEvent& e, const SseResponse&) {
      if (e.event == "heartbeat" && !opened.HasBeenNotified()) opened.Notify();
      return false;
    };
    held = StreamSse(req);
    if (!opened.HasBeenNotified()) opened.Notify();
  });
  if (!opened.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    replay_->Signal(SIGTERM);
    holder.join();
    FAIL() << "no heartbeat within 30 s: " << held.error;
  }
  const SseResponse refused = Get(absl::StrCat("/api/runs/", rid_, "/stream"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.Header("Retry-After"), "2");
  // SIGTERM: the open stream ends with the gateway's retryable error, no
  // done, and the process exits 0.
  replay_->Signal(SIGTERM);
  holder.join();
  auto code = replay_->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  ASSERT_EQ(held.status, 200) << held.error;
  ASSERT_FALSE(held.events.empty());
  EXPECT_EQ(held.events.back().event, "error");
  EXPECT_EQ(held.events.back().json.value("code", ""), "unavailable");
  EXPECT_TRUE(held.events.back().json.value("retryable", false));
  for (const SseEvent& e : held.events) EXPECT_NE(e.event, "done");
}

}  // namespace
}  // namespace agentstream::testing
