#include "gateway/dialects/ai_sdk_encoder.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/unit/gateway/dialects/updates.h"

namespace agentstream::gateway::dialects {
namespace {

using namespace testing;  // NOLINT: the test's update builders.

struct Event {
  std::string id;
  std::string data;  // "[DONE]" or a chunk's JSON.
  Json chunk;        // Null for [DONE].
};

std::string Type(const Event& e) {
  return e.chunk.is_null() ? "" : e.chunk.value("type", "");
}

// SSE text -> events (LF only; comments skipped).
std::vector<Event> Parse(const std::string& sse) {
  std::vector<Event> events;
  for (absl::string_view block : absl::StrSplit(sse, "\n\n")) {
    Event e;
    bool any = false;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::StartsWith(line, "id: ")) e.id = std::string(line.substr(4));
      if (absl::StartsWith(line, "data: ")) {
        e.data = std::string(line.substr(6));
        any = true;
      }
    }
    if (!any) continue;
    if (e.data != "[DONE]") e.chunk = Json::parse(e.data);
    events.push_back(std::move(e));
  }
  return events;
}

// The AI SDK client's processUIMessageStream in miniature (docs/PROTOCOLS.md,
// "AI SDK UI message stream"): what the chunks build, failing the test on
// what the real client rejects (an unknown type, a delta or end without its
// start, an output for an unknown tool call, a required field missing).
struct Message {
  std::string id;
  Json parts = Json::array();
  std::map<std::string, size_t> open_text, open_reasoning;
  std::string finish_reason;
  bool aborted = false;
  bool done = false;
  std::vector<std::string> errors;

  void Apply(const Event& e) {
    ASSERT_FALSE(done) << "after [DONE]: " << e.data;
    if (e.data == "[DONE]") {
      done = true;
      return;
    }
    const Json& c = e.chunk;
    const std::string type = c.at("type");
    if (type == "start") {
      id = c.at("messageId");
    } else if (type == "start-step") {
      parts.push_back({{"type", "step-start"}});
    } else if (type == "finish-step") {
      open_text.clear();
      open_reasoning.clear();
    } else if (type == "text-start" || type == "reasoning-start") {
      auto& open = type == "text-start" ? open_text : open_reasoning;
      open[c.at("id")] = parts.size();
      parts.push_back({{"type", type == "text-start" ? "text" : "reasoning"},
                       {"text", ""},
                       {"state", "streaming"}});
    } else if (type == "text-delta" || type == "reasoning-delta") {
      auto& open = type == "text-delta" ? open_text : open_reasoning;
      ASSERT_TRUE(open.contains(c.at("id"))) << e.data;
      Json& part = parts[open[c.at("id")]];
      part["text"] =
          part["text"].get<std::string>() + c.at("delta").get<std::string>();
    } else if (type == "text-end" || type == "reasoning-end") {
      auto& open = type == "text-end" ? open_text : open_reasoning;
      ASSERT_TRUE(open.contains(c.at("id"))) << e.data;
      parts[open[c.at("id")]]["state"] = "done";
      open.erase(c.at("id"));
    } else if (type == "tool-input-available") {
      ASSERT_TRUE(c.contains("input")) << e.data;
      ASSERT_EQ(Tool(c.at("toolCallId")), nullptr) << e.data;
      parts.push_back({{"type", "tool-" + c.at("toolName").get<std::string>()},
                       {"toolCallId", c.at("toolCallId")},
                       {"state", "input-available"},
                       {"input", c.at("input")}});
    } else if (type == "tool-output-available") {
      Json* tool = Tool(c.at("toolCallId"));
      ASSERT_NE(tool, nullptr) << e.data;
      ASSERT_TRUE(c.contains("output")) << e.data;
      (*tool)["state"] = "output-available";
      (*tool)["output"] = c.at("output");
    } else if (absl::StartsWith(type, "data-")) {
      ASSERT_TRUE(c.contains("data")) << e.data;
      for (Json& part : parts) {
        if (c.contains("id") && part["type"] == type && part["id"] == c["id"]) {
          part["data"] = c["data"];
          return;
        }
      }
      parts.push_back(
          {{"type", type}, {"id", c.at("id")}, {"data", c["data"]}});
    } else if (type == "finish") {
      finish_reason = c.value("finishReason", "");
    } else if (type == "abort") {
      aborted = true;
    } else if (type == "error") {
      errors.push_back(c.at("errorText"));
    } else {
      FAIL() << "a chunk type the client rejects: " << e.data;
    }
  }
  Json* Tool(const std::string& id) {
    for (Json& part : parts) {
      if (part.value("toolCallId", "") == id) return &part;
    }
    return nullptr;
  }
  std::vector<Json> PartsOf(const std::string& type) const {
    std::vector<Json> out;
    for (const Json& part : parts) {
      if (part["type"] == type) out.push_back(part);
    }
    return out;
  }
};

std::string Stream(AiSdkEncoder& encoder, const std::vector<Update>& updates,
                   DoneStatus status = DoneStatus::kComplete) {
  std::string out = encoder.Open();
  for (const Update& u : updates) encoder.AppendUpdate(u, &out);
  out += encoder.Done(status);
  return out;
}

Message Consume(const std::string& sse, Message m = {}) {
  for (const Event& e : Parse(sse)) {
    m.Apply(e);
    if (::testing::Test::HasFatalFailure()) break;
  }
  return m;
}

TEST(AiSdkEncoderTest, TwoSpecialistRunBuildsOneMessage) {
  uint64_t finished_at = 0;
  bool opened = false;
  AiSdkEncoder encoder("run_test", std::nullopt,
                       {.opened = [&] { opened = true; },
                        .finished = [&](uint64_t seq) { finished_at = seq; }});
  const std::string sse = Stream(encoder, TwoSpecialistRun());
  EXPECT_TRUE(opened);
  EXPECT_EQ(finished_at, 17u);
  const Message m = Consume(sse);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(m.id, "msg_run_test");
  EXPECT_TRUE(m.done);
  EXPECT_EQ(m.finish_reason, "stop");
  EXPECT_TRUE(m.errors.empty());

  const auto texts = m.PartsOf("text");
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0]["text"], "Account ACC-1042 looks risky.");
  EXPECT_EQ(texts[0]["state"], "done");

  // One data part per specialist, reconciled in place, at its last state.
  const auto specialists = m.PartsOf("data-specialist");
  ASSERT_EQ(specialists.size(), 2u);
  EXPECT_EQ(specialists[0]["id"], "DataAnalyst");
  EXPECT_EQ(specialists[1]["id"], "RiskAnalyst");
  for (const Json& s : specialists) {
    EXPECT_EQ(s["data"]["progress"], 100) << s.dump();
    EXPECT_EQ(s["data"]["outcome"], "ok") << s.dump();
    EXPECT_EQ(s["data"]["displayName"],
              s["id"].get<std::string>() + " (display)");
  }
  EXPECT_EQ(specialists[0]["data"]["toolCalls"], 1);

  const auto results = m.PartsOf("data-result");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]["data"], Json({{"query", "totals"}, {"rows", 3}}));
  EXPECT_EQ(results[1]["data"]["score"], 0.7);

  const auto status = m.PartsOf("data-status");
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0]["id"], "status");
  EXPECT_EQ(status[0]["data"]["status"], "complete");
  EXPECT_EQ(status[0]["data"]["outcome"], "ok");
  EXPECT_EQ(status[0]["data"]["runId"], "run_test");

  const auto reasoning = m.PartsOf("reasoning");
  ASSERT_EQ(reasoning.size(), 2u);
  EXPECT_EQ(reasoning[0]["text"], "Two specialists are needed.");
  EXPECT_EQ(reasoning[1]["text"], "Volatility is high.");

  // The tool call and its output: the specialist's next partial result.
  const auto tools = m.PartsOf("tool-data_query");
  ASSERT_EQ(tools.size(), 1u);
  EXPECT_EQ(tools[0]["toolCallId"], "run_test-7");
  EXPECT_EQ(tools[0]["state"], "output-available");
  EXPECT_EQ(tools[0]["input"]["sql"], "SELECT 1");
  EXPECT_EQ(tools[0]["output"]["rows"], 3);
}

TEST(AiSdkEncoderTest, IdsAreOurResumePoints) {
  AiSdkEncoder encoder("run_test");
  const std::vector<Event> events = Parse(Stream(encoder, TwoSpecialistRun()));
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events[0].chunk["type"], "start");
  EXPECT_EQ(events[0].id, "run_test:0");
  EXPECT_EQ(events[1].chunk["type"], "start-step");
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(events.back().id, "run_test:17");
  EXPECT_EQ(events[events.size() - 2].chunk["type"], "finish");
  // Ids never go back, and an update's events carry <seq-1> but its last
  // one: the thinking at seq 2 is reasoning-start, -delta, -end.
  std::vector<std::string> thinking_ids;
  uint64_t last = 0;
  for (const Event& e : events) {
    ASSERT_TRUE(absl::StartsWith(e.id, "run_test:")) << e.data;
    const uint64_t seq = std::stoull(e.id.substr(9));
    EXPECT_GE(seq, last) << e.data;
    last = seq;
    if (!e.chunk.is_null() && e.chunk.value("id", "") == "r2") {
      thinking_ids.push_back(e.id);
    }
  }
  EXPECT_EQ(thinking_ids, (std::vector<std::string>{"run_test:1", "run_test:1",
                                                    "run_test:2"}));
}

TEST(AiSdkEncoderTest, OnlyTheClientsChunkTypes) {
  const std::set<std::string> known = {"start",
                                       "finish",
                                       "abort",
                                       "start-step",
                                       "finish-step",
                                       "text-start",
                                       "text-delta",
                                       "text-end",
                                       "reasoning-start",
                                       "reasoning-delta",
                                       "reasoning-end",
                                       "error",
                                       "tool-input-available",
                                       "tool-output-available"};
  AiSdkEncoder encoder("run_test");
  std::vector<Update> updates = TwoSpecialistRun();
  updates.insert(updates.end() - 1, Error(17, "RiskAnalyst", "internal", "x"));
  updates.back().set_seq(18);
  for (const Event& e : Parse(Stream(encoder, updates))) {
    if (e.chunk.is_null()) continue;
    const std::string type = e.chunk["type"];
    EXPECT_TRUE(known.contains(type) || type == "data-status" ||
                type == "data-specialist" || type == "data-result")
        << type;
  }
}

TEST(AiSdkEncoderTest, ToolCallsNeverHang) {
  AiSdkEncoder encoder("run_x");
  std::vector<Update> updates = {
      Activated(1, "DataAnalyst"),
      Tool(2, "DataAnalyst", "data_query", {{"sql", "a"}}),
      Tool(3, "DataAnalyst", "data_query", {{"sql", "b"}}),
      Partial(4, "DataAnalyst", {{"rows", 1}}),  // The oldest call's output.
      SpecialistDone(5, "DataAnalyst", agentstream::v1::OUTCOME_FAILED),
      Activated(6, "RiskAnalyst"),
      Tool(7, "RiskAnalyst", "score", {{"k", 1}}),
  };
  // The run is cancelled with RiskAnalyst's call open.
  const Message m = Consume(Stream(encoder, updates, DoneStatus::kCancelled));
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_TRUE(m.aborted);
  EXPECT_TRUE(m.done);
  const auto queries = m.PartsOf("tool-data_query");
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(queries[0]["output"], Json({{"rows", 1}}));
  EXPECT_EQ(queries[1]["output"]["result"], nullptr);
  EXPECT_TRUE(absl::StrContains(
      queries[1]["output"]["reason"].get<std::string>(), "failed"));
  const auto scores = m.PartsOf("tool-score");
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0]["state"], "output-available");
  EXPECT_EQ(scores[0]["output"]["reason"], "the run was cancelled");
}

TEST(AiSdkEncoderTest, FailedRunsFinishWithError) {
  AiSdkEncoder encoder("run_f");
  std::string out = encoder.Open();
  encoder.AppendUpdate(Complete(1, "", agentstream::v1::OUTCOME_FAILED), &out);
  out += encoder.Done(encoder.FinalStatusFromUpdates());
  Message m = Consume(out);
  EXPECT_EQ(m.finish_reason, "error");
  EXPECT_TRUE(m.PartsOf("text").empty());

  // A final error from the gateway: `error`, then the ending.
  AiSdkEncoder gap("run_g", 5);
  m = Consume(GapStream(gap, absl::OutOfRangeError("gap: trimmed")));
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(m.errors[0], "gap: ")) << m.errors[0];
  EXPECT_EQ(m.finish_reason, "error");
  EXPECT_TRUE(m.done);
}

TEST(AiSdkEncoderTest, NonFinalErrorsAndHeartbeatsAreComments) {
  AiSdkEncoder encoder("run_x");
  EXPECT_EQ(encoder.Heartbeat(), ": heartbeat\n\n");
  const std::string e =
      encoder.Error("slow_consumer", "reconnect", true, /*final=*/false);
  EXPECT_TRUE(absl::StartsWith(e, ": slow_consumer: ")) << e;
  EXPECT_TRUE(Parse(e).empty());
  EXPECT_EQ(
      Parse(encoder.Error("internal", "boom", false, true))[0].chunk["type"],
      "error");
}

TEST(AiSdkEncoderTest, HeadersNameTheProtocol) {
  AiSdkEncoder encoder("run_x");
  http::HttpHeaders h;
  encoder.AddHeaders(&h);
  EXPECT_EQ(h.GetOr("x-vercel-ai-ui-message-stream"), "v1");
  EXPECT_TRUE(absl::StartsWith(std::string(h.GetOr("Content-Type")),
                               "text/event-stream"));
}

// A client cut after any event resumes with that event's id (Last-Event-ID)
// and ends with the message a whole stream builds: every part once.
TEST(AiSdkEncoderTest, ContinuingAfterAnyPointGivesTheSameMessage) {
  const std::vector<Update> run = TwoSpecialistRun();
  AiSdkEncoder whole_encoder("run_test");
  const std::string whole_sse = Stream(whole_encoder, run);
  const Message whole = Consume(whole_sse);
  const std::vector<Event> events = Parse(whole_sse);
  int checked = 0;
  for (size_t cut = 1; cut + 2 < events.size(); ++cut) {
    // A cut where the client holds whole updates (after a data part, or at
    // the last event of an update: its id is past the one before it).
    const bool data = absl::StartsWith(Type(events[cut - 1]), "data-");
    const bool update_end =
        cut >= 2 && events[cut - 1].id != events[cut - 2].id;
    if (!data && !update_end) continue;
    Message partial;
    for (size_t i = 0; i < cut; ++i) partial.Apply(events[i]);
    const uint64_t point = std::stoull(events[cut - 1].id.substr(9));
    AiSdkEncoder resumed("run_test", point);
    const std::string rest = Stream(resumed, run);
    for (const Event& e : Parse(rest)) {
      EXPECT_NE(Type(e), "start") << "cut " << cut;
    }
    const Message m = Consume(rest, partial);
    ASSERT_FALSE(HasFatalFailure()) << "cut " << cut;
    EXPECT_EQ(m.parts, whole.parts) << "cut after event " << cut;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

// Without a cursor, a reconnect replays the whole run with the same message
// id (the SDK's resumeStreamIsReplay): a fresh read gives the same message.
TEST(AiSdkEncoderTest, ReplayIsTheSameStream) {
  AiSdkEncoder a("run_test"), b("run_test");
  EXPECT_EQ(Stream(a, TwoSpecialistRun()), Stream(b, TwoSpecialistRun()));
}

}  // namespace
}  // namespace agentstream::gateway::dialects
