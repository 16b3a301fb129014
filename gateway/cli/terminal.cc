#include "gateway/cli/terminal.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "absl/strings/ascii.h"

namespace agentstream::cli {
namespace {

std::atomic<int> g_sigints{0};

void OnSigint(int) { g_sigints.fetch_add(1, std::memory_order_relaxed); }

void WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void InstallSigintHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // No SA_RESTART: see the header.
  sigaction(SIGINT, &sa, nullptr);
}

int SigintCount() { return g_sigints.load(std::memory_order_relaxed); }

int TerminalColumns(int fd) {
  winsize ws = {};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

int TerminalRows(int fd) {
  winsize ws = {};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return 24;
}

Answer AskYesNo(std::string_view question) {
  const int before = SigintCount();
  WriteAll(STDERR_FILENO, question);
  std::string line;
  while (true) {
    char c = 0;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) {
      if (SigintCount() != before) {
        WriteAll(STDERR_FILENO, "\n");
        return Answer::kInterrupted;
      }
      continue;
    }
    if (n <= 0 || c == '\n') break;
    line.push_back(c);
  }
  const std::string word =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(line));
  return word == "y" || word == "yes" ? Answer::kYes : Answer::kNo;
}

}  // namespace agentstream::cli
