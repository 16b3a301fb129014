#include "gateway/cli/stream_follower.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::cli {
namespace {

using Json = nlohmann::json;
using Kind = NextStep::Kind;

// A run's first connection as the gateway writes it (docs/GATEWAY.md "The
// wire"), up to seq 2, cut before `complete`.
constexpr char kFirstConnection[] =
    "retry: 1500\n\n"
    "id: run_a:0\nevent: connected\n"
    "data: {\"type\":\"connected\",\"status\":\"connected\","
    "\"request_id\":\"run_a\"}\n\n"
    ": heartbeat\n\n"
    "id: run_a:1\nevent: message\n"
    "data: {\"type\":\"progress\",\"seq\":1,\"specialist\":\"A\","
    "\"progress\":40}\n\n"
    "id: run_a:2\r\nevent: message\r\n"
    "data: {\"type\":\"error\",\"seq\":2,\"specialist\":\"A\","
    "\"code\":\"x\",\"message\":\"m\"}\r\n\r\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"seq\":2,\"specialist\":\"A\","
    "\"code\":\"x\",\"message\":\"m\"}\n\n";

constexpr char kResumed[] =
    "retry: 1500\n\n"
    "id: run_a:2\nevent: connected\n"
    "data: {\"type\":\"connected\",\"status\":\"resumed\","
    "\"request_id\":\"run_a\",\"after_seq\":2}\n\n"
    "id: run_a:3\nevent: message\n"
    "data: {\"type\":\"complete\",\"seq\":3,\"outcome\":\"ok\","
    "\"result\":{\"answer\":\"yes\"}}\n\n"
    "event: done\n"
    "data: {\"type\":\"done\",\"status\":\"complete\"}\n\n";

std::vector<std::string> Feed(StreamFollower& f, std::string_view bytes) {
  std::vector<std::string> raws;
  f.OnBytes(bytes,
            [&](const Json&, std::string_view raw) { raws.emplace_back(raw); });
  return raws;
}

TEST(StreamFollowerTest, ResumesWithLastEventIdAfterTheServersRetry) {
  StreamFollower f{CliOptions()};
  f.OnResponse(200, "run_a", std::nullopt);
  std::vector<std::string> raws = Feed(f, kFirstConnection);
  // connected, progress, error; not the heartbeat or the error's copy.
  EXPECT_EQ(raws.size(), 3u);
  EXPECT_EQ(f.last_event_id(), "run_a:2");
  NextStep step = f.OnConnectionEnd("");
  EXPECT_EQ(step.kind, Kind::kReconnect);
  EXPECT_EQ(step.delay, absl::Milliseconds(1500));
  EXPECT_EQ(step.attempt, 1);
  EXPECT_EQ(f.ResumePath(), "/api/runs/run_a/stream");

  f.OnResponse(200, "run_a", std::nullopt);
  raws = Feed(f, kResumed);
  EXPECT_EQ(raws.size(), 3u);  // connected (resumed), complete, done.
  EXPECT_EQ(f.OnConnectionEnd("").kind, Kind::kFinished);
  EXPECT_EQ(f.view().resumes, 1);
  EXPECT_EQ(f.view().answer, "yes");
  EXPECT_EQ(f.ExitCode(), kExitComplete);
}

TEST(StreamFollowerTest, AnySplitOfTheBytesGivesTheSameUpdates) {
  const std::string wire = std::string(kFirstConnection);
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    StreamFollower f{CliOptions()};
    f.OnResponse(200, "", std::nullopt);
    std::vector<std::string> raws;
    size_t pos = 0;
    while (pos < wire.size()) {
      size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
      for (std::string& r : Feed(f, std::string_view(wire).substr(pos, n))) {
        raws.push_back(std::move(r));
      }
      pos += n;
    }
    ASSERT_EQ(raws.size(), 3u);
    EXPECT_EQ(f.view().run_id, "run_a");
    EXPECT_EQ(f.last_event_id(), "run_a:2");
  }
}

TEST(StreamFollowerTest, BacksOffAndGivesUpAfterTheBound) {
  CliOptions options;
  options.max_reconnects = 3;
  options.retry_delay = absl::Seconds(1);
  options.max_retry_delay = absl::Seconds(3);
  StreamFollower f(options);
  f.OnResponse(200, "run_a", std::nullopt);
  Feed(f, "id: run_a:0\ndata: {\"type\":\"connected\"}\n\n");
  std::vector<absl::Duration> delays;
  NextStep step = f.OnConnectionEnd("Connection");
  while (step.kind == Kind::kReconnect) {
    delays.push_back(step.delay);
    f.OnResponse(0, "", std::nullopt);  // Nothing answers.
    step = f.OnConnectionEnd("Connection");
  }
  EXPECT_THAT(delays, ::testing::ElementsAre(absl::Seconds(1), absl::Seconds(2),
                                             absl::Seconds(3)));
  EXPECT_EQ(step.kind, Kind::kGiveUp);
  EXPECT_THAT(step.reason, ::testing::HasSubstr("3 reconnects"));
  EXPECT_EQ(f.ExitCode(), kExitFailed);
}

TEST(StreamFollowerTest, A503sRetryAfterIsHonoured) {
  StreamFollower f{CliOptions()};
  f.OnResponse(200, "run_a", std::nullopt);
  Feed(f, "retry: 500\n\n");
  EXPECT_EQ(f.OnConnectionEnd("").kind, Kind::kReconnect);
  f.OnResponse(503, "req_x", 4);
  NextStep step = f.OnConnectionEnd("", "{\"error\":\"unavailable\"}");
  EXPECT_EQ(step.kind, Kind::kReconnect);
  EXPECT_EQ(step.delay, absl::Seconds(4));
  EXPECT_EQ(f.view().run_id, "run_a");  // Not the 503's correlation id.
}

TEST(StreamFollowerTest, WhatCannotBeResumed) {
  {  // No run yet: a retried POST would start a second run.
    StreamFollower f{CliOptions()};
    f.OnResponse(0, "", std::nullopt);
    NextStep step = f.OnConnectionEnd("Could not establish connection");
    EXPECT_EQ(step.kind, Kind::kGiveUp);
    EXPECT_THAT(step.reason, ::testing::HasSubstr("no answer"));
  }
  {  // A refusal does not change by asking again.
    StreamFollower f{CliOptions()};
    f.OnResponse(401, "req_1", std::nullopt);
    Feed(f, "data: {\"type\":\"connected\"}\n\n");  // Not a stream: ignored.
    NextStep step = f.OnConnectionEnd("", "{\"error\":\"unauthorized\"}");
    EXPECT_EQ(step.kind, Kind::kGiveUp);
    EXPECT_THAT(step.reason, ::testing::HasSubstr("HTTP 401"));
    EXPECT_TRUE(f.view().run_id.empty());
  }
  {  // 204: the run ended at our Last-Event-ID; its `complete` had come.
    StreamFollower f{CliOptions()};
    f.OnResponse(200, "run_a", std::nullopt);
    Feed(f,
         "id: run_a:1\ndata: {\"type\":\"complete\",\"seq\":1,"
         "\"outcome\":\"cancelled\"}\n\n");
    EXPECT_EQ(f.OnConnectionEnd("").kind, Kind::kReconnect);
    f.OnResponse(204, "run_a", std::nullopt);
    EXPECT_EQ(f.OnConnectionEnd("").kind, Kind::kFinished);
    EXPECT_EQ(f.ExitCode(), kExitCancelled);
  }
  {  // A gap: `done failed` ends it.
    StreamFollower f{CliOptions()};
    f.OnResponse(200, "run_a", std::nullopt);
    Feed(f,
         "event: error\ndata: {\"type\":\"error\",\"code\":\"gap\"}\n\n"
         "event: done\ndata: {\"type\":\"done\",\"status\":\"failed\"}\n\n");
    EXPECT_EQ(f.OnConnectionEnd("").kind, Kind::kFinished);
    EXPECT_EQ(f.ExitCode(), kExitFailed);
  }
}

}  // namespace
}  // namespace agentstream::cli
