#include "gateway/dialects/ag_ui_proto.h"

#include "common/update_json.h"

namespace agentstream::gateway::dialects {
namespace {

namespace pb = agentstream::ag_ui;

std::string Str(const Json& event, const char* key) {
  auto it = event.find(key);
  return it != event.end() && it->is_string() ? it->get<std::string>() : "";
}

google::protobuf::Value ValueOf(const Json& j) {
  return JsonToValue(nlohmann::json::parse(
      j.dump(-1, ' ', false, Json::error_handler_t::replace)));
}

pb::JsonPatchOperation::Op OpOf(const std::string& op) {
  if (op == "remove") return pb::JsonPatchOperation::REMOVE;
  if (op == "replace") return pb::JsonPatchOperation::REPLACE;
  if (op == "move") return pb::JsonPatchOperation::MOVE;
  if (op == "copy") return pb::JsonPatchOperation::COPY;
  if (op == "test") return pb::JsonPatchOperation::TEST;
  return pb::JsonPatchOperation::ADD;
}

// Sets the base's type and metadata; returns the base.
pb::BaseEvent* Base(pb::BaseEvent* base, pb::EventType type,
                    const std::string& last_event_id) {
  base->set_type(type);
  if (!last_event_id.empty()) {
    (*base->mutable_metadata()->mutable_fields())["lastEventId"]
        .set_string_value(last_event_id);
  }
  return base;
}

}  // namespace

pb::Event AgUiEventToProto(const Json& event, const std::string& id) {
  pb::Event out;
  const std::string type = Str(event, "type");
  if (type == "RUN_STARTED") {
    auto* e = out.mutable_run_started();
    Base(e->mutable_base(), pb::RUN_STARTED, id);
    e->set_thread_id(Str(event, "threadId"));
    e->set_run_id(Str(event, "runId"));
  } else if (type == "RUN_FINISHED") {
    auto* e = out.mutable_run_finished();
    Base(e->mutable_base(), pb::RUN_FINISHED, id);
    e->set_thread_id(Str(event, "threadId"));
    e->set_run_id(Str(event, "runId"));
    if (event.contains("result"))
      *e->mutable_result() = ValueOf(event["result"]);
    if (event.contains("outcome") && event["outcome"].contains("type")) {
      e->set_outcome(event["outcome"]["type"].get<std::string>());
    }
  } else if (type == "RUN_ERROR") {
    auto* e = out.mutable_run_error();
    Base(e->mutable_base(), pb::RUN_ERROR, id);
    e->set_code(Str(event, "code"));
    e->set_message(Str(event, "message"));
  } else if (type == "STEP_STARTED") {
    auto* e = out.mutable_step_started();
    Base(e->mutable_base(), pb::STEP_STARTED, id);
    e->set_step_name(Str(event, "stepName"));
  } else if (type == "STEP_FINISHED") {
    auto* e = out.mutable_step_finished();
    Base(e->mutable_base(), pb::STEP_FINISHED, id);
    e->set_step_name(Str(event, "stepName"));
  } else if (type == "STATE_SNAPSHOT") {
    auto* e = out.mutable_state_snapshot();
    Base(e->mutable_base(), pb::STATE_SNAPSHOT, id);
    *e->mutable_snapshot() = ValueOf(event["snapshot"]);
  } else if (type == "STATE_DELTA") {
    auto* e = out.mutable_state_delta();
    Base(e->mutable_base(), pb::STATE_DELTA, id);
    for (const Json& op : event["delta"]) {
      auto* o = e->add_delta();
      o->set_op(OpOf(Str(op, "op")));
      o->set_path(Str(op, "path"));
      if (op.contains("from")) o->set_from(Str(op, "from"));
      if (op.contains("value")) *o->mutable_value() = ValueOf(op["value"]);
    }
  } else if (type == "TEXT_MESSAGE_START") {
    auto* e = out.mutable_text_message_start();
    Base(e->mutable_base(), pb::TEXT_MESSAGE_START, id);
    e->set_message_id(Str(event, "messageId"));
    e->set_role(Str(event, "role"));
  } else if (type == "TEXT_MESSAGE_CONTENT") {
    auto* e = out.mutable_text_message_content();
    Base(e->mutable_base(), pb::TEXT_MESSAGE_CONTENT, id);
    e->set_message_id(Str(event, "messageId"));
    e->set_delta(Str(event, "delta"));
  } else if (type == "TEXT_MESSAGE_END") {
    auto* e = out.mutable_text_message_end();
    Base(e->mutable_base(), pb::TEXT_MESSAGE_END, id);
    e->set_message_id(Str(event, "messageId"));
  } else if (type == "TOOL_CALL_START") {
    auto* e = out.mutable_tool_call_start();
    Base(e->mutable_base(), pb::TOOL_CALL_START, id);
    e->set_tool_call_id(Str(event, "toolCallId"));
    e->set_tool_call_name(Str(event, "toolCallName"));
  } else if (type == "TOOL_CALL_ARGS") {
    auto* e = out.mutable_tool_call_args();
    Base(e->mutable_base(), pb::TOOL_CALL_ARGS, id);
    e->set_tool_call_id(Str(event, "toolCallId"));
    e->set_delta(Str(event, "delta"));
  } else if (type == "TOOL_CALL_END") {
    auto* e = out.mutable_tool_call_end();
    Base(e->mutable_base(), pb::TOOL_CALL_END, id);
    e->set_tool_call_id(Str(event, "toolCallId"));
  } else if (type == "TOOL_CALL_RESULT") {
    auto* e = out.mutable_tool_call_result();
    Base(e->mutable_base(), pb::TOOL_CALL_RESULT, id);
    e->set_message_id(Str(event, "messageId"));
    e->set_tool_call_id(Str(event, "toolCallId"));
    e->set_content(Str(event, "content"));
    e->set_role(Str(event, "role"));
  } else if (type == "REASONING_START") {
    auto* e = out.mutable_reasoning_start();
    Base(e->mutable_base(), pb::REASONING_START, id);
    e->set_message_id(Str(event, "messageId"));
  } else if (type == "REASONING_MESSAGE_START") {
    auto* e = out.mutable_reasoning_message_start();
    Base(e->mutable_base(), pb::REASONING_MESSAGE_START, id);
    e->set_message_id(Str(event, "messageId"));
    e->set_role(Str(event, "role"));
  } else if (type == "REASONING_MESSAGE_CONTENT") {
    auto* e = out.mutable_reasoning_message_content();
    Base(e->mutable_base(), pb::REASONING_MESSAGE_CONTENT, id);
    e->set_message_id(Str(event, "messageId"));
    e->set_delta(Str(event, "delta"));
  } else if (type == "REASONING_MESSAGE_END") {
    auto* e = out.mutable_reasoning_message_end();
    Base(e->mutable_base(), pb::REASONING_MESSAGE_END, id);
    e->set_message_id(Str(event, "messageId"));
  } else if (type == "REASONING_END") {
    auto* e = out.mutable_reasoning_end();
    Base(e->mutable_base(), pb::REASONING_END, id);
    e->set_message_id(Str(event, "messageId"));
  } else if (type == "CUSTOM") {
    auto* e = out.mutable_custom();
    Base(e->mutable_base(), pb::CUSTOM, id);
    e->set_name(Str(event, "name"));
    if (event.contains("value")) *e->mutable_value() = ValueOf(event["value"]);
  }
  return out;
}

std::string AgUiProtoFrame(const Json& event, const std::string& id) {
  const std::string bytes = AgUiEventToProto(event, id).SerializeAsString();
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  std::string out;
  out.reserve(4 + bytes.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(bytes);
  return out;
}

}  // namespace agentstream::gateway::dialects
