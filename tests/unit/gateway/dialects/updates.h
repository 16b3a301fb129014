// Updates of a run, built for the dialects' tests: each as the orchestrator
// would send it (seq, specialist, the kind's fields).
#ifndef AGENTSTREAM_TESTS_UNIT_GATEWAY_DIALECTS_UPDATES_H_
#define AGENTSTREAM_TESTS_UNIT_GATEWAY_DIALECTS_UPDATES_H_

#include <string>
#include <vector>

#include "agentstream/v1/update.pb.h"
#include "common/update_json.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::dialects::testing {

using agentstream::v1::Update;

inline Update Base(uint64_t seq, const std::string& specialist = "") {
  Update u;
  u.set_request_id("run_test");
  u.set_seq(seq);
  u.set_specialist(specialist);
  return u;
}

inline Update Status(uint64_t seq, agentstream::v1::RunStatus status,
                     const std::string& message = "") {
  Update u = Base(seq);
  u.mutable_status()->set_status(status);
  u.mutable_status()->set_message(message);
  return u;
}

inline Update Activated(uint64_t seq, const std::string& name,
                        const std::string& task = "the task") {
  Update u = Base(seq, name);
  auto* a = u.mutable_specialist_activated();
  a->set_task(task);
  a->set_icon("📊");
  a->set_display_name(name + " (display)");
  return u;
}

inline Update Progress(uint64_t seq, const std::string& name, int progress,
                       const std::string& action = "") {
  Update u = Base(seq, name);
  u.mutable_progress()->set_progress(progress);
  u.mutable_progress()->set_current_action(action);
  return u;
}

inline Update Thinking(uint64_t seq, const std::string& agent,
                       const std::string& thought) {
  Update u = Base(seq, agent == "Orchestrator" ? "" : agent);
  u.mutable_thinking()->set_agent(agent);
  u.mutable_thinking()->set_thought(thought);
  u.mutable_thinking()->set_visible(true);
  return u;
}

inline Update Tool(uint64_t seq, const std::string& name,
                   const std::string& tool, const nlohmann::json& params) {
  Update u = Base(seq, name);
  u.mutable_tool_call()->set_tool(tool);
  *u.mutable_tool_call()->mutable_parameters() = JsonToStruct(params);
  return u;
}

inline Update Partial(uint64_t seq, const std::string& name,
                      const nlohmann::json& result) {
  Update u = Base(seq, name);
  *u.mutable_partial_result()->mutable_result() = JsonToStruct(result);
  return u;
}

inline Update SpecialistDone(
    uint64_t seq, const std::string& name,
    agentstream::v1::Outcome outcome = agentstream::v1::OUTCOME_OK) {
  Update u = Base(seq, name);
  u.mutable_specialist_complete()->set_outcome(outcome);
  u.mutable_specialist_complete()->set_duration_ms(1234);
  return u;
}

inline Update Complete(
    uint64_t seq, const std::string& answer,
    agentstream::v1::Outcome outcome = agentstream::v1::OUTCOME_OK) {
  Update u = Base(seq);
  *u.mutable_complete()->mutable_result() =
      JsonToStruct({{"answer", answer}, {"missing", nlohmann::json::array()}});
  u.mutable_complete()->set_outcome(outcome);
  return u;
}

inline Update Error(uint64_t seq, const std::string& name,
                    const std::string& code, const std::string& message) {
  Update u = Base(seq, name);
  u.mutable_error()->set_code(code);
  u.mutable_error()->set_message(message);
  return u;
}

// A whole run with two specialists, one tool call, thinking and an answer.
inline std::vector<Update> TwoSpecialistRun() {
  using agentstream::v1::RUN_STATUS_ANALYZING;
  using agentstream::v1::RUN_STATUS_DELEGATING;
  using agentstream::v1::RUN_STATUS_SYNTHESIZING;
  return {
      Status(1, RUN_STATUS_ANALYZING, "Planning"),
      Thinking(2, "Orchestrator", "Two specialists are needed."),
      Status(3, RUN_STATUS_DELEGATING, "Asking 2 specialists"),
      Activated(4, "DataAnalyst"),
      Activated(5, "RiskAnalyst"),
      Progress(6, "DataAnalyst", 10, "Loading"),
      Tool(7, "DataAnalyst", "data_query",
           {{"query", "totals"}, {"sql", "SELECT 1"}}),
      Progress(8, "RiskAnalyst", 50, "Scoring"),
      Partial(9, "DataAnalyst", {{"query", "totals"}, {"rows", 3}}),
      Thinking(10, "RiskAnalyst", "Volatility is high."),
      Progress(11, "DataAnalyst", 100, "Done"),
      SpecialistDone(12, "DataAnalyst"),
      Partial(13, "RiskAnalyst", {{"part", "volatility"}, {"score", 0.7}}),
      Progress(14, "RiskAnalyst", 100, "Done"),
      SpecialistDone(15, "RiskAnalyst"),
      Status(16, RUN_STATUS_SYNTHESIZING, "Writing the answer"),
      Complete(17, "Account ACC-1042 looks risky."),
  };
}

}  // namespace agentstream::gateway::dialects::testing

#endif  // AGENTSTREAM_TESTS_UNIT_GATEWAY_DIALECTS_UPDATES_H_
