// The audit log (docs/SECURITY.md, "What is logged"): one line per run
// start, cancel and refused access, written whatever the --log-level, as
//
//   <time> I <component> ... audit
//   {"event":"run_start","principal":"alice",...}
//
// so that a collector can pick the lines by the word `audit` and parse the
// JSON after it. Callers never pass a token or a secret. Thread-safe.
#ifndef AGENTSTREAM_COMMON_AUDIT_H_
#define AGENTSTREAM_COMMON_AUDIT_H_

#include <string_view>

#include "nlohmann/json.hpp"

namespace agentstream {

// `fields` (an object) is written after "event"; strings are JSON-escaped,
// so no field can forge another line.
void Audit(std::string_view event, const nlohmann::json& fields);

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_AUDIT_H_
