#include "gateway/update_types.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/update_json.h"
#include "google/protobuf/descriptor.h"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;

struct Kinds {
  std::vector<std::string> names;                 // Oneof order.
  std::vector<int> numbers;                       // Same order.
  absl::flat_hash_map<std::string, int> by_name;  // Name -> field number.
};

// The kind oneof's fields, named as the wire names them (an Update with
// each field set, through UpdateType: the one place names are decided).
const Kinds& AllKinds() {
  static const Kinds* kinds = [] {
    auto* k = new Kinds;
    const google::protobuf::OneofDescriptor* oneof =
        Update::descriptor()->FindOneofByName("kind");
    const google::protobuf::Reflection* reflection = Update::GetReflection();
    for (int i = 0; oneof != nullptr && i < oneof->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = oneof->field(i);
      Update update;
      reflection->MutableMessage(&update, field);
      std::string name = UpdateType(update);
      // Field numbers index a 64-bit mask.
      if (field->number() >= 64) continue;
      k->by_name.emplace(name, field->number());
      k->names.push_back(std::move(name));
      k->numbers.push_back(field->number());
    }
    return k;
  }();
  return *kinds;
}

bool AlwaysSent(const Update& update) {
  return update.kind_case() == Update::kError ||
         update.kind_case() == Update::kTimeout;
}

}  // namespace

UpdateTypeSet UpdateTypeSet::All() { return UpdateTypeSet(); }

bool UpdateTypeSet::Sends(const Update& update) const {
  if (all_ || AlwaysSent(update)) return true;
  const int number = static_cast<int>(update.kind_case());
  return number > 0 && number < 64 && (bits_ >> number & 1) != 0;
}

std::vector<std::string> UpdateTypeSet::Names() const {
  std::vector<std::string> names;
  if (all_) return names;
  const Kinds& kinds = AllKinds();
  for (size_t i = 0; i < kinds.names.size(); ++i) {
    if ((bits_ >> kinds.numbers[i] & 1) != 0) names.push_back(kinds.names[i]);
  }
  return names;
}

absl::StatusOr<UpdateTypeSet> UpdateTypeSet::FromNames(
    const std::vector<std::string_view>& names) {
  if (names.size() > kMaxTypeNames) {
    return absl::InvalidArgumentError(absl::StrCat(
        "types names ", names.size(), " types; at most ", kMaxTypeNames));
  }
  const Kinds& kinds = AllKinds();
  UpdateTypeSet set;
  set.all_ = false;
  std::vector<std::string> unknown;
  for (std::string_view name : names) {
    auto it = kinds.by_name.find(absl::string_view(name.data(), name.size()));
    if (it == kinds.by_name.end()) {
      if (unknown.size() < 8) unknown.emplace_back(name.substr(0, 64));
      continue;
    }
    set.bits_ |= uint64_t{1} << it->second;
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown update type", unknown.size() > 1 ? "s" : "",
                     " in types: ", absl::StrJoin(unknown, ", "),
                     " (known: ", absl::StrJoin(kinds.names, ", "), ")"));
  }
  if (set.bits_ == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "types names no update type (known: ", absl::StrJoin(kinds.names, ", "),
        ")"));
  }
  return set;
}

absl::StatusOr<UpdateTypeSet> ParseTypeList(std::string_view text) {
  std::vector<std::string_view> names;
  for (absl::string_view piece :
       absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    piece = absl::StripAsciiWhitespace(piece);
    if (!piece.empty()) names.emplace_back(piece.data(), piece.size());
    if (names.size() > kMaxTypeNames) break;
  }
  return UpdateTypeSet::FromNames(names);
}

absl::StatusOr<UpdateTypeSet> ParseTypesQuery(
    const std::multimap<std::string, std::string>& params) {
  auto it = params.find("types");
  if (it == params.end()) return UpdateTypeSet::All();
  return ParseTypeList(it->second);
}

const std::vector<std::string>& UpdateTypeNames() { return AllKinds().names; }

}  // namespace agentstream::gateway
