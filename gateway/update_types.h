// Selective updates (docs/GATEWAY.md, "Selective updates"): the update types
// a client asked for with `types=progress,partial_result,...` (query) or
// `"types": [...]` / `"types": "a,b"` (POST body). A stream sends only
// updates of those types; `error` and `timeout` updates, and the gateway's
// own `connected`, `done` and `error` events, always go. Ids stay
// `<request_id>:<seq>` of the run, so a filtered stream has holes in its
// seqs and resumes exactly as an unfiltered one.
//
// The names are the wire's `type` values (common/update_json.h, UpdateType):
// one list, read from the Update message's `kind` oneof.
//
// Pure; thread-safe.
#ifndef AGENTSTREAM_GATEWAY_UPDATE_TYPES_H_
#define AGENTSTREAM_GATEWAY_UPDATE_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agentstream/v1/update.pb.h"

namespace agentstream::gateway {

// At most this many names in one `types` (the kinds are fewer; repeats and
// garbage past it are refused rather than parsed).
inline constexpr size_t kMaxTypeNames = 64;

class UpdateTypeSet {
 public:
  // Every type (no `types` given).
  static UpdateTypeSet All();

  // Whether a stream with this set sends `update` (always, for `error` and
  // `timeout`).
  bool Sends(const agentstream::v1::Update& update) const;
  bool all() const { return all_; }
  // The names asked for, in the wire's order (empty when all()).
  std::vector<std::string> Names() const;

  // Builds a set from names; kInvalidArgument naming every unknown one,
  // or when there is none at all.
  static absl::StatusOr<UpdateTypeSet> FromNames(
      const std::vector<std::string_view>& names);

 private:
  bool all_ = true;
  uint64_t bits_ = 0;  // 1 << kind field number.
};

// "a,b,c" (spaces around names ignored) -> FromNames.
absl::StatusOr<UpdateTypeSet> ParseTypeList(std::string_view text);

// The `types` query parameter: All() when absent.
absl::StatusOr<UpdateTypeSet> ParseTypesQuery(
    const std::multimap<std::string, std::string>& params);

// Every update type's wire name, in the oneof's order (for docs and errors).
const std::vector<std::string>& UpdateTypeNames();

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_UPDATE_TYPES_H_
