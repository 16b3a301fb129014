// Fuzz target: JSON <-> google.protobuf.Struct (common/update_json.h).
//
// Input: JSON text. Whatever nlohmann accepts is converted with JsonToValue
// (and JsonToStruct when it is an object), written to the protobuf wire and
// parsed back, then converted back with ValueToJson/StructToJson. Asserted:
//   - JsonToStruct of a non-object is empty;
//   - up to kMaxOptionsDepth levels of nesting (the deepest JSON the gateway
//     lets in, gateway/chat_request.h) the Value parses back from the wire
//     equal, as a process receiving it would parse it;
//   - the JSON that comes back is the input with every number read as a
//     double: whole numbers under 9e15 come back as integers, other finite
//     numbers as doubles, and non-finite ones (1e999) as null; strings,
//     booleans, nulls, keys and nesting are unchanged;
//   - AppendUpdateJson writes exactly what UpdateToJson's document dumps,
//     with the Struct as a partial result.
// Deeper inputs are converted too (no crash, same JSON back), up to
// kMaxFuzzDepth: the conversions recurse, and their callers bound the depth.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/update_json.h"
#include "gateway/chat_request.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_input.h"

namespace {

// Deeper than any caller allows, shallow enough for the recursion.
constexpr int kMaxFuzzDepth = 256;

int TreeDepth(const nlohmann::json& j) {
  if (!j.is_structured()) return 0;
  int deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, TreeDepth(child));
  return deepest + 1;
}

// The documented number rule, written out.
nlohmann::json Expected(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, value] : j.items()) out[key] = Expected(value);
      return out;
    }
    case nlohmann::json::value_t::array: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& value : j) out.push_back(Expected(value));
      return out;
    }
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: {
      const double d = j.get<double>();
      if (!std::isfinite(d)) return nullptr;
      if (std::trunc(d) == d && std::fabs(d) < 9.0e15) {
        return static_cast<int64_t>(d);
      }
      return d;
    }
    default:
      return j;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  const int depth = TreeDepth(j);
  if (depth > kMaxFuzzDepth) return 0;

  const google::protobuf::Value value = agentstream::JsonToValue(j);
  const google::protobuf::Struct s = agentstream::JsonToStruct(j);
  if (!j.is_object()) {
    FUZZ_CHECK(s.fields_size() == 0, "a non-object gave fields");
  } else {
    FUZZ_CHECK(static_cast<size_t>(s.fields_size()) == j.size(), "field count");
    FUZZ_CHECK(agentstream::StructToJson(s).dump() == Expected(j).dump(),
               "StructToJson(JsonToStruct(j))");
  }

  // Compared as text: nlohmann compares 1 and 1.0 as equal, the wire does
  // not.
  const nlohmann::json back = agentstream::ValueToJson(value);
  FUZZ_CHECK(back.dump() == Expected(j).dump(),
             absl::StrCat("ValueToJson(JsonToValue(j)) = ", back.dump(),
                          ", expected ", Expected(j).dump()));

  // The gateway's direct encoder writes what the document path dumps, for
  // the same payload in a partial result.
  {
    agentstream::v1::Update update;
    update.set_seq(1);
    *update.mutable_partial_result()->mutable_result() = s;
    nlohmann::ordered_json doc = agentstream::UpdateToJson(update);
    doc["request_id"] = "rid";
    std::string direct;
    agentstream::AppendUpdateJson(update, "rid", &direct);
    const std::string dumped =
        doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    FUZZ_CHECK(direct == dumped, absl::StrCat("AppendUpdateJson = ", direct,
                                              ", expected ", dumped));
  }

  if (depth <= agentstream::gateway::kMaxOptionsDepth) {
    std::string wire;
    FUZZ_CHECK(value.SerializeToString(&wire), "Value does not serialize");
    google::protobuf::Value parsed;
    FUZZ_CHECK(parsed.ParseFromString(wire),
               absl::StrCat("the Value (depth ", depth,
                            ") does not parse back from the wire"));
    FUZZ_CHECK(
        google::protobuf::util::MessageDifferencer::Equals(value, parsed),
        "Value changed on the wire");
    FUZZ_CHECK(agentstream::ValueToJson(parsed).dump() == back.dump(),
               "JSON changed on the wire");
  }
  return 0;
}
