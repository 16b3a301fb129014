#include "gateway/dialects/run_view.h"

#include <algorithm>
#include <utility>

#include "common/update_json.h"

namespace agentstream::gateway::dialects {
namespace {

using agentstream::v1::Update;

Json NewSpecialist(const std::string& name) {
  return Json{{"name", name},   {"displayName", name}, {"icon", ""},
              {"task", ""},     {"progress", 0},       {"currentAction", ""},
              {"toolCalls", 0}, {"outcome", nullptr},  {"durationMs", nullptr}};
}

std::string StatusForOutcome(agentstream::v1::Outcome outcome) {
  switch (outcome) {
    case agentstream::v1::OUTCOME_CANCELLED:
      return "cancelled";
    case agentstream::v1::OUTCOME_FAILED:
      return "failed";
    default:
      return "complete";
  }
}

// The member at `tokens` of `root` (null when absent), its parent object
// (null when a token before the last is absent or not an object) and the
// last token.
Json* Find(Json& root, std::initializer_list<std::string_view> tokens,
           Json** parent, std::string* last) {
  *parent = nullptr;
  if (tokens.size() == 0) return nullptr;
  Json* at = &root;
  auto it = tokens.begin();
  for (; it + 1 != tokens.end(); ++it) {
    if (!at->is_object()) return nullptr;
    auto member = at->find(std::string(*it));
    if (member == at->end()) return nullptr;
    at = &*member;
  }
  if (!at->is_object()) return nullptr;
  *parent = at;
  *last = std::string(*it);
  auto member = at->find(*last);
  return member == at->end() ? nullptr : &*member;
}

}  // namespace

std::string SpecialistOf(const Update& update) {
  if (!update.specialist().empty()) return update.specialist();
  if (update.kind_case() == Update::kThinking) {
    const std::string& agent = update.thinking().agent();
    if (!agent.empty() && agent != kOrchestratorAgent) return agent;
  }
  return "";
}

RunView::RunView(std::string run_id)
    : state_(Json{{"runId", std::move(run_id)},
                  {"status", "idle"},
                  {"statusMessage", ""},
                  {"specialists", Json::object()},
                  {"order", Json::array()},
                  {"results", Json::object()},
                  {"synthesis", nullptr},
                  {"answer", nullptr},
                  {"outcome", nullptr},
                  {"errors", Json::array()},
                  {"timeouts", Json::array()}}) {}

std::string RunView::Pointer(std::initializer_list<std::string_view> tokens) {
  std::string out;
  for (std::string_view token : tokens) {
    out.push_back('/');
    for (char c : token) {
      if (c == '~') {
        out.append("~0");
      } else if (c == '/') {
        out.append("~1");
      } else {
        out.push_back(c);
      }
    }
  }
  return out;
}

void RunView::Put(std::initializer_list<std::string_view> tokens, Json value,
                  ViewChange* change) {
  Json* parent = nullptr;
  std::string last;
  Json* at = Find(state_, tokens, &parent, &last);
  if (parent == nullptr) return;
  if (at != nullptr && *at == value) return;
  change->patch.push_back(Json{{"op", at != nullptr ? "replace" : "add"},
                               {"path", Pointer(tokens)},
                               {"value", value}});
  (*parent)[last] = std::move(value);
}

void RunView::Append(std::initializer_list<std::string_view> tokens, Json value,
                     ViewChange* change) {
  Json* parent = nullptr;
  std::string last;
  Json* at = Find(state_, tokens, &parent, &last);
  if (at == nullptr || !at->is_array()) return;
  change->patch.push_back(
      Json{{"op", "add"}, {"path", Pointer(tokens) + "/-"}, {"value", value}});
  at->push_back(std::move(value));
}

Json& RunView::Specialist(const std::string& name, ViewChange* change) {
  change->specialist = name;
  Json& all = state_["specialists"];
  if (!all.contains(name)) {
    Put({"specialists", name}, NewSpecialist(name), change);
    Append({"order"}, name, change);
  }
  return all[name];
}

const Json* RunView::specialist(std::string_view name) const {
  const Json& all = state_["specialists"];
  auto it = all.find(std::string(name));
  return it == all.end() ? nullptr : &*it;
}

const Json* RunView::result(std::string_view name) const {
  const Json& all = state_["results"];
  auto it = all.find(std::string(name));
  return it == all.end() ? nullptr : &*it;
}

bool RunView::ended() const {
  const std::string& status = state_["status"].get_ref<const std::string&>();
  return status == "complete" || status == "cancelled" || status == "failed";
}

ViewChange RunView::Apply(const Update& update) {
  ViewChange change;
  if (update.seq() != 0 && update.seq() <= last_seq_) return change;
  last_seq_ = std::max<uint64_t>(last_seq_, update.seq());
  const std::string name = SpecialistOf(update);
  switch (update.kind_case()) {
    case Update::kStatus:
      change.status = true;
      Put({"status"}, RunStatusName(update.status().status()), &change);
      Put({"statusMessage"}, update.status().message(), &change);
      break;
    case Update::kSpecialistActivated: {
      if (name.empty()) break;
      const auto& a = update.specialist_activated();
      Json& s = Specialist(name, &change);
      if (!a.display_name().empty() && s["displayName"] != a.display_name()) {
        Put({"specialists", name, "displayName"}, a.display_name(), &change);
      }
      if (!a.icon().empty()) {
        Put({"specialists", name, "icon"}, a.icon(), &change);
      }
      if (!a.task().empty()) {
        Put({"specialists", name, "task"}, a.task(), &change);
      }
      break;
    }
    case Update::kProgress: {
      if (name.empty()) break;
      Specialist(name, &change);
      const auto& p = update.progress();
      Put({"specialists", name, "progress"},
          std::min<uint32_t>(p.progress(), 100), &change);
      if (!p.current_action().empty()) {
        Put({"specialists", name, "currentAction"}, p.current_action(),
            &change);
      }
      break;
    }
    case Update::kToolCall: {
      if (name.empty()) break;
      Json& s = Specialist(name, &change);
      const int calls = s["toolCalls"].get<int>() + 1;
      Put({"specialists", name, "toolCalls"}, calls, &change);
      break;
    }
    case Update::kPartialResult: {
      if (name.empty()) break;
      Specialist(name, &change);
      change.result = true;
      const Json partial = StructToJson(update.partial_result().result());
      if (!state_["results"].contains(name)) {
        Put({"results", name}, Json::object(), &change);
      }
      for (const auto& [key, value] : partial.items()) {
        Put({"results", name, key}, value, &change);
      }
      break;
    }
    case Update::kSynthesis: {
      change.synthesis = true;
      const auto& s = update.synthesis();
      Put({"synthesis"},
          Json{{"message", s.message()},
               {"complete",
                Json(std::vector<std::string>(s.specialists_complete().begin(),
                                              s.specialists_complete().end()))},
               {"pending",
                Json(std::vector<std::string>(s.specialists_pending().begin(),
                                              s.specialists_pending().end()))}},
          &change);
      break;
    }
    case Update::kSpecialistComplete: {
      if (name.empty()) break;
      Specialist(name, &change);
      const auto& c = update.specialist_complete();
      Put({"specialists", name, "outcome"}, OutcomeName(c.outcome()), &change);
      Put({"specialists", name, "durationMs"}, c.duration_ms(), &change);
      break;
    }
    case Update::kComplete: {
      change.status = true;
      change.answer = true;
      const auto& c = update.complete();
      const Json result = StructToJson(c.result());
      const auto answer = result.find("answer");
      Put({"answer"},
          answer != result.end() && answer->is_string() ? *answer : Json(""),
          &change);
      Put({"outcome"}, OutcomeName(c.outcome()), &change);
      Put({"status"}, StatusForOutcome(c.outcome()), &change);
      break;
    }
    case Update::kError: {
      const auto& e = update.error();
      if (!name.empty()) Specialist(name, &change);
      Append({"errors"},
             Json{{"specialist", name.empty() ? Json(nullptr) : Json(name)},
                  {"code", e.code()},
                  {"message", e.message()},
                  {"retryable", e.retryable()}},
             &change);
      break;
    }
    case Update::kTimeout: {
      const auto& t = update.timeout();
      if (!name.empty()) Specialist(name, &change);
      Append({"timeouts"},
             Json{{"specialist", name.empty() ? Json(nullptr) : Json(name)},
                  {"message", t.message()},
                  {"action", TimeoutActionName(t.action())}},
             &change);
      break;
    }
    case Update::kThinking:
    case Update::KIND_NOT_SET:
      break;
  }
  return change;
}

}  // namespace agentstream::gateway::dialects
