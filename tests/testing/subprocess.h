// Starts the real binaries for integration tests and ends them by PID.
//
// A Subprocess owns its child: the destructor sends SIGTERM, waits up to 5 s,
// then SIGKILLs. Output (stdout and stderr) goes to a log file the test can
// read. Not thread-safe; one owner.
#ifndef AGENTSTREAM_TESTS_TESTING_SUBPROCESS_H_
#define AGENTSTREAM_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentstream::testing {

class Subprocess final {
 public:
  struct Options {
    std::string binary;  // Absolute path, or a name under BinDir().
    std::vector<std::string> args;
    std::string log_path;          // Empty: inherit the test's stderr.
    std::vector<std::string> env;  // Extra "K=V" entries.
  };

  // The child gets SIGKILL if the spawning thread's process dies first
  // (PR_SET_PDEATHSIG), so a killed test leaves no server running.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(Options options);
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // Sends `sig` to the child (no-op once it has been reaped).
  void Signal(int sig);
  // Waits for the child to exit: its exit code (128+N for a signal), or
  // kDeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool Running();
  std::string ReadLog() const;
  const std::string& log_path() const { return options_.log_path; }

 private:
  Subprocess(Options options, pid_t pid)
      : options_(std::move(options)), pid_(pid) {}
  const Options options_;
  pid_t pid_;
  std::optional<int> exit_code_;
};

// The directory with the project's binaries (AGENTSTREAM_BIN_DIR, set by
// ctest), and the source tree (AGENTSTREAM_SOURCE_DIR).
std::string BinDir();
std::string SourceDir();
// A fresh directory under TMPDIR (or /tmp), unique per call, created by this
// call (mkdtemp). An error when it cannot be made: never a directory that
// already existed, since callers remove what they get.
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix);
// A loopback TCP port nothing listens on: bound to port 0, noted, closed.
// (A server object that binds without listening, e.g. httplib::Server's
// bind_to_any_port, leaves a socket that completes TCP handshakes: not a
// down peer.)
absl::StatusOr<int> UnusedLoopbackPort();
// Waits until `path` holds a port number written by --port-file.
absl::StatusOr<int> WaitForPortFile(const std::string& path,
                                    absl::Duration timeout);
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_SUBPROCESS_H_
