// Conversions between the contract's protobuf types and JSON (nlohmann):
// google.protobuf.Struct <-> JSON objects, and an Update to the flat JSON
// object the SSE wire carries (docs/GATEWAY.md, "The wire"):
//
//   {"type":"progress","request_id":"req_1","seq":7,"emitted_at_ns":...,
//    "specialist":"DataAnalyst","progress":65,"current_action":"..."}
//
// Keys keep the wire's order (an ordered_json): `type`, `request_id`, `seq`,
// `specialist`, `instance`, `emitted_at_ns`, then the kind's own fields;
// enums are lower-case words ("analyzing", "ok", "continuing"). Pure
// functions, thread-safe.
#ifndef AGENTSTREAM_COMMON_UPDATE_JSON_H_
#define AGENTSTREAM_COMMON_UPDATE_JSON_H_

#include <string>
#include <string_view>

#include "agentstream/v1/update.pb.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace agentstream {

nlohmann::json StructToJson(const google::protobuf::Struct& s);
nlohmann::json ValueToJson(const google::protobuf::Value& v);
// A non-object `j` yields an empty Struct.
google::protobuf::Struct JsonToStruct(const nlohmann::json& j);
google::protobuf::Value JsonToValue(const nlohmann::json& j);

// The `type` of an update: "status", "progress", ... ("unknown" if unset).
std::string UpdateType(const agentstream::v1::Update& update);
nlohmann::ordered_json UpdateToJson(const agentstream::v1::Update& update);

// The same text as UpdateToJson(update) with `request_id` in place of the
// update's own, as nlohmann dumps it (compact, invalid UTF-8 replaced by
// U+FFFD), appended to `out` without building a JSON document: the gateway
// encodes every update it streams once, with this.
void AppendUpdateJson(const agentstream::v1::Update& update,
                      std::string_view request_id, std::string* out);

std::string RunStatusName(agentstream::v1::RunStatus status);
std::string OutcomeName(agentstream::v1::Outcome outcome);
std::string TimeoutActionName(agentstream::v1::TimeoutAction action);

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_UPDATE_JSON_H_
