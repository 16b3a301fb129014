#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "orchestrator/run_store.h"

namespace agentstream::orchestrator {

namespace {

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool FromJson(const nlohmann::json& json, google::protobuf::Message* message) {
  return google::protobuf::util::JsonStringToMessage(json.dump(), message).ok();
}

}  // namespace

std::string EncodeRunRecord(const RunRecord& record) {
  nlohmann::json participants = nlohmann::json::array();
  for (const RunRecord::Participant& p : record.participants) {
    participants.push_back(
        {{"card", nlohmann::json::parse(ToJson(p.card))}, {"task", p.task}});
  }
  nlohmann::json json = {
      {"request_id", record.request_id},
      {"principal", record.principal},
      {"question", record.question},
      {"options", nlohmann::json::parse(ToJson(record.options))},
      {"reasoning", record.reasoning},
      {"participants", std::move(participants)},
      {"on_disconnect", static_cast<int>(record.on_disconnect)},
  };
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<RunRecord> DecodeRunRecord(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  auto bad = [](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("a stored run record is malformed: ", std::string(why)));
  };
  if (!json.is_object()) return bad("not a JSON object");
  RunRecord record;
  try {
    record.request_id = json.at("request_id").get<std::string>();
    record.principal = json.at("principal").get<std::string>();
    record.question = json.at("question").get<std::string>();
    record.reasoning = json.at("reasoning").get<std::string>();
    const int policy = json.at("on_disconnect").get<int>();
    if (!agentstream::v1::DisconnectPolicy_IsValid(policy)) {
      return bad("on_disconnect");
    }
    record.on_disconnect =
        static_cast<agentstream::v1::DisconnectPolicy>(policy);
    if (!FromJson(json.at("options"), &record.options)) return bad("options");
    for (const nlohmann::json& p : json.at("participants")) {
      RunRecord::Participant participant;
      if (!FromJson(p.at("card"), &participant.card)) return bad("card");
      participant.task = p.at("task").get<std::string>();
      record.participants.push_back(std::move(participant));
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  if (record.request_id.empty()) return bad("no request_id");
  return record;
}

}  // namespace agentstream::orchestrator
