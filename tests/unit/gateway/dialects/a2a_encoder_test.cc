#include "gateway/dialects/a2a_encoder.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/gateway/dialects/updates.h"

namespace agentstream::gateway::dialects {
namespace {

using namespace testing;  // NOLINT: the test's update builders.

struct Event {
  std::string id;  // The SSE `id:` field.
  Json data;       // The JSON-RPC response.
  bool comment = false;
};

// Splits SSE text into its events (LF framing, one data line each).
std::vector<Event> Parse(const std::string& text) {
  std::vector<Event> events;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find("\n\n", at);
    if (end == std::string::npos) end = text.size();
    const std::string block = text.substr(at, end - at);
    at = end + 2;
    Event e;
    size_t line_at = 0;
    while (line_at < block.size()) {
      size_t nl = block.find('\n', line_at);
      if (nl == std::string::npos) nl = block.size();
      const std::string line = block.substr(line_at, nl - line_at);
      line_at = nl + 1;
      if (line.rfind("id: ", 0) == 0) e.id = line.substr(4);
      if (line.rfind("data: ", 0) == 0) e.data = Json::parse(line.substr(6));
      if (line.rfind(":", 0) == 0) e.comment = true;
    }
    events.push_back(std::move(e));
  }
  return events;
}

// The whole stream of `updates`: Open, every update, Done.
std::string Stream(A2aEncoder& encoder, const std::vector<Update>& updates,
                   int* sent = nullptr) {
  std::string out = encoder.Open();
  int events = 0;
  for (const Update& u : updates) events += encoder.AppendUpdate(u, &out);
  out.append(encoder.Done(encoder.FinalStatusFromUpdates()));
  if (sent != nullptr) *sent = events;
  return out;
}

TEST(A2aEncoderTest, TwoSpecialistRunInV1) {
  A2aEncoder encoder("run_test", "ctx-1", A2aVersion::kV1, Json(7));
  int sent = 0;
  const std::vector<Event> events =
      Parse(Stream(encoder, TwoSpecialistRun(), &sent));
  ASSERT_EQ(static_cast<int>(events.size()), sent + 2);
  for (const Event& e : events) {
    EXPECT_EQ(e.data["jsonrpc"], "2.0");
    EXPECT_EQ(e.data["id"], 7);
    EXPECT_FALSE(e.data["result"].contains("kind"));
  }
  // Opening: the task, submitted, nothing yet.
  const Json& task = events.front().data["result"]["task"];
  EXPECT_EQ(task["id"], "run_test");
  EXPECT_EQ(task["contextId"], "ctx-1");
  EXPECT_EQ(task["status"]["state"], "TASK_STATE_SUBMITTED");
  EXPECT_FALSE(task.contains("artifacts"));
  EXPECT_EQ(events.front().id, "run_test:0");

  // Statuses: WORKING with an agent message; partials as artifact chunks.
  std::vector<std::string> texts;
  std::vector<Json> chunks;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    const Json& r = events[i].data["result"];
    if (r.contains("statusUpdate")) {
      const Json& s = r["statusUpdate"];
      EXPECT_EQ(s["taskId"], "run_test");
      EXPECT_EQ(s["contextId"], "ctx-1");
      EXPECT_EQ(s["status"]["state"], "TASK_STATE_WORKING");
      EXPECT_EQ(s["status"]["message"]["role"], "ROLE_AGENT");
      texts.push_back(s["status"]["message"]["parts"][0]["text"]);
    } else {
      ASSERT_TRUE(r.contains("artifactUpdate")) << r.dump();
      chunks.push_back(r["artifactUpdate"]);
    }
  }
  EXPECT_EQ(texts.front(), "Planning");
  EXPECT_NE(std::find(texts.begin(), texts.end(),
                      "DataAnalyst (display) 10% \xE2\x80\x94 Loading"),
            texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(),
                      "DataAnalyst (display) calls data_query"),
            texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(),
                      "Orchestrator: Two specialists are needed."),
            texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(),
                      "RiskAnalyst (display): Volatility is high."),
            texts.end());
  ASSERT_EQ(chunks.size(), 3u);  // Two partials and the answer.
  EXPECT_EQ(chunks[0]["artifact"]["artifactId"], "result-DataAnalyst");
  EXPECT_EQ(chunks[0]["artifact"]["parts"][0]["data"]["rows"], 3);
  EXPECT_EQ(chunks[0]["append"], false);
  EXPECT_EQ(chunks[1]["artifact"]["artifactId"], "result-RiskAnalyst");
  EXPECT_EQ(chunks[2]["artifact"]["artifactId"], "answer");
  EXPECT_EQ(chunks[2]["artifact"]["parts"][0]["text"],
            "Account ACC-1042 looks risky.");
  EXPECT_EQ(chunks[2]["lastChunk"], true);
  EXPECT_EQ(events[events.size() - 2].id, "run_test:17");

  // The end: COMPLETED, after which nothing.
  const Json& end = events.back().data["result"]["statusUpdate"];
  EXPECT_EQ(end["status"]["state"], "TASK_STATE_COMPLETED");
  EXPECT_FALSE(end.contains("final"));
  EXPECT_EQ(encoder.state(), A2aState::kCompleted);
}

TEST(A2aEncoderTest, TwoSpecialistRunInV03) {
  A2aEncoder encoder("run_test", "ctx-1", A2aVersion::kV03, Json("req-a"));
  const std::vector<Event> events = Parse(Stream(encoder, TwoSpecialistRun()));
  const Json& task = events.front().data["result"];
  EXPECT_EQ(events.front().data["id"], "req-a");
  EXPECT_EQ(task["kind"], "task");
  EXPECT_EQ(task["status"]["state"], "submitted");
  bool saw_artifact = false;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    const Json& r = events[i].data["result"];
    if (r["kind"] == "status-update") {
      EXPECT_EQ(r["final"], false);
      EXPECT_EQ(r["status"]["state"], "working");
      EXPECT_EQ(r["status"]["message"]["kind"], "message");
      EXPECT_EQ(r["status"]["message"]["role"], "agent");
      EXPECT_EQ(r["status"]["message"]["parts"][0]["kind"], "text");
    } else {
      ASSERT_EQ(r["kind"], "artifact-update") << r.dump();
      if (!saw_artifact) {
        EXPECT_EQ(r["artifact"]["parts"][0]["kind"], "data");
        saw_artifact = true;
      }
    }
  }
  const Json& end = events.back().data["result"];
  EXPECT_EQ(end["kind"], "status-update");
  EXPECT_EQ(end["status"]["state"], "completed");
  EXPECT_EQ(end["final"], true);
}

TEST(A2aEncoderTest, ChunksOfOneSpecialistAppendToItsArtifact) {
  A2aEncoder encoder("run_test", "run_test", A2aVersion::kV1, Json(1));
  std::string out;
  encoder.AppendUpdate(Partial(1, "DataAnalyst", {{"a", 1}}), &out);
  encoder.AppendUpdate(Partial(2, "DataAnalyst", {{"b", 2}}), &out);
  const std::vector<Event> events = Parse(out);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data["result"]["artifactUpdate"]["append"], false);
  EXPECT_EQ(events[1].data["result"]["artifactUpdate"]["append"], true);
  EXPECT_EQ(events[1].data["result"]["artifactUpdate"]["artifact"]["parts"],
            Json::parse(R"([{"data":{"b":2}}])"));
  // The task holds the artifact whole.
  const Json task = encoder.Task();
  EXPECT_EQ(task["artifacts"][0]["parts"],
            Json::parse(R"([{"data":{"a":1}},{"data":{"b":2}}])"));
}

TEST(A2aEncoderTest, ProgressThatMovesNothingIsSkipped) {
  A2aEncoder encoder("run_test", "run_test", A2aVersion::kV1, Json(1));
  std::string out;
  EXPECT_EQ(
      encoder.AppendUpdate(Progress(1, "DataAnalyst", 10, "Loading"), &out), 1);
  EXPECT_EQ(
      encoder.AppendUpdate(Progress(2, "DataAnalyst", 10, "Loading"), &out), 0);
  EXPECT_EQ(
      encoder.AppendUpdate(Progress(3, "DataAnalyst", 20, "Loading"), &out), 1);
  EXPECT_EQ(encoder.last_seq(), 3u);
}

TEST(A2aEncoderTest, SeededEncoderOpensWithTheStateSoFarAndGoesOn) {
  const std::vector<Update> run = TwoSpecialistRun();
  const std::vector<Update> first(run.begin(), run.begin() + 10);
  A2aEncoder encoder("run_test", "ctx", A2aVersion::kV1, Json(2),
                     /*resumed=*/true);
  encoder.Seed(first);
  EXPECT_EQ(encoder.last_seq(), 10u);
  std::string out = encoder.Open();
  const std::vector<Event> open = Parse(out);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].id, "run_test:10");
  const Json& task = open[0].data["result"]["task"];
  EXPECT_EQ(task["status"]["state"], "TASK_STATE_WORKING");
  ASSERT_EQ(task["artifacts"].size(), 1u);  // DataAnalyst's first chunk.
  EXPECT_EQ(task["artifacts"][0]["parts"][0]["data"]["query"], "totals");
  // An update already in the seed sends nothing; the next ones go on.
  out.clear();
  EXPECT_EQ(encoder.AppendUpdate(run[8], &out), 0);
  int sent = 0;
  for (size_t i = 10; i < run.size(); ++i) {
    sent += encoder.AppendUpdate(run[i], &out);
  }
  const std::vector<Event> rest = Parse(out);
  ASSERT_EQ(static_cast<int>(rest.size()), sent);
  // RiskAnalyst's first chunk is not an append; the answer comes once.
  int answers = 0;
  for (const Event& e : rest) {
    const Json& r = e.data["result"];
    if (!r.contains("artifactUpdate")) continue;
    const Json& a = r["artifactUpdate"];
    if (a["artifact"]["artifactId"] == "result-RiskAnalyst") {
      EXPECT_EQ(a["append"], false);
    }
    if (a["artifact"]["artifactId"] == "answer") ++answers;
  }
  EXPECT_EQ(answers, 1);
}

TEST(A2aEncoderTest, TaskOfAnEndedRun) {
  A2aEncoder encoder("run_test", "ctx", A2aVersion::kV1, Json(3));
  encoder.Seed(TwoSpecialistRun());
  const Json task = encoder.Task();
  EXPECT_EQ(task["status"]["state"], "TASK_STATE_COMPLETED");
  ASSERT_EQ(task["artifacts"].size(), 3u);
  EXPECT_EQ(task["artifacts"][2]["artifactId"], "answer");
  EXPECT_EQ(task["artifacts"][2]["parts"][0]["text"],
            "Account ACC-1042 looks risky.");
  EXPECT_EQ(task["metadata"]["runId"], "run_test");
}

TEST(A2aEncoderTest, CancelledAndFailedRunsEndSo) {
  {
    A2aEncoder encoder("run_test", "ctx", A2aVersion::kV1, Json(1));
    std::vector<Update> run = {
        Status(1, agentstream::v1::RUN_STATUS_DELEGATING, "Asking"),
        Status(2, agentstream::v1::RUN_STATUS_CANCELLED,
               "cancelled by request"),
        Complete(3, "", agentstream::v1::OUTCOME_CANCELLED)};
    const std::vector<Event> events = Parse(Stream(encoder, run));
    // Open, the delegating status, the end (no empty answer).
    ASSERT_EQ(events.size(), 3u);
    const Json& end = events.back().data["result"]["statusUpdate"]["status"];
    EXPECT_EQ(end["state"], "TASK_STATE_CANCELED");
    EXPECT_EQ(end["message"]["parts"][0]["text"], "cancelled by request");
    // Nor in the task: an empty answer is no artifact.
    EXPECT_FALSE(encoder.Task().contains("artifacts"));
  }
  {
    A2aEncoder encoder("run_test", "ctx", A2aVersion::kV1, Json(1));
    std::vector<Update> run = {
        Complete(1, "no answer", agentstream::v1::OUTCOME_FAILED)};
    const std::vector<Event> events = Parse(Stream(encoder, run));
    EXPECT_EQ(events.back().data["result"]["statusUpdate"]["status"]["state"],
              "TASK_STATE_FAILED");
    EXPECT_EQ(encoder.Task()["status"]["state"], "TASK_STATE_FAILED");
  }
}

TEST(A2aEncoderTest, FinalErrorGoesInTheFailedStatus) {
  A2aEncoder encoder("run_test", "ctx", A2aVersion::kV1, Json(1),
                     /*resumed=*/true);
  const std::string out = GapStream(encoder, absl::OutOfRangeError("evicted"));
  const std::vector<Event> events = Parse(out);
  ASSERT_EQ(events.size(), 2u);  // The task, the FAILED status.
  const Json& status = events[1].data["result"]["statusUpdate"]["status"];
  EXPECT_EQ(status["state"], "TASK_STATE_FAILED");
  const std::string text = status["message"]["parts"][0]["text"];
  EXPECT_EQ(text.rfind("gap: ", 0), 0u) << text;
}

TEST(A2aEncoderTest, NonFinalErrorAndHeartbeatAreComments) {
  A2aEncoder encoder("run_test", "ctx", A2aVersion::kV1, Json(1));
  const std::string error =
      encoder.Error("slow_consumer", "fell behind", true, /*final=*/false);
  EXPECT_EQ(error, ": slow_consumer: fell behind\n\n");
  EXPECT_EQ(encoder.Heartbeat(), ": heartbeat\n\n");
  // The task is still working in the client's eyes.
  EXPECT_EQ(encoder.state(), A2aState::kSubmitted);
}

TEST(A2aEncoderTest, CanceledMarkWins) {
  A2aEncoder encoder("run_test", "ctx", A2aVersion::kV03, Json(1));
  encoder.Seed({Status(1, agentstream::v1::RUN_STATUS_DELEGATING, "Asking")});
  encoder.MarkCanceled();
  EXPECT_EQ(encoder.Task()["status"]["state"], "canceled");
  EXPECT_EQ(encoder.Task()["kind"], "task");
}

}  // namespace
}  // namespace agentstream::gateway::dialects
