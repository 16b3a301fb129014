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
#include <utility>
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

// A MakeTempDir directory owned by a scope (RAII): removed with everything
// in it when the object is destroyed or Remove() is called, so a test leaves
// nothing under TMPDIR however it returns (an ASSERT, an early return, an
// exception). Kept instead, and its path printed on stderr, when the current
// GoogleTest test (or, outside a test, the test suite) has failed, or when
// AGENTSTREAM_KEEP_TEST_DIRS is set: the logs and files in it are what one
// debugs with. Declare it before whatever writes into it (a Subprocess
// logging there) so that it goes last. Movable, not copyable; a
// default-constructed or moved-from one owns nothing.
class ScopedTempDir final {
 public:
  // A fresh directory TMPDIR/<prefix>XXXXXX (MakeTempDir).
  static absl::StatusOr<ScopedTempDir> Make(const std::string& prefix);

  ScopedTempDir() = default;
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir() { Remove(); }

  // The directory (empty when nothing is owned).
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const;
  // Removes the directory now (or keeps it, as the destructor would) and
  // owns nothing afterwards.
  void Remove();

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};
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
