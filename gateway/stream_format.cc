#include "gateway/stream_format.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace agentstream::gateway {
namespace {

using Params = std::multimap<std::string, std::string>;

absl::StatusOr<HeartbeatStyle> ParseHeartbeat(std::string_view value) {
  if (value.empty() || value == "comment") return HeartbeatStyle::kComment;
  if (value == "event") return HeartbeatStyle::kEvent;
  return absl::InvalidArgumentError(
      "heartbeat must be \"event\" or \"comment\"");
}

// An integer parameter within [1, max]; `name` for the error.
absl::StatusOr<int64_t> BoundedInt(const char* name, std::string_view text,
                                   int64_t max) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &value) ||
      value < 1 || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be an integer from 1 to ", max));
  }
  return value;
}

absl::StatusOr<int64_t> BoundedJsonInt(const char* name,
                                       const nlohmann::json& value,
                                       int64_t max) {
  if (!value.is_number_integer() && !value.is_number_unsigned()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be an integer from 1 to ", max));
  }
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v < 1 || v > static_cast<uint64_t>(max)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be an integer from 1 to ", max));
    }
    return static_cast<int64_t>(v);
  }
  const int64_t v = value.get<int64_t>();
  if (v < 1 || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be an integer from 1 to ", max));
  }
  return v;
}

absl::StatusOr<bool> ParseFlag(std::string_view text) {
  if (text == "1" || text == "true") return true;
  if (text == "0" || text == "false") return false;
  return absl::InvalidArgumentError("compress must be 1, 0, true or false");
}

// Either parameter turns batching on; the other takes its default.
BatchSpec MakeBatch(std::optional<int64_t> max, std::optional<int64_t> ms) {
  BatchSpec batch;
  if (!max.has_value() && !ms.has_value()) return batch;
  batch.max_updates = static_cast<int>(max.value_or(kDefaultBatchMax));
  batch.max_wait = absl::Milliseconds(ms.value_or(kDefaultBatchMs));
  return batch;
}

}  // namespace

absl::StatusOr<HeartbeatStyle> ParseHeartbeatQuery(const Params& params) {
  auto hb = params.find("heartbeat");
  if (hb == params.end()) return HeartbeatStyle::kComment;
  return ParseHeartbeat(hb->second);
}

absl::StatusOr<UpdateTypeSet> ParseTypesJson(const nlohmann::json& value) {
  if (value.is_string()) {
    return ParseTypeList(value.get_ref<const std::string&>());
  }
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        "types must be an array of strings or a comma-separated string");
  }
  if (value.size() > kMaxTypeNames) {
    return absl::InvalidArgumentError(absl::StrCat(
        "types names ", value.size(), " types; at most ", kMaxTypeNames));
  }
  std::vector<std::string_view> names;
  for (const auto& name : value) {
    if (!name.is_string()) {
      return absl::InvalidArgumentError(
          "types must be an array of strings or a comma-separated string");
    }
    names.push_back(name.get_ref<const std::string&>());
  }
  return UpdateTypeSet::FromNames(names);
}

absl::StatusOr<StreamFormat> ParseStreamFormatQuery(const Params& params) {
  StreamFormat format;
  auto heartbeat = ParseHeartbeatQuery(params);
  if (!heartbeat.ok()) return heartbeat.status();
  format.heartbeat = *heartbeat;
  auto types = ParseTypesQuery(params);
  if (!types.ok()) return types.status();
  format.types = *types;
  std::optional<int64_t> max, ms;
  if (auto it = params.find("batch_max"); it != params.end()) {
    auto v = BoundedInt("batch_max", it->second, kMaxBatchMax);
    if (!v.ok()) return v.status();
    max = *v;
  }
  if (auto it = params.find("batch_ms"); it != params.end()) {
    auto v = BoundedInt("batch_ms", it->second, kMaxBatchMs);
    if (!v.ok()) return v.status();
    ms = *v;
  }
  format.batch = MakeBatch(max, ms);
  if (auto it = params.find("compress"); it != params.end()) {
    auto v = ParseFlag(it->second);
    if (!v.ok()) return v.status();
    format.compress = *v;
  }
  return format;
}

absl::Status MergeStreamFormatJson(const nlohmann::json& body,
                                   StreamFormat* format) {
  if (auto it = body.find("heartbeat"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError("heartbeat must be a string");
    }
    auto style = ParseHeartbeat(it->get_ref<const std::string&>());
    if (!style.ok()) return style.status();
    format->heartbeat = *style;
  }
  if (auto it = body.find("types"); it != body.end() && !it->is_null()) {
    auto types = ParseTypesJson(*it);
    if (!types.ok()) return types.status();
    format->types = *types;
  }
  std::optional<int64_t> max, ms;
  if (auto it = body.find("batch_max"); it != body.end() && !it->is_null()) {
    auto v = BoundedJsonInt("batch_max", *it, kMaxBatchMax);
    if (!v.ok()) return v.status();
    max = *v;
  }
  if (auto it = body.find("batch_ms"); it != body.end() && !it->is_null()) {
    auto v = BoundedJsonInt("batch_ms", *it, kMaxBatchMs);
    if (!v.ok()) return v.status();
    ms = *v;
  }
  if (max.has_value() || ms.has_value()) format->batch = MakeBatch(max, ms);
  if (auto it = body.find("compress"); it != body.end() && !it->is_null()) {
    if (it->is_boolean()) {
      format->compress = it->get<bool>();
    } else if (it->is_number_integer() && (*it == 0 || *it == 1)) {
      format->compress = *it == 1;
    } else {
      return absl::InvalidArgumentError("compress must be true, false, 1 or 0");
    }
  }
  return absl::OkStatus();
}

}  // namespace agentstream::gateway
