// A small synchronous Redis client for the run store (issue 15:
// --run-store=redis://HOST:PORT), on hiredis 0.14's reply reader.
//
// What it is:
// - ParseRedisUrl / RedisUrlForDisplay: "redis://[[username]:password@]host
//   [:port][/db]" (host: a name, IPv4 or [IPv6]; username and password may
//   be percent-encoded). The display form never shows the password.
// - RedisConnection: one TCP connection. Commands are argv vectors of
//   binary-safe std::string_views (a value may hold NULs); replies are owned
//   copies (RedisReply), so no hiredis object outlives a call.
// - RedisScript: a Lua script run by EVALSHA, loaded again on NOSCRIPT (the
//   script cache is empty after a Redis restart).
//
// Errors. A Status error means the connection failed (kUnavailable: refused,
// unreachable, I/O error, EOF, a protocol error or a reply not read in
// time); an error reply from Redis ("-ERR ...", "-WRONGTYPE ...") is not a
// Status error but a RedisReply of type kError, and the connection is fine.
//
// Broken for good. A connection that failed (Command or Pipeline timed out,
// an I/O error, EOF, a protocol error) is broken(): the position in the
// reply stream is lost, so every later call returns kUnavailable with the
// first failure's reason and touches no socket. The caller makes a new one
// (Connect). Only ReadReply's timeout leaves the connection usable: it
// returns std::nullopt, and the reply, when it comes, is read by the next
// ReadReply.
//
// Timeouts. Connect is bounded by RedisOptions::connect_timeout for each of
// the TCP connect and the AUTH, SELECT and CLIENT ID replies (name
// resolution, for a host name, is not bounded). Command's and Pipeline's
// `timeout` (default RedisOptions::command_timeout) bounds the writing of
// the commands and, separately, the wait for each reply: the longest time
// without progress, not the whole pipeline's. Sockets are non-blocking
// throughout (poll() with a deadline, send(MSG_NOSIGNAL): a closed peer
// never raises SIGPIPE).
//
// Limits (hiredis 0.14's reader): arrays nested at most 8 deep (XREAD,
// XREADGROUP and XINFO STREAM FULL are within it); a deeper reply is a
// protocol error that breaks the connection. RESP2 only (no HELLO 3).
//
// Thread-safety: none. A RedisConnection has one owner thread (or is used
// under the owner's mutex). The one cross-thread pattern Redis offers is
// another connection: a blocked XREAD BLOCK on this one is released by
// CLIENT UNBLOCK client_id() sent on a second connection. RedisScript is
// immutable after construction and safe to share.
#ifndef AGENTSTREAM_ORCHESTRATOR_STORE_REDIS_CONNECTION_H_
#define AGENTSTREAM_ORCHESTRATOR_STORE_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct redisContext;

namespace agentstream::orchestrator::store {

struct RedisAddress {
  std::string host;  // A name or an IP address, without IPv6's brackets.
  int port = 6379;
  int db = 0;
  std::string username;  // Empty: AUTH with the password alone (if any).
  std::string password;  // Empty: no AUTH.
};

// "redis://[[username]:password@]host[:port][/db]"; host may be a name,
// IPv4 or [IPv6]. kInvalidArgument naming what is wrong. The scheme is
// case-insensitive; "rediss://" (TLS), query parameters and a userinfo
// without ':' are refused. The userinfo ends at the last '@', so a password
// may hold '@' and '/' as they are, or percent-encoded.
absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url);
// "redis://user:***@host:port/db" ("/db" only when not 0, ":***" only when
// there is a password, brackets around an IPv6 host). Never shows the
// password.
std::string RedisUrlForDisplay(const RedisAddress& address);

// An owned copy of a hiredis reply.
struct RedisReply {
  enum class Type { kNil, kStatus, kError, kInteger, kString, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;                   // kStatus, kError, kString
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  // redis-cli like, one line: "(nil)", "OK", "(error) ERR ...",
  // "(integer) 5", "\"a\\x00b\"" (C-escaped, long strings cut), "[a, b]".
  std::string DebugString() const;
};

// Binary-safe arguments; their storage is owned by the caller for the call
// (Append copies them into the output buffer at once).
using RedisArgv = std::vector<std::string_view>;

struct RedisOptions {
  absl::Duration connect_timeout = absl::Milliseconds(500);
  absl::Duration command_timeout = absl::Seconds(2);  // per reply wait
};

class RedisConnection final {
 public:
  // Connects (TCP_NODELAY), AUTH (username and password when given), SELECT
  // db (when not 0); reads CLIENT ID. kUnavailable with the reason when the
  // server cannot be reached or refuses (a wrong password, NOAUTH, a db out
  // of range), naming the address (without its password).
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      const RedisAddress& address, RedisOptions options = {});
  ~RedisConnection();

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // One command. kUnavailable on I/O error, EOF or a reply not read within
  // `timeout` (default: options.command_timeout): the connection is then
  // broken() for good (the caller reconnects). An error reply from Redis is
  // NOT a Status error: it is a RedisReply of type kError.
  // kFailedPrecondition (the connection stays usable) when replies to
  // Append()ed commands are still unread: they would be taken for this
  // command's.
  absl::StatusOr<RedisReply> Command(
      const RedisArgv& argv,
      std::optional<absl::Duration> timeout = std::nullopt);
  // Pipelining: every command written (one write when it fits in the
  // socket's buffer), then the replies read, in order: one per command.
  // Failures and preconditions as Command's; `timeout` bounds the writing
  // and each reply's wait.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      absl::Span<const RedisArgv> commands,
      std::optional<absl::Duration> timeout = std::nullopt);

  // Lower level, for a subscriber or a pipeline built incrementally:
  // Append queues a command in the output buffer (nothing when broken:
  // Flush then says so); Flush writes it all (bounded by
  // options.command_timeout; a failure breaks the connection); ReadReply
  // flushes what is queued, then waits up to `timeout` for one reply:
  // std::nullopt when none came in time, and the connection stays usable.
  // A reply already received and buffered is returned without waiting.
  // Pushed messages (SUBSCRIBE's "message" arrays) come through ReadReply.
  void Append(const RedisArgv& argv);
  absl::Status Flush();
  absl::StatusOr<std::optional<RedisReply>> ReadReply(absl::Duration timeout);

  // CLIENT ID, read at connect (for CLIENT UNBLOCK from another connection).
  int64_t client_id() const { return client_id_; }
  bool broken() const { return !broken_reason_.empty(); }
  // Why the connection broke ("" while it is not).
  const std::string& broken_reason() const { return broken_reason_; }
  const RedisAddress& address() const { return address_; }
  const RedisOptions& options() const { return options_; }

 private:
  RedisConnection(RedisAddress address, RedisOptions options,
                  redisContext* context);
  // Marks the connection broken (keeping the first reason) and closes the
  // socket; returns kUnavailable with the reason.
  absl::Status Break(std::string_view reason);
  absl::Status BrokenStatus() const;
  absl::Status FlushWithin(absl::Duration timeout);
  // One reply, waiting up to `timeout`: std::nullopt on timeout.
  absl::StatusOr<std::optional<RedisReply>> ReadOne(absl::Duration timeout);
  // One reply within `timeout`, or the connection broken.
  absl::StatusOr<RedisReply> ReadRequired(absl::Duration timeout,
                                          std::string_view what);
  absl::Status CheckIdle() const;

  const RedisAddress address_;
  const RedisOptions options_;
  redisContext* context_;  // Owned; null once broken.
  std::string out_;        // Commands appended, not yet written.
  size_t unread_ = 0;      // Replies owed to Append()ed commands.
  int64_t client_id_ = 0;
  std::string broken_reason_;
};

// A Lua script run by EVALSHA, loading it (SCRIPT LOAD) on NOSCRIPT -- after
// a Redis restart the script cache is empty. Immutable; shareable.
class RedisScript final {
 public:
  explicit RedisScript(std::string source);        // Computes the SHA1.
  const std::string& sha() const { return sha_; }  // 40 lowercase hex.
  const std::string& source() const { return source_; }

  // EVALSHA sha numkeys keys... args...; on a NOSCRIPT error reply, SCRIPT
  // LOAD then EVALSHA again. The script's own error is a kError reply.
  absl::StatusOr<RedisReply> Run(RedisConnection& c, const RedisArgv& keys,
                                 const RedisArgv& args) const;
  // For pipelines: the argv of EVALSHA (the caller checks replies with
  // IsNoScript, calls Load and retries). The views point into this script,
  // `keys`, `args` and `numkeys_storage`, which must outlive the argv.
  RedisArgv EvalShaArgv(const RedisArgv& keys, const RedisArgv& args,
                        std::string& numkeys_storage) const;
  // SCRIPT LOAD. kInternal when Redis refuses the script (a compile error)
  // or answers another SHA; the connection's failure otherwise.
  absl::Status Load(RedisConnection& c) const;
  static bool IsNoScript(const RedisReply& r);

 private:
  std::string source_;
  std::string sha_;
};

}  // namespace agentstream::orchestrator::store

#endif  // AGENTSTREAM_ORCHESTRATOR_STORE_REDIS_CONNECTION_H_
