#include "tests/testing/redis_server.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/loopback.h"

namespace agentstream::testing {
namespace {

constexpr char kRedisServer[] = "/usr/bin/redis-server";
constexpr absl::Duration kReadyTimeout = absl::Seconds(10);
constexpr char kReadyLine[] = "Ready to accept connections";

// One PING over a fresh raw connection: true when the server answers it
// (+PONG, or -NOAUTH from a server with a password; not -LOADING).
bool AnswersPing(int port) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  bool ok = false;
  if (SendAll(fd, "PING\r\n")) {
    const std::string reply = ReadUntil(fd, "\r\n", absl::Milliseconds(500));
    ok = absl::StartsWith(reply, "+PONG") || absl::StartsWith(reply, "-NOAUTH");
  }
  close(fd);
  return ok;
}

void RemoveDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start() {
  return Start(Options());
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    Options options) {
  std::string dir = options.dir;
  const bool own_dir = dir.empty();
  if (own_dir) {
    absl::StatusOr<std::string> made = MakeTempDir("agentstream_redis_");
    if (!made.ok()) return made.status();
    dir = *made;
  }
  // A free port can be taken between the look and redis' bind: with no
  // port asked for, a server that exits at once gets another one.
  const int attempts = options.port == 0 ? 3 : 1;
  absl::Status last;
  for (int i = 0; i < attempts; ++i) {
    int port = options.port;
    if (port == 0) {
      absl::StatusOr<int> free_port = UnusedLoopbackPort();
      if (!free_port.ok()) return free_port.status();
      port = *free_port;
    }
    std::unique_ptr<RedisServer> server(
        new RedisServer(options, dir, /*own_dir=*/false, port));
    last = server->Launch();
    if (last.ok()) {
      server->own_dir_ = own_dir;
      return server;
    }
  }
  if (own_dir) RemoveDir(dir);
  return last;
}

RedisServer::~RedisServer() {
  process_.reset();  // SIGTERM, then SIGKILL after 5 s.
  if (own_dir_) RemoveDir(dir_);
}

std::string RedisServer::url() const {
  return absl::StrCat("redis://127.0.0.1:", port_);
}

pid_t RedisServer::pid() const {
  return process_ != nullptr ? process_->pid() : 0;
}

absl::Status RedisServer::Launch() {
  Subprocess::Options o;
  o.binary = kRedisServer;
  o.args = {"--bind",
            "127.0.0.1",
            "--port",
            absl::StrCat(port_),
            "--dir",
            dir_,
            "--save",
            "",
            "--appendonly",
            options_.appendonly ? "yes" : "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes"};
  o.args.insert(o.args.end(), options_.extra_args.begin(),
                options_.extra_args.end());
  o.log_path = absl::StrCat(dir_, "/redis-server.log");
  // Ready: its own log says so (after an AOF replay), and the port answers
  // PING (a PING answer alone may come from another server on the port).
  const auto ready_lines = [this] {
    const std::string log = ReadLog();
    size_t n = 0;
    for (size_t at = log.find(kReadyLine); at != std::string::npos;
         at = log.find(kReadyLine, at + 1)) {
      ++n;
    }
    return n;
  };
  const size_t ready_before = ready_lines();
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(o);
  if (!p.ok()) return p.status();
  process_ = *std::move(p);
  const absl::Time deadline = absl::Now() + kReadyTimeout;
  while (true) {
    if (!process_->Running()) {
      const absl::StatusOr<int> code = process_->Wait(absl::ZeroDuration());
      process_.reset();
      return absl::UnavailableError(absl::StrCat(
          "redis-server on port ", port_, " exited (",
          code.ok() ? absl::StrCat(*code) : code.status().ToString(),
          ") before answering PING; its log:\n", ReadLog()));
    }
    if (ready_lines() > ready_before && AnswersPing(port_)) {
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      process_.reset();
      return absl::DeadlineExceededError(absl::StrCat(
          "redis-server on port ", port_, " did not answer PING within ",
          absl::FormatDuration(kReadyTimeout), "; its log:\n", ReadLog()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status RedisServer::Stop(int signal, absl::Duration timeout) {
  if (process_ == nullptr || !process_->Running()) return absl::OkStatus();
  process_->Signal(signal);
  absl::StatusOr<int> code = process_->Wait(timeout);
  if (!code.ok()) return code.status();
  return absl::OkStatus();
}

absl::Status RedisServer::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  process_.reset();
  return Launch();
}

std::string RedisServer::ReadLog() const {
  return ReadFileOrEmpty(absl::StrCat(dir_, "/redis-server.log"));
}

}  // namespace agentstream::testing
