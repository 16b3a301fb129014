#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gateway/dialects/ag_ui_encoder.h"
#include "gateway/dialects/ag_ui_proto.h"
#include "gateway/dialects/ag_ui_request.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/gateway/dialects/updates.h"

namespace agentstream::gateway::dialects {
namespace {

using namespace testing;  // NOLINT: the test's update builders.
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct SseEvent {
  std::string id;
  Json data;
};

// The SSE events in `text` (comments skipped).
std::vector<SseEvent> Parse(const std::string& text) {
  std::vector<SseEvent> events;
  for (absl::string_view block : absl::StrSplit(text, "\n\n")) {
    SseEvent e;
    std::string data;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::StartsWith(line, "id: ")) e.id = std::string(line.substr(4));
      if (absl::StartsWith(line, "data: ")) data += std::string(line.substr(6));
    }
    if (data.empty()) continue;
    e.data = Json::parse(data);
    events.push_back(std::move(e));
  }
  return events;
}

std::vector<std::string> Types(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data["type"]);
  return out;
}

// The whole stream of `run` through a fresh encoder (Open, the updates,
// Done).
std::string Stream(AgUiEncoder& encoder, const std::vector<Update>& run,
                   DoneStatus done = DoneStatus::kComplete) {
  std::string out = encoder.Open();
  for (const Update& u : run) encoder.AppendUpdate(u, &out);
  out += encoder.Done(done);
  return out;
}

// What AG-UI's verifier checks (docs/PROTOCOLS.md): RUN_STARTED first;
// starts and ends paired by id; no RUN_FINISHED with anything open.
void Verify(const std::vector<SseEvent>& events) {
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().data["type"], "RUN_STARTED");
  std::set<std::string> steps, texts, tools, reasoning, spans;
  for (const auto& e : events) {
    const std::string type = e.data["type"];
    auto open = [&](std::set<std::string>& set, const char* key) {
      EXPECT_TRUE(set.insert(e.data[key].get<std::string>()).second) << type;
    };
    auto close = [&](std::set<std::string>& set, const char* key) {
      EXPECT_EQ(set.erase(e.data[key].get<std::string>()), 1u) << type;
    };
    if (type == "STEP_STARTED") open(steps, "stepName");
    if (type == "STEP_FINISHED") close(steps, "stepName");
    if (type == "TEXT_MESSAGE_START") open(texts, "messageId");
    if (type == "TEXT_MESSAGE_CONTENT") {
      EXPECT_TRUE(texts.count(e.data["messageId"]));
    }
    if (type == "TEXT_MESSAGE_END") close(texts, "messageId");
    if (type == "TOOL_CALL_START") open(tools, "toolCallId");
    if (type == "TOOL_CALL_END") close(tools, "toolCallId");
    if (type == "REASONING_START") open(spans, "messageId");
    if (type == "REASONING_END") close(spans, "messageId");
    if (type == "REASONING_MESSAGE_START") open(reasoning, "messageId");
    if (type == "REASONING_MESSAGE_END") close(reasoning, "messageId");
    if (type == "RUN_FINISHED") {
      EXPECT_TRUE(steps.empty() && texts.empty() && tools.empty() &&
                  reasoning.empty() && spans.empty());
    }
  }
}

// The state a client ends with: the last snapshot, then every delta.
Json ClientState(const std::vector<SseEvent>& events, Json state = Json()) {
  for (const auto& e : events) {
    if (e.data["type"] == "STATE_SNAPSHOT") state = e.data["snapshot"];
    if (e.data["type"] != "STATE_DELTA") continue;
    nlohmann::json plain = nlohmann::json::parse(state.dump());
    for (const auto& op : e.data["delta"]) {
      std::string path = op["path"];
      if (path.size() > 2 && path.substr(path.size() - 2) == "/-") {
        plain[nlohmann::json::json_pointer(path.substr(0, path.size() - 2))]
            .push_back(nlohmann::json::parse(op["value"].dump()));
      } else {
        plain[nlohmann::json::json_pointer(path)] =
            nlohmann::json::parse(op["value"].dump());
      }
    }
    state = Json::parse(plain.dump());
  }
  return state;
}

AgUiEncoder Encoder(std::optional<uint64_t> resume = std::nullopt,
                    AgUiFraming framing = AgUiFraming::kSse) {
  return AgUiEncoder("run_x", {"thread-1", "client-run"}, framing, resume);
}

TEST(AgUiEncoderTest, AWholeRunIsAStreamTheVerifierAccepts) {
  AgUiEncoder encoder = Encoder();
  const auto events = Parse(Stream(encoder, TwoSpecialistRun()));
  Verify(events);
  const auto types = Types(events);
  EXPECT_EQ(types.front(), "RUN_STARTED");
  EXPECT_EQ(types[1], "STATE_SNAPSHOT");
  EXPECT_EQ(types.back(), "RUN_FINISHED");
  EXPECT_EQ(events.front().data["threadId"], "thread-1");
  EXPECT_EQ(events.front().data["runId"], "client-run");
  const Json state = ClientState(events);
  EXPECT_EQ(state["specialists"]["DataAnalyst"]["progress"], 100);
  EXPECT_EQ(state["answer"], "Account ACC-1042 looks risky.");
  EXPECT_EQ(state["runId"], "run_x");
  EXPECT_EQ(nlohmann::json::parse(state.dump()),
            nlohmann::json::parse(encoder.view().state().dump()));
  EXPECT_EQ(events.back().data["result"]["answer"],
            "Account ACC-1042 looks risky.");
  EXPECT_EQ(events.back().data["outcome"]["type"], "success");
}

TEST(AgUiEncoderTest, EachKindBecomesItsEvents) {
  AgUiEncoder encoder = Encoder();
  encoder.Open();
  auto events_of = [&](const Update& u) {
    std::string out;
    encoder.AppendUpdate(u, &out);
    return Types(Parse(out));
  };
  EXPECT_THAT(events_of(Activated(1, "DataAnalyst")),
              ElementsAre("STEP_STARTED", "STATE_DELTA"));
  EXPECT_THAT(events_of(Thinking(2, "DataAnalyst", "hm")),
              ElementsAre("REASONING_START", "REASONING_MESSAGE_START",
                          "REASONING_MESSAGE_CONTENT", "REASONING_MESSAGE_END",
                          "REASONING_END"));
  EXPECT_THAT(events_of(Tool(3, "DataAnalyst", "data_query", {{"q", 1}})),
              ElementsAre("TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END",
                          "STATE_DELTA"));
  // The same specialist's next partial result is the tool's result.
  EXPECT_THAT(events_of(Partial(4, "DataAnalyst", {{"rows", 2}})),
              ElementsAre("TOOL_CALL_RESULT", "STATE_DELTA"));
  EXPECT_THAT(events_of(Partial(5, "DataAnalyst", {{"more", 1}})),
              ElementsAre("STATE_DELTA"));
  EXPECT_THAT(events_of(SpecialistDone(6, "DataAnalyst")),
              ElementsAre("STATE_DELTA", "STEP_FINISHED"));
  EXPECT_THAT(events_of(Complete(7, "the answer")),
              ElementsAre("STATE_DELTA", "TEXT_MESSAGE_START",
                          "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END"));
}

TEST(AgUiEncoderTest, IdsAreResumePointsAndTheMetadataCarriesThem) {
  AgUiEncoder encoder = Encoder();
  std::string out = encoder.Open();
  encoder.AppendUpdate(Tool(7, "DataAnalyst", "data_query", {}), &out);
  const auto events = Parse(out);
  // RUN_STARTED, STATE_SNAPSHOT; STEP_STARTED (a specialist first seen),
  // TOOL_CALL_START/ARGS/END, STATE_DELTA.
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].id, "run_x:0");
  EXPECT_EQ(events[1].id, "run_x:0");
  // An update's events carry seq - 1 until its last.
  EXPECT_EQ(events[2].id, "run_x:6");
  EXPECT_EQ(events[5].id, "run_x:6");
  EXPECT_EQ(events[6].id, "run_x:7");
  for (const auto& e : events) {
    EXPECT_EQ(e.data["metadata"]["lastEventId"], e.id);
  }
}

TEST(AgUiEncoderTest, ACutStreamResumedEndsInTheUncutState) {
  const auto run = TwoSpecialistRun();
  for (uint64_t cut = 1; cut < run.size(); ++cut) {
    AgUiEncoder first = Encoder();
    std::string before = first.Open();
    for (const Update& u : run) {
      if (u.seq() > cut) break;
      first.AppendUpdate(u, &before);
    }
    AgUiEncoder resumed = Encoder(cut);
    const std::string after = Stream(resumed, run);
    const auto events = Parse(after);
    Verify(events);  // The resumed stream stands on its own.
    EXPECT_EQ(events[0].data["type"], "RUN_STARTED");
    EXPECT_EQ(events[1].data["type"], "STATE_SNAPSHOT");
    EXPECT_EQ(events[1].id, absl::StrCat("run_x:", cut));
    // Nothing up to the cut is sent again.
    for (const auto& e : events) {
      const uint64_t seq = std::stoull(e.id.substr(e.id.find(':') + 1));
      EXPECT_GE(seq, cut) << e.data.dump();
    }
    AgUiEncoder whole = Encoder();
    const Json uncut = ClientState(Parse(Stream(whole, run)));
    EXPECT_EQ(nlohmann::json::parse(ClientState(events).dump()),
              nlohmann::json::parse(uncut.dump()))
        << "cut after " << cut;
    // The answer's text message comes once over both streams.
    int texts = 0;
    for (const auto& e : Parse(before + after)) {
      texts += e.data["type"] == "TEXT_MESSAGE_START";
    }
    EXPECT_EQ(texts, 1) << "cut after " << cut;
  }
}

TEST(AgUiEncoderTest, OpenStepsAreReopenedOnResumeAndClosedBeforeTheEnd) {
  const std::vector<Update> run = {Activated(1, "A"), Progress(2, "A", 50)};
  AgUiEncoder encoder = Encoder(1);
  std::string out = encoder.Open();
  EXPECT_EQ(out, "");  // Nothing before the client's point.
  for (const Update& u : run) encoder.AppendUpdate(u, &out);
  // The run fails without finishing A's step: RUN_ERROR is allowed with it
  // open; a cancelled run closes it first.
  AgUiEncoder cancelled = Encoder(1);
  std::string c = cancelled.Open();
  for (const Update& u : run) cancelled.AppendUpdate(u, &c);
  c += cancelled.Done(DoneStatus::kCancelled);
  const auto events = Parse(c);
  Verify(events);
  EXPECT_THAT(Types(events),
              ElementsAre("RUN_STARTED", "STATE_SNAPSHOT", "STEP_STARTED",
                          "STATE_DELTA", "STEP_FINISHED", "RUN_FINISHED"));
  EXPECT_EQ(events.back().data["outcome"]["type"], "cancelled");
}

TEST(AgUiEncoderTest, GatewayErrorsEndTheRunOrLeaveItToResume) {
  AgUiEncoder encoder = Encoder();
  encoder.Open();
  // Not final: a comment, the stream ends, the client resumes.
  EXPECT_EQ(encoder.Error("slow_consumer", "behind", true, false),
            ": slow_consumer: behind\n\n");
  // Final: RUN_ERROR with it, in place of the ending.
  EXPECT_EQ(encoder.Gap(absl::OutOfRangeError("gap: trimmed")), "");
  const auto events = Parse(encoder.Done(DoneStatus::kFailed));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data["type"], "RUN_ERROR");
  EXPECT_EQ(events[0].data["code"], "gap");
  EXPECT_THAT(events[0].data["message"].get<std::string>(),
              HasSubstr("start the question again"));
  EXPECT_EQ(encoder.Done(DoneStatus::kFailed), "");  // Once.
}

TEST(AgUiEncoderTest, AFailedRunIsARunError) {
  AgUiEncoder encoder = Encoder();
  const auto events = Parse(
      Stream(encoder, {Complete(1, "", agentstream::v1::OUTCOME_FAILED)}));
  EXPECT_EQ(events.back().data["type"], "RUN_ERROR");
  EXPECT_EQ(events.back().data["code"], "failed");
}

TEST(AgUiProtoTest, AFrameIsALengthAndAnEvent) {
  AgUiEncoder encoder = Encoder(std::nullopt, AgUiFraming::kProto);
  const std::string out = encoder.Open();
  ASSERT_GE(out.size(), 4u);
  const uint32_t n = (static_cast<uint8_t>(out[0]) << 24) |
                     (static_cast<uint8_t>(out[1]) << 16) |
                     (static_cast<uint8_t>(out[2]) << 8) |
                     static_cast<uint8_t>(out[3]);
  agentstream::ag_ui::Event event;
  ASSERT_TRUE(event.ParseFromString(out.substr(4, n)));
  ASSERT_TRUE(event.has_run_started());
  EXPECT_EQ(event.run_started().base().type(), agentstream::ag_ui::RUN_STARTED);
  EXPECT_EQ(event.run_started().thread_id(), "thread-1");
  EXPECT_EQ(event.run_started()
                .base()
                .metadata()
                .fields()
                .at("lastEventId")
                .string_value(),
            "run_x:0");
  // The snapshot follows, as the next frame.
  agentstream::ag_ui::Event snapshot;
  const std::string rest = out.substr(4 + n);
  ASSERT_GE(rest.size(), 4u);
  ASSERT_TRUE(snapshot.ParseFromString(rest.substr(4)));
  EXPECT_TRUE(snapshot.has_state_snapshot());
  EXPECT_EQ(encoder.Heartbeat(), "");  // No comments in protobuf.
}

TEST(AgUiProtoTest, StateDeltasKeepTheirOperations) {
  const Json delta = {{"type", "STATE_DELTA"},
                      {"delta", Json::array({Json{{"op", "replace"},
                                                  {"path", "/status"},
                                                  {"value", "complete"}}})}};
  const auto event = AgUiEventToProto(delta, "r:1");
  ASSERT_TRUE(event.has_state_delta());
  ASSERT_EQ(event.state_delta().delta_size(), 1);
  EXPECT_EQ(event.state_delta().delta(0).op(),
            agentstream::ag_ui::JsonPatchOperation::REPLACE);
  EXPECT_EQ(event.state_delta().delta(0).value().string_value(), "complete");
}

TEST(AgUiFramingTest, ProtobufOnlyWhenAskedAbove) {
  EXPECT_EQ(AgUiFramingFor("text/event-stream"), AgUiFraming::kSse);
  EXPECT_EQ(AgUiFramingFor(""), AgUiFraming::kSse);
  EXPECT_EQ(AgUiFramingFor("application/vnd.ag-ui.event+proto"),
            AgUiFraming::kProto);
  EXPECT_EQ(AgUiFramingFor("application/vnd.ag-ui.event+proto;q=0.5, "
                           "text/event-stream"),
            AgUiFraming::kSse);
  EXPECT_EQ(AgUiFramingFor("text/event-stream;q=0.1, "
                           "application/vnd.ag-ui.event+proto"),
            AgUiFraming::kProto);
}

TEST(AgUiRequestTest, TheQuestionIsTheLastUserMessage) {
  auto input = ParseAgUiInput(R"({"threadId":"t","runId":"r","messages":[
      {"id":"1","role":"user","content":"first"},
      {"id":"2","role":"assistant","content":"x"},
      {"id":"3","role":"user","content":[{"type":"text","text":"second"},
                                         {"type":"image","url":"u"}]}],
      "state":{},"tools":[],"context":[],
      "forwardedProps":{"specialists":["RiskAnalyst"],"options":{"k":1}}})");
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->names.thread_id, "t");
  EXPECT_EQ(input->names.run_id, "r");
  EXPECT_EQ(input->chat.message, "second");
  EXPECT_THAT(input->chat.specialists, ElementsAre("RiskAnalyst"));
  EXPECT_EQ(input->chat.options["k"], 1);
}

TEST(AgUiRequestTest, BadInputIsInvalidArgument) {
  for (const char* body : {
           "",
           "[]",
           "{",
           R"({"messages":{}})",
           R"({"messages":[]})",
           R"({"messages":[{"role":"assistant","content":"x"}]})",
           R"({"messages":[{"role":"user","content":""}]})",
           R"({"messages":[{"role":"user","content":7}]})",
           R"({"threadId":1,"messages":[{"role":"user","content":"x"}]})",
           R"({"messages":[{"role":"user","content":"x"}],"forwardedProps":1})",
           R"({"messages":[{"role":"user","content":"x"}],
               "forwardedProps":{"specialists":"A"}})",
       }) {
    auto input = ParseAgUiInput(body);
    EXPECT_EQ(input.status().code(), absl::StatusCode::kInvalidArgument)
        << body;
  }
  const std::string long_id(kMaxAgUiIdBytes + 1, 'a');
  EXPECT_FALSE(ParseAgUiInput(absl::StrCat(R"({"threadId":")", long_id,
                                           R"(","messages":[{"role":"user",
                                           "content":"x"}]})"))
                   .ok());
}

}  // namespace
}  // namespace agentstream::gateway::dialects
