#include "orchestrator/store/redis_connection.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace agentstream::orchestrator::store {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr size_t kDebugStringMax = 200;

// Debian's Abseil has its own string_view (not std's).
absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

absl::Status UrlError(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "bad Redis URL (redis://[[username]:password@]host[:port][/db]): ",
      AV(what)));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding (userinfo only); false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;  // Fewer than two hex digits.
    const int hi = HexDigit(in[i + 1]);
    const int lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool ValidHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (const char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

absl::Status ParsePort(std::string_view text, int* port) {
  if (text.empty()) return UrlError("empty port after ':'");
  int value = 0;
  if (!AllDigits(text) || text.size() > 5 ||
      !absl::SimpleAtoi(AV(text), &value) || value < 1 || value > 65535) {
    return UrlError(absl::StrCat("port \"", absl::CHexEscape(AV(text)),
                                 "\" is not a number in 1..65535"));
  }
  *port = value;
  return absl::OkStatus();
}

timeval TimevalOf(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToTimeval(d);
}

// Milliseconds for poll(), rounded up, at least 0.
int PollMillis(absl::Duration left) {
  if (left <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(left + absl::Microseconds(999));
  return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

RedisReply CopyReply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(CopyReply(r->element[i]));
      }
      break;
    case REDIS_REPLY_NIL:
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

// The command's name for messages ("GET", "EVALSHA"), cut short.
std::string CommandName(const RedisArgv& argv) {
  if (argv.empty()) return "(empty command)";
  return absl::CHexEscape(AV(argv[0].substr(0, 32)));
}

}  // namespace

absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url) {
  if (url.size() >= 9 &&
      absl::EqualsIgnoreCase(AV(url.substr(0, 9)), "rediss://")) {
    return UrlError("TLS (rediss://) is not supported");
  }
  if (url.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(AV(url.substr(0, kScheme.size())), AV(kScheme))) {
    return UrlError("it must start with redis://");
  }
  std::string_view rest = url.substr(kScheme.size());
  RedisAddress address;

  // The userinfo ends at the last '@': host, port and db hold none.
  const size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return UrlError("the part before '@' needs a ':' ([username]:password@)");
    }
    if (!PercentDecode(userinfo.substr(0, colon), &address.username)) {
      return UrlError("bad percent-encoding in the username");
    }
    if (!PercentDecode(userinfo.substr(colon + 1), &address.password)) {
      return UrlError("bad percent-encoding in the password");
    }
    if (address.password.empty()) {
      return UrlError("empty password after ':' (drop the userinfo for none)");
    }
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return UrlError("query parameters and fragments are not supported");
  }

  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (!AllDigits(db) || db.size() > 9 ||
          !absl::SimpleAtoi(AV(db), &address.db)) {
        return UrlError(absl::StrCat("db \"", absl::CHexEscape(AV(db)),
                                     "\" is not a non-negative integer"));
      }
    }
  }

  if (authority.empty()) return UrlError("no host");
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return UrlError("'[' without ']' around an IPv6 address");
    }
    address.host = std::string(authority.substr(1, close - 1));
    in6_addr v6;
    if (address.host.empty() ||
        inet_pton(AF_INET6, address.host.c_str(), &v6) != 1) {
      return UrlError(absl::StrCat("\"", absl::CHexEscape(address.host),
                                   "\" is not an IPv6 address"));
    }
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return UrlError("only \":port\" may follow an [IPv6] host");
      }
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return UrlError("an IPv6 address needs brackets, as in [::1]:6379");
    }
    address.host = std::string(authority.substr(0, colon));
    if (address.host.empty()) return UrlError("no host");
    if (!ValidHostName(address.host)) {
      return UrlError(absl::StrCat("host \"", absl::CHexEscape(address.host),
                                   "\" is not a name or an IP address"));
    }
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    if (absl::Status s = ParsePort(port_text, &address.port); !s.ok()) {
      return s;
    }
  }
  return address;
}

std::string RedisUrlForDisplay(const RedisAddress& address) {
  std::string out(kScheme);
  if (!address.password.empty() || !address.username.empty()) {
    absl::StrAppend(&out, address.username,
                    address.password.empty() ? "" : ":***", "@");
  }
  if (address.host.find(':') != std::string::npos) {
    absl::StrAppend(&out, "[", address.host, "]");
  } else {
    absl::StrAppend(&out, address.host);
  }
  absl::StrAppend(&out, ":", address.port);
  if (address.db != 0) absl::StrAppend(&out, "/", address.db);
  return out;
}

std::string RedisReply::DebugString() const {
  switch (type) {
    case Type::kNil:
      return "(nil)";
    case Type::kStatus:
      return absl::CHexEscape(str);
    case Type::kError:
      return absl::StrCat("(error) ", absl::CHexEscape(str));
    case Type::kInteger:
      return absl::StrCat("(integer) ", integer);
    case Type::kString:
      if (str.size() > kDebugStringMax) {
        return absl::StrCat("\"",
                            absl::CHexEscape(str.substr(0, kDebugStringMax)),
                            "\"...(", str.size(), " bytes)");
      }
      return absl::StrCat("\"", absl::CHexEscape(str), "\"");
    case Type::kArray:
      return absl::StrCat(
          "[",
          absl::StrJoin(elements, ", ",
                        [](std::string* out, const RedisReply& e) {
                          out->append(e.DebugString());
                        }),
          "]");
  }
  return "(?)";
}

// ---------------------------------------------------------------------------
// RedisConnection

RedisConnection::RedisConnection(RedisAddress address, RedisOptions options,
                                 redisContext* context)
    : address_(std::move(address)), options_(options), context_(context) {}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const RedisAddress& address, RedisOptions options) {
  const std::string display = RedisUrlForDisplay(address);
  redisContext* context = redisConnectWithTimeout(
      address.host.c_str(), address.port, TimevalOf(options.connect_timeout));
  if (context == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(display, ": cannot allocate a hiredis context"));
  }
  if (context->err != 0) {
    std::string reason = context->errstr;
    redisFree(context);
    return absl::UnavailableError(
        absl::StrCat(display, ": cannot connect: ", reason));
  }
  // hiredis sets it too; said here so that it stays so.
  const int one = 1;
  setsockopt(context->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::unique_ptr<RedisConnection> c(
      new RedisConnection(address, options, context));

  // AUTH, SELECT and CLIENT ID as one pipeline: one round trip. A refused
  // AUTH makes the later replies NOAUTH errors; the first error is reported.
  std::vector<RedisArgv> setup;
  std::vector<std::string> what;
  if (!address.password.empty()) {
    if (address.username.empty()) {
      setup.push_back({"AUTH", address.password});
    } else {
      setup.push_back({"AUTH", address.username, address.password});
    }
    what.push_back("AUTH refused");
  }
  const std::string db = absl::StrCat(address.db);
  if (address.db != 0) {
    setup.push_back({"SELECT", db});
    what.push_back(absl::StrCat("SELECT ", db, " refused"));
  }
  setup.push_back({"CLIENT", "ID"});
  what.push_back("CLIENT ID refused");
  absl::StatusOr<std::vector<RedisReply>> replies =
      c->Pipeline(setup, options.connect_timeout);
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < replies->size(); ++i) {
    const RedisReply& r = (*replies)[i];
    if (r.is_error()) {
      return absl::UnavailableError(
          absl::StrCat(display, ": ", what[i], ": ", absl::CHexEscape(r.str)));
    }
  }
  const RedisReply& id = replies->back();
  if (id.type != RedisReply::Type::kInteger) {
    return absl::UnavailableError(
        absl::StrCat(display, ": CLIENT ID answered ", id.DebugString()));
  }
  c->client_id_ = id.integer;
  return c;
}

absl::Status RedisConnection::Break(std::string_view reason) {
  if (broken_reason_.empty()) {
    broken_reason_ =
        absl::StrCat(RedisUrlForDisplay(address_), ": ", AV(reason));
  }
  if (context_ != nullptr) {
    redisFree(context_);
    context_ = nullptr;
  }
  out_.clear();
  unread_ = 0;
  return BrokenStatus();
}

absl::Status RedisConnection::BrokenStatus() const {
  return absl::UnavailableError(
      absl::StrCat("connection broken: ", broken_reason_));
}

absl::Status RedisConnection::CheckIdle() const {
  if (unread_ > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(unread_,
                     " replies to Append()ed commands are unread (ReadReply "
                     "them before Command or Pipeline)"));
  }
  return absl::OkStatus();
}

void RedisConnection::Append(const RedisArgv& argv) {
  if (broken() || argv.empty()) return;
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string_view a : argv) {
    // A default string_view has a null data(): hiredis memcpy()s it.
    ptrs.push_back(a.data() != nullptr ? a.data() : "");
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int len = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()),
                                         ptrs.data(), lens.data());
  if (len < 0 || cmd == nullptr) {
    (void)Break("cannot format a command (out of memory)");
    return;
  }
  out_.append(cmd, static_cast<size_t>(len));
  redisFreeCommand(cmd);
  ++unread_;
}

absl::Status RedisConnection::Flush() {
  if (broken()) return BrokenStatus();
  return FlushWithin(options_.command_timeout);
}

absl::Status RedisConnection::FlushWithin(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  size_t sent = 0;
  char buf[16 * 1024];
  while (sent < out_.size()) {
    pollfd pfd{context_->fd, POLLOUT | POLLIN, 0};
    const int rc = poll(&pfd, 1, PollMillis(deadline - absl::Now()));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return Break(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (rc == 0) {
      if (absl::Now() < deadline) continue;
      return Break(absl::StrCat("could not write ", out_.size() - sent,
                                " bytes of commands within ",
                                absl::FormatDuration(timeout)));
    }
    if (pfd.revents & POLLIN) {
      // Replies while we write (a long pipeline): into the reader, so
      // neither side's buffers fill up.
      const ssize_t n = recv(context_->fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0) return Break("the server closed the connection");
      if (n > 0) {
        if (redisReaderFeed(context_->reader, buf, static_cast<size_t>(n)) !=
            REDIS_OK) {
          return Break("cannot buffer replies (out of memory)");
        }
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return Break(absl::StrCat("read: ", std::strerror(errno)));
      }
    }
    if (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) {
      const ssize_t n = send(context_->fd, out_.data() + sent,
                             out_.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        deadline = absl::Now() + timeout;  // Progress: the wait starts anew.
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                 errno != EINTR) {
        return Break(absl::StrCat("write: ", std::strerror(errno)));
      }
    }
  }
  out_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<RedisReply>> RedisConnection::ReadOne(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[16 * 1024];
  while (true) {
    // A reply already in hiredis' reader buffer needs no poll.
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) {
      return Break(absl::StrCat("protocol error: ", context_->errstr));
    }
    if (raw != nullptr) {
      RedisReply reply = CopyReply(static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      if (unread_ > 0) --unread_;
      return std::optional<RedisReply>(std::move(reply));
    }
    pollfd pfd{context_->fd, POLLIN, 0};
    const int rc = poll(&pfd, 1, PollMillis(deadline - absl::Now()));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return Break(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (rc == 0) {
      if (absl::Now() >= deadline) return std::optional<RedisReply>();
      continue;
    }
    const ssize_t n = recv(context_->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return Break("the server closed the connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return Break(absl::StrCat("read: ", std::strerror(errno)));
    }
    if (redisReaderFeed(context_->reader, buf, static_cast<size_t>(n)) !=
        REDIS_OK) {
      return Break("cannot buffer replies (out of memory)");
    }
  }
}

absl::StatusOr<RedisReply> RedisConnection::ReadRequired(
    absl::Duration timeout, std::string_view what) {
  absl::StatusOr<std::optional<RedisReply>> r = ReadOne(timeout);
  if (!r.ok()) return r.status();
  if (!r->has_value()) {
    return Break(absl::StrCat("no reply to ", AV(what), " within ",
                              absl::FormatDuration(timeout)));
  }
  return std::move(**r);
}

absl::StatusOr<std::optional<RedisReply>> RedisConnection::ReadReply(
    absl::Duration timeout) {
  if (broken()) return BrokenStatus();
  if (!out_.empty()) {
    if (absl::Status s = FlushWithin(options_.command_timeout); !s.ok()) {
      return s;
    }
  }
  return ReadOne(timeout);
}

absl::StatusOr<RedisReply> RedisConnection::Command(
    const RedisArgv& argv, std::optional<absl::Duration> timeout) {
  if (broken()) return BrokenStatus();
  if (absl::Status s = CheckIdle(); !s.ok()) return s;
  if (argv.empty()) return absl::InvalidArgumentError("empty Redis command");
  const absl::Duration t = timeout.value_or(options_.command_timeout);
  Append(argv);
  if (broken()) return BrokenStatus();
  if (absl::Status s = FlushWithin(t); !s.ok()) return s;
  return ReadRequired(t, CommandName(argv));
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    absl::Span<const RedisArgv> commands,
    std::optional<absl::Duration> timeout) {
  if (broken()) return BrokenStatus();
  if (absl::Status s = CheckIdle(); !s.ok()) return s;
  for (const RedisArgv& argv : commands) {
    if (argv.empty()) return absl::InvalidArgumentError("empty Redis command");
  }
  const absl::Duration t = timeout.value_or(options_.command_timeout);
  for (const RedisArgv& argv : commands) Append(argv);
  if (broken()) return BrokenStatus();
  if (absl::Status s = FlushWithin(t); !s.ok()) return s;
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    absl::StatusOr<RedisReply> r = ReadRequired(
        t, absl::StrCat(CommandName(commands[i]), " (command ", i + 1, " of ",
                        commands.size(), " in a pipeline)"));
    if (!r.ok()) return r.status();
    replies.push_back(*std::move(r));
  }
  return replies;
}

// ---------------------------------------------------------------------------
// RedisScript

RedisScript::RedisScript(std::string source) : source_(std::move(source)) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(source_.data(), source_.size(), digest, &length, EVP_sha1(),
                 nullptr) != 1) {
    length = 0;  // Unreachable in practice; EVALSHA then fails visibly.
  }
  sha_ = absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

bool RedisScript::IsNoScript(const RedisReply& r) {
  return r.is_error() && absl::StartsWith(r.str, "NOSCRIPT");
}

RedisArgv RedisScript::EvalShaArgv(const RedisArgv& keys, const RedisArgv& args,
                                   std::string& numkeys_storage) const {
  numkeys_storage = absl::StrCat(keys.size());
  RedisArgv argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha_);
  argv.push_back(numkeys_storage);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

absl::Status RedisScript::Load(RedisConnection& c) const {
  absl::StatusOr<RedisReply> r = c.Command({"SCRIPT", "LOAD", source_});
  if (!r.ok()) return r.status();
  if (r->is_error()) {
    return absl::InternalError(absl::StrCat("SCRIPT LOAD refused the script ",
                                            sha_, ": ",
                                            absl::CHexEscape(r->str)));
  }
  if (r->type != RedisReply::Type::kString || r->str != sha_) {
    return absl::InternalError(
        absl::StrCat("SCRIPT LOAD of ", sha_, " answered ", r->DebugString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisScript::Run(RedisConnection& c,
                                            const RedisArgv& keys,
                                            const RedisArgv& args) const {
  std::string numkeys;
  const RedisArgv argv = EvalShaArgv(keys, args, numkeys);
  absl::StatusOr<RedisReply> r = c.Command(argv);
  if (!r.ok() || !IsNoScript(*r)) return r;
  if (absl::Status s = Load(c); !s.ok()) return s;
  return c.Command(argv);
}

}  // namespace agentstream::orchestrator::store
