#include "gateway/auth/token_command.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/flags.h"
#include "gateway/auth/token_file.h"

namespace agentstream::gateway::auth {
namespace {

constexpr char kUsage[] =
    "usage: gateway token add --file FILE --name NAME [--scope S]...\n"
    "       gateway token list --file FILE\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "gateway token: %s\n", message.c_str());
  return 1;
}

std::string Errno(const std::string& path) {
  return path + ": " + std::strerror(errno);
}

// The whole of an open file, at most kMaxTokenFileBytes.
bool ReadAll(int fd, std::string* out) {
  char buf[16384];
  off_t at = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    if (out->size() + static_cast<size_t>(n) > kMaxTokenFileBytes) {
      errno = EFBIG;
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
    at += n;
  }
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

int Add(const std::string& path, const std::string& name,
        const std::vector<std::string>& scopes) {
  // Checks the name and scopes before touching the file.
  absl::StatusOr<NewToken> token = MakeToken(name, scopes);
  if (!token.ok()) return Fail(std::string(token.status().message()));
  // O_CREAT's mode applies only when the file is made: an existing file
  // keeps its own (the operator's choice).
  const int fd =
      ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(Errno(path));
  // Two adds at once must not interleave (the gateway only reads).
  if (::flock(fd, LOCK_EX) != 0) {
    const std::string why = Errno(path);
    ::close(fd);
    return Fail(why);
  }
  std::string contents;
  if (!ReadAll(fd, &contents)) {
    const std::string why = Errno(path);
    ::close(fd);
    return Fail(why);
  }
  absl::StatusOr<TokenTable> table = ParseTokenFile(contents);
  if (!table.ok()) {
    ::close(fd);
    return Fail(path + ": " + std::string(table.status().message()) +
                " (fix it before adding)");
  }
  const size_t id_hex = 2 * kTokenIdBytes;
  // A 64-bit id that is already there: draw again (practically never).
  while (token.ok() && table->by_id.contains(token->line.substr(0, id_hex))) {
    token = MakeToken(name, scopes);
  }
  if (!token.ok()) {
    ::close(fd);
    return Fail(std::string(token.status().message()));
  }
  // A last line without its line break gets one first.
  const bool needs_break = !contents.empty() && contents.back() != '\n';
  const bool written = (!needs_break || WriteAll(fd, "\n")) &&
                       WriteAll(fd, token->line) && ::fsync(fd) == 0;
  const std::string why = Errno(path);
  ::close(fd);
  if (!written) return Fail(why);
  std::fprintf(stdout, "%s\n", token->token.c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "gateway token: added %s (id %s) to %s; the token above is "
               "shown only now\n",
               name.c_str(), token->line.substr(0, id_hex).c_str(),
               path.c_str());
  return 0;
}

int List(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(Errno(path));
  std::string contents;
  const bool read = ReadAll(fd, &contents);
  const std::string why = Errno(path);
  ::close(fd);
  if (!read) return Fail(why);
  absl::StatusOr<TokenTable> table = ParseTokenFile(contents);
  if (!table.ok()) {
    return Fail(path + ": " + std::string(table.status().message()));
  }
  std::vector<const TokenEntry*> entries;
  for (const auto& [id, e] : table->by_id) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(),
            [](const TokenEntry* a, const TokenEntry* b) {
              return a->line < b->line;
            });
  for (const TokenEntry* e : entries) {
    std::string scopes;
    for (const std::string& s : e->scopes) {
      scopes += (scopes.empty() ? "" : ",") + s;
    }
    std::fprintf(stdout, "%s %s %s\n", e->id.c_str(), e->name.c_str(),
                 scopes.empty() ? "-" : scopes.c_str());
  }
  return 0;
}

}  // namespace

int RunTokenCommand(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view sub = argv[1];
  if (sub == "-h" || sub == "--help" || sub == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (sub != "add" && sub != "list") {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string file;
  std::string name;
  std::vector<std::string> scopes;
  FlagSet flags(std::string("gateway token ") + std::string(sub),
                sub == "add" ? "Appends a token entry to FILE (made with "
                               "mode 0600) and prints the token once."
                             : "Lists FILE's entries: id, name, scopes.");
  flags.String("file", &file, "The token file (--auth-token-file).");
  if (sub == "add") {
    flags.String("name", &name, "The principal the token stands for.");
    flags.Repeated("scope", &scopes, "A scope the token grants.");
  }
  const absl::Status parsed = flags.Parse(argc - 1, argv + 1);
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  if (!parsed.ok() || !flags.positional().empty() || file.empty() ||
      (sub == "add" && name.empty())) {
    if (!parsed.ok()) {
      std::fprintf(stderr, "gateway token: %s\n",
                   std::string(parsed.message()).c_str());
    }
    std::fputs(kUsage, stderr);
    return 2;
  }
  return sub == "add" ? Add(file, name, scopes) : List(file);
}

}  // namespace agentstream::gateway::auth
