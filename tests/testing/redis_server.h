// A real redis-server (Debian's /usr/bin/redis-server) for tests, on a
// loopback port, ended by PID (a Subprocess: SIGTERM, then SIGKILL; it also
// dies with the test process).
//
// Started with --bind 127.0.0.1, --port, --dir, --save "" (no RDB
// snapshots), --appendonly yes|no (--appendfsync everysec), --daemonize no,
// --protected-mode yes, then Options::extra_args (e.g. "--requirepass",
// "secret"). Ready: the server's log says "Ready to accept connections"
// (once more than before this start) and a PING over a raw socket is
// answered "+PONG" (or "-NOAUTH", which a server with a password gives): no
// dependency on the orchestrator's Redis client, which this helper tests.
// Restart() starts the server again on the same port and dir, so the AOF is
// replayed.
//
// Not thread-safe; one owner.
#ifndef AGENTSTREAM_TESTS_TESTING_REDIS_SERVER_H_
#define AGENTSTREAM_TESTS_TESTING_REDIS_SERVER_H_

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/subprocess.h"

namespace agentstream::testing {

class RedisServer final {
 public:
  struct Options {
    bool appendonly = true;
    std::string dir;  // Empty: a fresh MakeTempDir, removed at the end.
    int port = 0;     // 0: a free loopback port.
    std::vector<std::string> extra_args;
  };

  // Waits (deadline 10 s) until the server answers PING; an error with the
  // server's log when it exits or does not answer.
  // (Two overloads, not a default argument: GCC cannot default a nested
  // struct with member initializers inside its class.)
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start();
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(Options options);
  ~RedisServer();  // SIGTERM by PID, then SIGKILL.

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // "redis://127.0.0.1:PORT"
  // The current process's pid (a new one after Restart); 0 once stopped.
  pid_t pid() const;
  const std::string& dir() const { return dir_; }
  // Sends `signal` and waits for the exit (kDeadlineExceeded, the server
  // still running, when it does not exit within `timeout`). OK when it is
  // not running.
  absl::Status Stop(int signal = SIGTERM,
                    absl::Duration timeout = absl::Seconds(10));
  // Stops the server if it runs, starts it again on the same port and dir
  // (the AOF is replayed) and waits for PING.
  absl::Status Restart();
  // The server's log over all its starts.
  std::string ReadLog() const;

 private:
  RedisServer(Options options, std::string dir, bool own_dir, int port)
      : options_(std::move(options)),
        dir_(std::move(dir)),
        own_dir_(own_dir),
        port_(port) {}
  // Starts the process and waits for PING (10 s).
  absl::Status Launch();

  const Options options_;
  const std::string dir_;
  bool own_dir_;  // Removed by the destructor.
  const int port_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_REDIS_SERVER_H_
