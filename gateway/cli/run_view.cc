#include "gateway/cli/run_view.h"

#include <algorithm>
#include <cmath>
#include <string_view>

namespace agentstream::cli {
namespace {

using Json = nlohmann::json;

// The name the orchestrator uses for itself in `thinking` updates
// (gateway/web/reducer.js ORCHESTRATOR_AGENT).
constexpr std::string_view kOrchestratorAgent = "Orchestrator";
// Fields a partial result may name itself by, in order of preference, and
// the longest value that is a name rather than content (reducer.js).
constexpr std::string_view kTitleFields[] = {"query", "part", "section",
                                             "stage", "rule"};
constexpr size_t kMaxTitleLength = 40;

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::optional<int64_t> Int(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<int64_t>();
}

bool IsTerminal(std::string_view status) {
  return status == "complete" || status == "cancelled" || status == "failed";
}

std::string SpecialistOf(const Json& u, const std::string& type) {
  std::string name = Str(u, "specialist");
  if (!name.empty()) return name;
  if (type == "thinking") {
    std::string agent = Str(u, "agent");
    if (agent != kOrchestratorAgent) return agent;
  }
  return "";
}

SpecialistView& Specialist(RunView& view, const std::string& name) {
  for (SpecialistView& s : view.specialists) {
    if (s.name == name) return s;
  }
  SpecialistView s;
  s.name = name;
  s.display_name = name;
  view.specialists.push_back(std::move(s));
  return view.specialists.back();
}

std::string PartialTitle(const Json& result, int count) {
  for (std::string_view field : kTitleFields) {
    auto it = result.find(std::string(field));
    if (it != result.end() && it->is_string()) {
      const auto& v = it->get_ref<const std::string&>();
      if (!v.empty() && v.size() <= kMaxTitleLength) return v;
    }
  }
  return "result " + std::to_string(count);
}

std::string ErrorText(const Json& u) {
  std::string code = Str(u, "code");
  return (code.empty() ? std::string("error") : code) + ": " +
         Str(u, "message");
}

// An update without seq (the gateway's own error) repeats the last one when
// it says the same.
bool IsDuplicate(const RunView& view, const Json& u, const std::string& type) {
  std::optional<int64_t> seq = Int(u, "seq");
  if (seq.has_value() && *seq > 0) return *seq <= view.last_seq;
  if (type == "error" && !Str(u, "specialist").empty()) return false;
  if (type == "error" && !view.errors.empty()) {
    return view.errors.back() == ErrorText(u);
  }
  return false;
}

bool ReduceOne(RunView& view, const Json& u) {
  if (!u.is_object()) return false;
  const std::string type = Str(u, "type");
  if (type.empty() || type == "heartbeat") return false;
  if (type == "batch") {
    auto it = u.find("updates");
    if (it == u.end() || !it->is_array()) return false;
    bool changed = false;
    for (const Json& inner : *it) changed = ReduceOne(view, inner) || changed;
    return changed;
  }
  if (IsDuplicate(view, u, type)) return false;
  const std::string name = SpecialistOf(u, type);
  if (type == "connected") {
    if (std::string rid = Str(u, "request_id"); !rid.empty()) {
      view.run_id = rid;
    }
    if (std::string cid = Str(u, "correlation_id"); !cid.empty()) {
      view.correlation_id = cid;
    }
    if (Str(u, "status") == "resumed") ++view.resumes;
    view.notice.clear();
  } else if (type == "status") {
    if (std::string s = Str(u, "status"); !s.empty()) view.status = s;
    view.status_message = Str(u, "message");
  } else if (type == "specialist_activated") {
    if (name.empty()) return false;
    SpecialistView& s = Specialist(view, name);
    if (std::string v = Str(u, "display_name"); !v.empty()) s.display_name = v;
    if (std::string v = Str(u, "icon"); !v.empty()) s.icon = v;
    if (std::string v = Str(u, "task"); !v.empty()) s.task = v;
  } else if (type == "progress") {
    if (name.empty()) return false;
    SpecialistView& s = Specialist(view, name);
    auto it = u.find("progress");
    if (it != u.end() && it->is_number()) {
      s.progress = ClampProgress(it->get<double>());
    }
    if (std::string v = Str(u, "current_action"); !v.empty()) {
      s.current_action = v;
    }
  } else if (type == "thinking") {
    auto it = u.find("visible");
    if (it != u.end() && it->is_boolean() && !it->get<bool>()) {
      // Hidden thoughts are the log's, not the screen's.
    } else if (name.empty()) {
      view.orchestrator_thought = Str(u, "thought");
    } else {
      Specialist(view, name).last_thought = Str(u, "thought");
    }
  } else if (type == "tool_call") {
    if (name.empty()) return false;
    SpecialistView& s = Specialist(view, name);
    ++s.tool_calls;
    s.last_tool = Str(u, "tool");
    s.last_tool_detail.clear();
    auto it = u.find("parameters");
    if (it != u.end() && it->is_object()) {
      auto sql = it->find("sql");
      s.last_tool_detail = sql != it->end() && sql->is_string()
                               ? sql->get<std::string>()
                               : it->dump();
    }
  } else if (type == "partial_result") {
    if (name.empty()) return false;
    SpecialistView& s = Specialist(view, name);
    ++s.partial_results;
    auto it = u.find("result");
    s.last_partial =
        PartialTitle(it != u.end() && it->is_object() ? *it : Json::object(),
                     s.partial_results);
  } else if (type == "synthesis") {
    view.synthesis = Str(u, "message");
  } else if (type == "specialist_complete") {
    if (name.empty()) return false;
    SpecialistView& s = Specialist(view, name);
    s.outcome = Str(u, "outcome");
    if (s.outcome.empty()) s.outcome = "ok";
    s.duration_ms = Int(u, "duration_ms").value_or(0);
  } else if (type == "complete") {
    auto it = u.find("result");
    view.final_result = it != u.end() && it->is_object() ? *it : Json::object();
    view.answer = Str(*view.final_result, "answer");
    view.outcome = Str(u, "outcome");
    if (view.outcome.empty()) view.outcome = "ok";
    view.status = view.outcome == "cancelled" ? "cancelled"
                  : view.outcome == "failed"  ? "failed"
                                              : "complete";
  } else if (type == "error") {
    if (name.empty() && IsReconnectError(u)) {
      view.notice = Str(u, "message");
    } else if (name.empty()) {
      view.errors.push_back(ErrorText(u));
    } else {
      Specialist(view, name).errors.push_back(ErrorText(u));
    }
  } else if (type == "timeout") {
    std::string text = Str(u, "message");
    view.timeouts.push_back(name.empty() ? text : name + ": " + text);
  } else if (type == "done") {
    view.done = Str(u, "status");
    if (view.done.empty()) view.done = "complete";
    if (!IsTerminal(view.status)) {
      view.status = IsTerminal(view.done) ? view.done : "failed";
    }
    view.notice.clear();
  } else {
    return false;  // A kind this client does not know (a newer gateway).
  }
  if (std::optional<int64_t> seq = Int(u, "seq"); seq && *seq > view.last_seq) {
    view.last_seq = *seq;
  }
  return true;
}

}  // namespace

int ClampProgress(double progress) {
  if (!std::isfinite(progress)) return 0;
  return static_cast<int>(std::clamp(std::round(progress), 0.0, 100.0));
}

bool IsReconnectError(const Json& u) {
  if (!u.is_object() || Str(u, "type") != "error") return false;
  if (!Str(u, "specialist").empty()) return false;
  const std::string code = Str(u, "code");
  auto retryable = u.find("retryable");
  return code == "slow_consumer" ||
         (code == "unavailable" && retryable != u.end() &&
          retryable->is_boolean() && retryable->get<bool>());
}

bool Reduce(RunView& view, const Json& update) {
  return ReduceOne(view, update);
}

}  // namespace agentstream::cli
