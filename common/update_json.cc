#include "common/update_json.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"

namespace agentstream {

using agentstream::v1::Update;

nlohmann::json ValueToJson(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      return nullptr;
    case google::protobuf::Value::kNumberValue: {
      // Struct numbers are doubles; print whole numbers as integers.
      const double d = v.number_value();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) {
        return static_cast<int64_t>(d);
      }
      if (!std::isfinite(d)) return nullptr;
      return d;
    }
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kBoolValue:
      return v.bool_value();
    case google::protobuf::Value::kStructValue:
      return StructToJson(v.struct_value());
    case google::protobuf::Value::kListValue: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : v.list_value().values()) {
        arr.push_back(ValueToJson(item));
      }
      return arr;
    }
  }
  return nullptr;
}

nlohmann::json StructToJson(const google::protobuf::Struct& s) {
  nlohmann::json obj = nlohmann::json::object();
  for (const auto& [key, value] : s.fields()) obj[key] = ValueToJson(value);
  return obj;
}

google::protobuf::Value JsonToValue(const nlohmann::json& j) {
  google::protobuf::Value v;
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      v.set_null_value(google::protobuf::NULL_VALUE);
      break;
    case nlohmann::json::value_t::boolean:
      v.set_bool_value(j.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      v.set_number_value(j.get<double>());
      break;
    case nlohmann::json::value_t::string:
      v.set_string_value(j.get<std::string>());
      break;
    case nlohmann::json::value_t::object:
      *v.mutable_struct_value() = JsonToStruct(j);
      break;
    case nlohmann::json::value_t::array: {
      auto* list = v.mutable_list_value();
      for (const auto& item : j) *list->add_values() = JsonToValue(item);
      break;
    }
    case nlohmann::json::value_t::binary:
      v.set_null_value(google::protobuf::NULL_VALUE);
      break;
  }
  return v;
}

google::protobuf::Struct JsonToStruct(const nlohmann::json& j) {
  google::protobuf::Struct s;
  if (!j.is_object()) return s;
  for (const auto& [key, value] : j.items()) {
    (*s.mutable_fields())[key] = JsonToValue(value);
  }
  return s;
}

std::string RunStatusName(agentstream::v1::RunStatus status) {
  switch (status) {
    case agentstream::v1::RUN_STATUS_ANALYZING:
      return "analyzing";
    case agentstream::v1::RUN_STATUS_DELEGATING:
      return "delegating";
    case agentstream::v1::RUN_STATUS_SYNTHESIZING:
      return "synthesizing";
    case agentstream::v1::RUN_STATUS_COMPLETE:
      return "complete";
    case agentstream::v1::RUN_STATUS_CANCELLED:
      return "cancelled";
    case agentstream::v1::RUN_STATUS_FAILED:
      return "failed";
    default:
      return "unspecified";
  }
}

std::string OutcomeName(agentstream::v1::Outcome outcome) {
  switch (outcome) {
    case agentstream::v1::OUTCOME_OK:
      return "ok";
    case agentstream::v1::OUTCOME_FAILED:
      return "failed";
    case agentstream::v1::OUTCOME_TIMED_OUT:
      return "timed_out";
    case agentstream::v1::OUTCOME_CANCELLED:
      return "cancelled";
    case agentstream::v1::OUTCOME_PARTIAL:
      return "partial";
    default:
      return "unspecified";
  }
}

std::string TimeoutActionName(agentstream::v1::TimeoutAction action) {
  switch (action) {
    case agentstream::v1::TIMEOUT_ACTION_CONTINUING:
      return "continuing";
    case agentstream::v1::TIMEOUT_ACTION_ABANDONED:
      return "abandoned";
    default:
      return "unspecified";
  }
}

std::string UpdateType(const Update& update) {
  switch (update.kind_case()) {
    case Update::kStatus:
      return "status";
    case Update::kSpecialistActivated:
      return "specialist_activated";
    case Update::kProgress:
      return "progress";
    case Update::kThinking:
      return "thinking";
    case Update::kToolCall:
      return "tool_call";
    case Update::kPartialResult:
      return "partial_result";
    case Update::kSynthesis:
      return "synthesis";
    case Update::kSpecialistComplete:
      return "specialist_complete";
    case Update::kComplete:
      return "complete";
    case Update::kError:
      return "error";
    case Update::kTimeout:
      return "timeout";
    case Update::KIND_NOT_SET:
      break;
  }
  return "unknown";
}

nlohmann::ordered_json UpdateToJson(const Update& update) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["type"] = UpdateType(update);
  j["request_id"] = update.request_id();
  j["seq"] = update.seq();
  if (!update.specialist().empty()) j["specialist"] = update.specialist();
  if (!update.instance().empty()) j["instance"] = update.instance();
  j["emitted_at_ns"] = update.emitted_at();
  switch (update.kind_case()) {
    case Update::kStatus:
      j["status"] = RunStatusName(update.status().status());
      j["message"] = update.status().message();
      break;
    case Update::kSpecialistActivated:
      j["task"] = update.specialist_activated().task();
      j["icon"] = update.specialist_activated().icon();
      j["display_name"] = update.specialist_activated().display_name();
      break;
    case Update::kProgress:
      j["progress"] = update.progress().progress();
      j["current_action"] = update.progress().current_action();
      break;
    case Update::kThinking:
      j["agent"] = update.thinking().agent();
      j["thought"] = update.thinking().thought();
      j["visible"] = update.thinking().visible();
      break;
    case Update::kToolCall:
      j["tool"] = update.tool_call().tool();
      j["parameters"] = StructToJson(update.tool_call().parameters());
      break;
    case Update::kPartialResult:
      j["result"] = StructToJson(update.partial_result().result());
      break;
    case Update::kSynthesis: {
      const auto& s = update.synthesis();
      j["message"] = s.message();
      j["specialists_complete"] = nlohmann::json::array();
      for (const auto& name : s.specialists_complete()) {
        j["specialists_complete"].push_back(name);
      }
      j["specialists_pending"] = nlohmann::json::array();
      for (const auto& name : s.specialists_pending()) {
        j["specialists_pending"].push_back(name);
      }
      break;
    }
    case Update::kSpecialistComplete:
      j["outcome"] = OutcomeName(update.specialist_complete().outcome());
      j["duration_ms"] = update.specialist_complete().duration_ms();
      break;
    case Update::kComplete:
      j["result"] = StructToJson(update.complete().result());
      j["outcome"] = OutcomeName(update.complete().outcome());
      break;
    case Update::kError:
      j["code"] = update.error().code();
      j["message"] = update.error().message();
      j["retryable"] = update.error().retryable();
      break;
    case Update::kTimeout:
      j["message"] = update.timeout().message();
      j["action"] = TimeoutActionName(update.timeout().action());
      break;
    case Update::KIND_NOT_SET:
      break;
  }
  return j;
}

namespace {

using OrderedJson = nlohmann::ordered_json;

// What nlohmann writes verbatim between quotes (ensure_ascii off): every
// byte but controls, '"', '\\' and non-ASCII (which it checks as UTF-8).
bool IsVerbatim(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
}

void AppendJsonString(std::string_view s, std::string* out) {
  if (IsVerbatim(s)) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
    return;
  }
  // Escapes and UTF-8 repair exactly as the document path does.
  out->append(
      nlohmann::json(std::string(s))
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void AppendStructJson(const google::protobuf::Struct& s, std::string* out);

// ValueToJson's text.
void AppendValueJson(const google::protobuf::Value& v, std::string* out) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      out->append("null");
      return;
    case google::protobuf::Value::kNumberValue: {
      const double d = v.number_value();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) {
        absl::StrAppend(out, static_cast<int64_t>(d));
      } else if (!std::isfinite(d)) {
        out->append("null");
      } else {
        out->append(nlohmann::json(d).dump());
      }
      return;
    }
    case google::protobuf::Value::kStringValue:
      AppendJsonString(v.string_value(), out);
      return;
    case google::protobuf::Value::kBoolValue:
      out->append(v.bool_value() ? "true" : "false");
      return;
    case google::protobuf::Value::kStructValue:
      AppendStructJson(v.struct_value(), out);
      return;
    case google::protobuf::Value::kListValue: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : v.list_value().values()) {
        if (!first) out->push_back(',');
        first = false;
        AppendValueJson(item, out);
      }
      out->push_back(']');
      return;
    }
  }
  out->append("null");
}

// StructToJson's text: keys in byte order, as a JSON object keeps them.
void AppendStructJson(const google::protobuf::Struct& s, std::string* out) {
  using Field =
      google::protobuf::Map<std::string, google::protobuf::Value>::value_type;
  std::vector<const Field*> fields;
  fields.reserve(static_cast<size_t>(s.fields().size()));
  for (const auto& field : s.fields()) fields.push_back(&field);
  std::sort(fields.begin(), fields.end(),
            [](const Field* a, const Field* b) { return a->first < b->first; });
  out->push_back('{');
  bool first = true;
  for (const Field* field : fields) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(field->first, out);
    out->push_back(':');
    AppendValueJson(field->second, out);
  }
  out->push_back('}');
}

// Writes `"key":` (keys are literals that need no escaping), with the comma
// before every key but the first.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  std::string* Key(std::string_view key) {
    out_->append(first_ ? "\"" : ",\"");
    first_ = false;
    out_->append(key);
    out_->append("\":");
    return out_;
  }
  void String(std::string_view key, std::string_view value) {
    AppendJsonString(value, Key(key));
  }
  template <typename Int>
  void Number(std::string_view key, Int value) {
    absl::StrAppend(Key(key), value);
  }
  void Bool(std::string_view key, bool value) {
    Key(key)->append(value ? "true" : "false");
  }
  void StringList(std::string_view key,
                  const google::protobuf::RepeatedPtrField<std::string>& list) {
    Key(key)->push_back('[');
    bool first = true;
    for (const auto& item : list) {
      if (!first) out_->push_back(',');
      first = false;
      AppendJsonString(item, out_);
    }
    out_->push_back(']');
  }
  void Close() { out_->push_back('}'); }

 private:
  std::string* const out_;
  bool first_ = true;
};

}  // namespace

void AppendUpdateJson(const Update& update, std::string_view request_id,
                      std::string* out) {
  ObjectWriter j(out);
  j.String("type", UpdateType(update));
  j.String("request_id", request_id);
  j.Number("seq", update.seq());
  if (!update.specialist().empty()) j.String("specialist", update.specialist());
  if (!update.instance().empty()) j.String("instance", update.instance());
  j.Number("emitted_at_ns", update.emitted_at());
  switch (update.kind_case()) {
    case Update::kStatus:
      j.String("status", RunStatusName(update.status().status()));
      j.String("message", update.status().message());
      break;
    case Update::kSpecialistActivated:
      j.String("task", update.specialist_activated().task());
      j.String("icon", update.specialist_activated().icon());
      j.String("display_name", update.specialist_activated().display_name());
      break;
    case Update::kProgress:
      j.Number("progress", update.progress().progress());
      j.String("current_action", update.progress().current_action());
      break;
    case Update::kThinking:
      j.String("agent", update.thinking().agent());
      j.String("thought", update.thinking().thought());
      j.Bool("visible", update.thinking().visible());
      break;
    case Update::kToolCall:
      j.String("tool", update.tool_call().tool());
      AppendStructJson(update.tool_call().parameters(), j.Key("parameters"));
      break;
    case Update::kPartialResult:
      AppendStructJson(update.partial_result().result(), j.Key("result"));
      break;
    case Update::kSynthesis:
      j.String("message", update.synthesis().message());
      j.StringList("specialists_complete",
                   update.synthesis().specialists_complete());
      j.StringList("specialists_pending",
                   update.synthesis().specialists_pending());
      break;
    case Update::kSpecialistComplete:
      j.String("outcome", OutcomeName(update.specialist_complete().outcome()));
      j.Number("duration_ms", update.specialist_complete().duration_ms());
      break;
    case Update::kComplete:
      AppendStructJson(update.complete().result(), j.Key("result"));
      j.String("outcome", OutcomeName(update.complete().outcome()));
      break;
    case Update::kError:
      j.String("code", update.error().code());
      j.String("message", update.error().message());
      j.Bool("retryable", update.error().retryable());
      break;
    case Update::kTimeout:
      j.String("message", update.timeout().message());
      j.String("action", TimeoutActionName(update.timeout().action()));
      break;
    case Update::KIND_NOT_SET:
      break;
  }
  j.Close();
}

}  // namespace agentstream
