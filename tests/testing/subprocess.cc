#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace agentstream::testing {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(Options options) {
  if (options.binary.find('/') == std::string::npos) {
    options.binary = absl::StrCat(BinDir(), "/", options.binary);
  }
  if (access(options.binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("not executable: ", options.binary));
  }
  std::vector<std::string> argv_store;
  argv_store.push_back(options.binary);
  for (const auto& a : options.args) argv_store.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.push_back(*e);
  for (const auto& e : options.env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!options.log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO,
                                     options.log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  // The child starts with default signal handling and an empty mask, whatever
  // the test process has set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, options.binary.c_str(), &actions, &attr,
                       argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("posix_spawn ", options.binary, ": ", std::strerror(rc)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(std::move(options), pid));
}

Subprocess::~Subprocess() {
  if (exit_code_.has_value()) return;
  Signal(SIGTERM);
  if (!Wait(absl::Seconds(5)).ok()) {
    Signal(SIGKILL);
    (void)Wait(absl::Seconds(5));
  }
}

void Subprocess::Signal(int sig) {
  if (!exit_code_.has_value() && pid_ > 0) kill(pid_, sig);
}

bool Subprocess::Running() {
  if (exit_code_.has_value()) return false;
  return !Wait(absl::ZeroDuration()).ok();
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  if (exit_code_.has_value()) return *exit_code_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return *exit_code_;
    }
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string Subprocess::ReadLog() const {
  return ReadFileOrEmpty(options_.log_path);
}

std::string BinDir() {
  const char* dir = std::getenv("AGENTSTREAM_BIN_DIR");
  return dir != nullptr ? dir : "./bin";
}

std::string SourceDir() {
  const char* dir = std::getenv("AGENTSTREAM_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string templ =
      absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return "/tmp";
  return templ;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<int> WaitForPortFile(const std::string& path,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::string text(absl::StripAsciiWhitespace(ReadFileOrEmpty(path)));
    int port = 0;
    if (!text.empty() && absl::SimpleAtoi(text, &port) && port > 0) {
      return port;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no port in ", path, " after ", absl::FormatDuration(timeout)));
}

}  // namespace agentstream::testing
