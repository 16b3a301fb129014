// Process-level helpers every main needs: termination signals, the port
// file tests read to learn an ephemeral port, and this replica's name.
#ifndef AGENTSTREAM_COMMON_PROCESS_UTIL_H_
#define AGENTSTREAM_COMMON_PROCESS_UTIL_H_

#include <string>

#include "absl/status/status.h"

namespace agentstream {

// Blocks SIGINT and SIGTERM in the calling thread. Call first in main, before
// any thread starts, so that every thread inherits the mask and the signals
// are taken only by WaitForTerminationSignal(). Also ignores SIGPIPE.
void BlockTerminationSignals();

// For a serving process: turns off absl::Mutex's deadlock detection, which
// Debian's abseil build leaves on (it keeps a lock-order graph updated on
// every lock: 2-5% of each process's time under load, docs/BENCHMARKS.md).
// Tests keep it on, so lock-order cycles are still caught there. Also starts
// the thread that gives freed heap back to the system after a burst
// (memory_return.h).
void ConfigureServingRuntime();

// Blocks until SIGINT or SIGTERM arrives; returns the signal number.
int WaitForTerminationSignal();

// Writes `port` followed by a newline to `path` atomically (temp file and
// rename), so a reader never sees a partial file. No-op for an empty path.
absl::Status WritePortFile(const std::string& path, int port);

// This host's name (the container's in docker), or "localhost".
std::string Hostname();

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_PROCESS_UTIL_H_
