// Run ids: the key that finds a run (Attach, resume, Cancel, the SSE event
// ids `<run id>:<seq>`). They must be unguessable, since knowing one is half
// of reaching a run (the other half is owning it: docs/SECURITY.md):
// "run_" and 32 lower-case hex digits, 128 bits from the kernel's CSPRNG
// (getrandom(2)). Thread-safe.
#ifndef AGENTSTREAM_COMMON_RUN_ID_H_
#define AGENTSTREAM_COMMON_RUN_ID_H_

#include <string>

namespace agentstream {

inline constexpr size_t kRunIdRandomBytes = 16;

std::string NewRunId();

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_RUN_ID_H_
