// RedisConnection and RedisScript (orchestrator/store/redis_connection.h)
// against a real redis-server on loopback (tests/testing/redis_server.h),
// and ParseRedisUrl on its own.
#include "orchestrator/store/redis_connection.h"

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::orchestrator::store {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::RedisServer;
using ::agentstream::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Type = RedisReply::Type;

constexpr auto kUnavailable = absl::StatusCode::kUnavailable;

// --- ParseRedisUrl ---------------------------------------------------------

TEST(ParseRedisUrlTest, AcceptsTheForms) {
  absl::StatusOr<RedisAddress> a = ParseRedisUrl("redis://localhost");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->db, 0);
  EXPECT_EQ(a->username, "");
  EXPECT_EQ(a->password, "");

  a = ParseRedisUrl("REDIS://127.0.0.1:7000/3");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7000);
  EXPECT_EQ(a->db, 3);

  a = ParseRedisUrl("redis://[::1]:6380/");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 0);

  a = ParseRedisUrl("redis://:s3cret@redis-0.redis.svc:1");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "redis-0.redis.svc");
  EXPECT_EQ(a->port, 1);
  EXPECT_EQ(a->username, "");
  EXPECT_EQ(a->password, "s3cret");

  // Percent-encoding, and a raw '@' and '/' in the password (the userinfo
  // ends at the last '@').
  a = ParseRedisUrl("redis://al%69ce:p%40ss%3a@h/2");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->username, "alice");
  EXPECT_EQ(a->password, "p@ss:");
  EXPECT_EQ(a->db, 2);
  a = ParseRedisUrl("redis://u:a@b/c:d@h:65535");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->password, "a@b/c:d");
  EXPECT_EQ(a->host, "h");
  EXPECT_EQ(a->port, 65535);
}

TEST(ParseRedisUrlTest, RefusesWhatIsWrongAndSaysWhat) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "redis://"},
      {"http://h", "redis://"},
      {"rediss://h", "TLS"},
      {"redis://", "no host"},
      {"redis://:6379", "no host"},
      {"redis:///0", "no host"},
      {"redis://h:0", "port"},
      {"redis://h:65536", "port"},
      {"redis://h:x", "port"},
      {"redis://h:", "empty port"},
      {"redis://h:-1", "port"},
      {"redis://::1", "brackets"},
      {"redis://[::1", "]"},
      {"redis://[nope]:1", "IPv6"},
      {"redis://[::1]x", ":port"},
      {"redis://h/x", "db"},
      {"redis://h/-1", "db"},
      {"redis://h?db=1", "query"},
      {"redis://user@h", "':'"},
      {"redis://u:%zz@h", "percent-encoding in the password"},
      {"redis://%4:p@h", "percent-encoding in the username"},
      {"redis://u:@h", "empty password"},
      {"redis://bad host", "host"},
  };
  for (const auto& [url, what] : bad) {
    EXPECT_THAT(ParseRedisUrl(url),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)))
        << url;
  }
}

TEST(ParseRedisUrlTest, DisplayNeverShowsThePassword) {
  absl::StatusOr<RedisAddress> a = ParseRedisUrl("redis://bob:hunter2@h:5/4");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(RedisUrlForDisplay(*a), "redis://bob:***@h:5/4");
  a = ParseRedisUrl("redis://:hunter2@[::1]");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(RedisUrlForDisplay(*a), "redis://:***@[::1]:6379");
  a = ParseRedisUrl("redis://h");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(RedisUrlForDisplay(*a), "redis://h:6379");
}

TEST(RedisReplyTest, DebugString) {
  RedisReply r;
  EXPECT_EQ(r.DebugString(), "(nil)");
  r.type = Type::kArray;
  RedisReply s;
  s.type = Type::kString;
  s.str = std::string("a\0b", 3);
  RedisReply i;
  i.type = Type::kInteger;
  i.integer = -5;
  RedisReply e;
  e.type = Type::kError;
  e.str = "ERR x";
  r.elements = {s, i, e};
  EXPECT_EQ(r.DebugString(), "[\"a\\x00\\x62\", (integer) -5, (error) ERR x]");
}

// --- Against a real redis-server ------------------------------------------

class RedisConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  void StartServer(RedisServer::Options options) {
    absl::StatusOr<std::unique_ptr<RedisServer>> s =
        RedisServer::Start(std::move(options));
    ASSERT_THAT(s, IsOk());
    server_ = *std::move(s);
  }

  RedisAddress Address(const std::string& userinfo = "") const {
    absl::StatusOr<RedisAddress> a = ParseRedisUrl(
        absl::StrCat("redis://", userinfo, "127.0.0.1:", server_->port()));
    EXPECT_THAT(a, IsOk());
    return a.ok() ? *a : RedisAddress{};
  }

  std::unique_ptr<RedisConnection> Connect(RedisOptions options = {}) {
    absl::StatusOr<std::unique_ptr<RedisConnection>> c =
        RedisConnection::Connect(Address(), options);
    EXPECT_THAT(c, IsOk());
    return c.ok() ? *std::move(c) : nullptr;
  }

  std::unique_ptr<RedisServer> server_;
};

RedisReply Must(absl::StatusOr<RedisReply> r) {
  EXPECT_THAT(r, IsOk());
  return r.ok() ? *std::move(r) : RedisReply{};
}

TEST_F(RedisConnectionTest, BinarySafeValuesAndErrorRepliesAreReplies) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  EXPECT_GT(c->client_id(), 0);
  EXPECT_FALSE(c->broken());

  const std::string key("k\0ey", 4);
  std::string value("a\0b\r\nc", 6);
  value += std::string(100000, '\0');
  RedisReply set = Must(c->Command({"SET", key, value}));
  EXPECT_EQ(set.type, Type::kStatus);
  EXPECT_EQ(set.str, "OK");
  RedisReply get = Must(c->Command({"GET", key}));
  EXPECT_EQ(get.type, Type::kString);
  EXPECT_EQ(get.str, value);
  EXPECT_TRUE(Must(c->Command({"GET", "missing"})).is_nil());
  // An empty argument is an argument.
  EXPECT_EQ(Must(c->Command({"SET", "empty", ""})).str, "OK");
  EXPECT_EQ(Must(c->Command({"STRLEN", "empty"})).integer, 0);

  // Error replies: replies, and the connection goes on.
  RedisReply wrong = Must(c->Command({"INCR", key}));
  EXPECT_TRUE(wrong.is_error());
  EXPECT_THAT(wrong.str, HasSubstr("not an integer"));
  RedisReply unknown = Must(c->Command({"NOSUCHCOMMAND", "x"}));
  EXPECT_TRUE(unknown.is_error());
  EXPECT_THAT(unknown.str, HasSubstr("unknown command"));
  EXPECT_FALSE(c->broken());
  RedisReply pong = Must(c->Command({"PING"}));
  EXPECT_EQ(pong.type, Type::kStatus);
  EXPECT_EQ(pong.str, "PONG");
  EXPECT_EQ(Must(c->Command({"INCRBY", "n", "41"})).integer, 41);
}

TEST_F(RedisConnectionTest, PipelineOfAThousandXaddsInOrder) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  constexpr int kCount = 1000;
  std::vector<std::string> ids;
  const std::string payload(200, 'p');
  for (int i = 1; i <= kCount; ++i) ids.push_back(absl::StrCat("0-", i));
  std::vector<RedisArgv> commands;
  for (int i = 0; i < kCount; ++i) {
    commands.push_back({"XADD", "stream", ids[i], "seq", ids[i], "p", payload});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = c->Pipeline(commands);
  ASSERT_THAT(replies, IsOk());
  ASSERT_EQ(replies->size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ((*replies)[i].type, Type::kString) << (*replies)[i].DebugString();
    ASSERT_EQ((*replies)[i].str, ids[i]);
  }
  EXPECT_EQ(Must(c->Command({"XLEN", "stream"})).integer, kCount);
  // A repeated id is an error reply in its place, the others go through.
  replies =
      c->Pipeline(std::vector<RedisArgv>{{"XADD", "stream", "0-1", "a", "b"},
                                         {"XADD", "stream", "0-1001", "a", "b"},
                                         {"PING"}});
  ASSERT_THAT(replies, IsOk());
  ASSERT_EQ(replies->size(), 3u);
  EXPECT_TRUE((*replies)[0].is_error());
  EXPECT_EQ((*replies)[1].str, "0-1001");
  EXPECT_EQ((*replies)[2].str, "PONG");

  RedisReply range =
      Must(c->Command({"XRANGE", "stream", "0-999", "+", "COUNT", "2"}));
  ASSERT_EQ(range.type, Type::kArray);
  ASSERT_EQ(range.elements.size(), 2u);
  EXPECT_EQ(range.elements[0].elements[0].str, "0-999");
  EXPECT_EQ(range.elements[1].elements[1].elements[1].str, "0-1000");
}

TEST_F(RedisConnectionTest, ReadReplyTimeoutKeepsTheConnection) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::optional<RedisReply>> r =
      c->ReadReply(absl::Milliseconds(200));
  const absl::Duration waited = absl::Now() - start;
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_value());
  EXPECT_GE(waited, absl::Milliseconds(190));
  EXPECT_LT(waited, absl::Seconds(2));
  EXPECT_FALSE(c->broken());
  EXPECT_EQ(Must(c->Command({"PING"})).str, "PONG");

  // Incremental: two commands appended, replies read one by one; Command
  // refuses while they are unread.
  c->Append({"ECHO", "one"});
  c->Append({"ECHO", "two"});
  EXPECT_THAT(c->Command({"PING"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(c->Flush(), IsOk());
  r = c->ReadReply(absl::Seconds(2));
  ASSERT_THAT(r, IsOk());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->str, "one");
  r = c->ReadReply(absl::Seconds(2));
  ASSERT_THAT(r, IsOk());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->str, "two");
  r = c->ReadReply(absl::Milliseconds(50));
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(Must(c->Command({"PING"})).str, "PONG");
}

TEST_F(RedisConnectionTest, SubscriberReadsPublishedMessages) {
  std::unique_ptr<RedisConnection> sub = Connect();
  std::unique_ptr<RedisConnection> pub = Connect();
  ASSERT_NE(sub, nullptr);
  ASSERT_NE(pub, nullptr);
  sub->Append({"SUBSCRIBE", "runs"});
  ASSERT_THAT(sub->Flush(), IsOk());
  absl::StatusOr<std::optional<RedisReply>> r =
      sub->ReadReply(absl::Seconds(2));
  ASSERT_THAT(r, IsOk());
  ASSERT_TRUE(r->has_value());
  ASSERT_EQ((*r)->elements.size(), 3u) << (*r)->DebugString();
  EXPECT_EQ((*r)->elements[0].str, "subscribe");
  EXPECT_EQ((*r)->elements[1].str, "runs");
  EXPECT_EQ((*r)->elements[2].integer, 1);

  // Nothing yet: a timeout, not a failure.
  r = sub->ReadReply(absl::Milliseconds(100));
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_value());

  const std::string message("run_1\0ended", 11);
  EXPECT_EQ(Must(pub->Command({"PUBLISH", "runs", message})).integer, 1);
  EXPECT_EQ(Must(pub->Command({"PUBLISH", "runs", "second"})).integer, 1);
  for (const std::string& want : {message, std::string("second")}) {
    r = sub->ReadReply(absl::Seconds(2));
    ASSERT_THAT(r, IsOk());
    ASSERT_TRUE(r->has_value());
    ASSERT_EQ((*r)->elements.size(), 3u) << (*r)->DebugString();
    EXPECT_EQ((*r)->elements[0].str, "message");
    EXPECT_EQ((*r)->elements[1].str, "runs");
    EXPECT_EQ((*r)->elements[2].str, want);
  }
}

TEST_F(RedisConnectionTest, BlockedXreadIsReleasedByClientUnblock) {
  std::unique_ptr<RedisConnection> reader = Connect();
  std::unique_ptr<RedisConnection> other = Connect();
  ASSERT_NE(reader, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(reader->client_id(), other->client_id());
  reader->Append({"XREAD", "BLOCK", "0", "STREAMS", "events", "$"});
  ASSERT_THAT(reader->Flush(), IsOk());
  absl::StatusOr<std::optional<RedisReply>> r =
      reader->ReadReply(absl::Milliseconds(200));
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_value()) << "XREAD BLOCK 0 returned early";

  // CLIENT UNBLOCK answers 1 once the reader is blocked.
  const std::string id = absl::StrCat(reader->client_id());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int64_t unblocked = 0;
  while (unblocked != 1 && absl::Now() < deadline) {
    unblocked = Must(other->Command({"CLIENT", "UNBLOCK", id})).integer;
    if (unblocked != 1) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(unblocked, 1);
  r = reader->ReadReply(absl::Seconds(2));
  ASSERT_THAT(r, IsOk());
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE((*r)->is_nil()) << (*r)->DebugString();
  EXPECT_EQ(Must(reader->Command({"PING"})).str, "PONG");

  // And a blocked XREAD gets an entry added from the other connection.
  reader->Append({"XREAD", "BLOCK", "5000", "STREAMS", "events", "0-0"});
  EXPECT_EQ(Must(other->Command({"XADD", "events", "0-7", "k", "v"})).str,
            "0-7");
  r = reader->ReadReply(absl::Seconds(2));
  ASSERT_THAT(r, IsOk());
  ASSERT_TRUE(r->has_value());
  EXPECT_THAT((*r)->DebugString(), HasSubstr("\"0-7\""));
}

TEST_F(RedisConnectionTest, ScriptLoadsItselfAfterScriptFlush) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  const RedisScript script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  EXPECT_EQ(script.sha().size(), 40u);
  // Redis computes the same SHA1.
  ASSERT_THAT(script.Load(*c), IsOk());
  EXPECT_EQ(Must(c->Command({"SCRIPT", "FLUSH"})).str, "OK");
  RedisReply exists = Must(c->Command({"SCRIPT", "EXISTS", script.sha()}));
  ASSERT_EQ(exists.elements.size(), 1u);
  EXPECT_EQ(exists.elements[0].integer, 0);

  // NOSCRIPT, SCRIPT LOAD, EVALSHA again: one Run.
  RedisReply r = Must(script.Run(*c, {"counter"}, {"5"}));
  EXPECT_EQ(r.type, Type::kInteger) << r.DebugString();
  EXPECT_EQ(r.integer, 5);
  exists = Must(c->Command({"SCRIPT", "EXISTS", script.sha()}));
  EXPECT_EQ(exists.elements[0].integer, 1);
  EXPECT_EQ(Must(script.Run(*c, {"counter"}, {"2"})).integer, 7);

  // In a pipeline the caller sees NOSCRIPT, loads, retries.
  EXPECT_EQ(Must(c->Command({"SCRIPT", "FLUSH"})).str, "OK");
  std::string numkeys;
  const RedisArgv argv = script.EvalShaArgv({"counter"}, {"1"}, numkeys);
  EXPECT_THAT(argv, ElementsAre("EVALSHA", script.sha(), "1", "counter", "1"));
  absl::StatusOr<std::vector<RedisReply>> replies =
      c->Pipeline(std::vector<RedisArgv>{argv, {"PING"}});
  ASSERT_THAT(replies, IsOk());
  EXPECT_TRUE(RedisScript::IsNoScript((*replies)[0]));
  EXPECT_FALSE(RedisScript::IsNoScript((*replies)[1]));
  ASSERT_THAT(script.Load(*c), IsOk());
  EXPECT_EQ(Must(c->Command(argv)).integer, 8);

  // The script's own error is a reply; a script that does not compile is
  // refused by Load.
  const RedisScript failing("return redis.error_reply('STORE no such run')");
  r = Must(failing.Run(*c, {}, {}));
  EXPECT_TRUE(r.is_error());
  EXPECT_THAT(r.str, HasSubstr("no such run"));
  EXPECT_THAT(RedisScript("this is not lua").Load(*c),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_FALSE(c->broken());
}

TEST_F(RedisConnectionTest, StoppedServerBreaksTheConnectionForGood) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_THAT(server_->Stop(), IsOk());
  const absl::Time start = absl::Now();
  EXPECT_THAT(c->Command({"PING"}, absl::Seconds(1)), StatusIs(kUnavailable));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(c->broken());
  EXPECT_THAT(c->Command({"PING"}), StatusIs(kUnavailable));
  EXPECT_THAT(c->Pipeline(std::vector<RedisArgv>{{"PING"}}),
              StatusIs(kUnavailable));
  EXPECT_THAT(c->ReadReply(absl::Milliseconds(10)), StatusIs(kUnavailable));
  EXPECT_THAT(c->Flush(), StatusIs(kUnavailable));
  EXPECT_TRUE(c->broken());
  // Nobody listens now.
  EXPECT_THAT(RedisConnection::Connect(Address()),
              StatusIs(kUnavailable, HasSubstr("cannot connect")));
}

TEST_F(RedisConnectionTest, ServerThatDoesNotAnswerTimesOutAndBreaks) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(kill(server_->pid(), SIGSTOP), 0);
  const absl::Time start = absl::Now();
  absl::StatusOr<RedisReply> r = c->Command({"PING"}, absl::Milliseconds(300));
  const absl::Duration waited = absl::Now() - start;
  ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
  EXPECT_THAT(r, StatusIs(kUnavailable, HasSubstr("no reply to PING")));
  EXPECT_GE(waited, absl::Milliseconds(290));
  EXPECT_LT(waited, absl::Seconds(2));
  // The late PONG would be taken for the next command's reply: broken.
  EXPECT_TRUE(c->broken());
  EXPECT_THAT(c->Command({"PING"}), StatusIs(kUnavailable));
  std::unique_ptr<RedisConnection> fresh = Connect();
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(Must(fresh->Command({"PING"})).str, "PONG");
}

TEST_F(RedisConnectionTest, RestartKeepsDataInTheAof) {
  std::unique_ptr<RedisConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Must(c->Command({"SET", "kept", "value"})).str, "OK");
  EXPECT_EQ(Must(c->Command({"XADD", "log", "0-1", "f", "v"})).str, "0-1");
  const pid_t before = server_->pid();
  ASSERT_THAT(server_->Restart(), IsOk());
  EXPECT_NE(server_->pid(), before);
  EXPECT_THAT(c->Command({"PING"}), StatusIs(kUnavailable));
  EXPECT_TRUE(c->broken());

  std::unique_ptr<RedisConnection> again = Connect();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(Must(again->Command({"GET", "kept"})).str, "value");
  EXPECT_EQ(Must(again->Command({"XLEN", "log"})).integer, 1);
  EXPECT_THAT(server_->ReadLog(), HasSubstr("Ready to accept connections"));
}

TEST_F(RedisConnectionTest, SelectsTheDb) {
  std::unique_ptr<RedisConnection> db0 = Connect();
  ASSERT_NE(db0, nullptr);
  RedisAddress a3 = Address();
  a3.db = 3;
  absl::StatusOr<std::unique_ptr<RedisConnection>> db3 =
      RedisConnection::Connect(a3);
  ASSERT_THAT(db3, IsOk());
  EXPECT_EQ(Must((*db3)->Command({"SET", "where", "3"})).str, "OK");
  EXPECT_TRUE(Must(db0->Command({"GET", "where"})).is_nil());
  a3.db = 99;  // Redis has 16.
  EXPECT_THAT(RedisConnection::Connect(a3),
              StatusIs(kUnavailable, HasSubstr("SELECT 99 refused")));
}

TEST_F(RedisConnectionTest, PasswordAndUser) {
  RedisServer::Options options;
  options.extra_args = {"--requirepass", "s3cret", "--user", "alice", "on",
                        ">al1ce",        "~*",     "&*",     "+@all"};
  StartServer(std::move(options));
  // Without AUTH: refused, and said so.
  EXPECT_THAT(RedisConnection::Connect(Address()),
              StatusIs(kUnavailable, HasSubstr("NOAUTH")));
  absl::StatusOr<std::unique_ptr<RedisConnection>> c =
      RedisConnection::Connect(Address(":s3cret@"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(Must((*c)->Command({"PING"})).str, "PONG");
  c = RedisConnection::Connect(Address("alice:al1ce@"));
  ASSERT_THAT(c, IsOk());
  RedisReply who = Must((*c)->Command({"ACL", "WHOAMI"}));
  EXPECT_EQ(who.str, "alice");

  absl::StatusOr<std::unique_ptr<RedisConnection>> wrong =
      RedisConnection::Connect(Address(":wrong-one@"));
  EXPECT_THAT(wrong, StatusIs(kUnavailable, HasSubstr("AUTH refused")));
  EXPECT_THAT(wrong, StatusIs(kUnavailable, HasSubstr("WRONGPASS")));
  EXPECT_THAT(wrong, StatusIs(kUnavailable, Not(HasSubstr("wrong-one"))));
}

TEST_F(RedisConnectionTest, HostNameAndDeepReplies) {
  absl::StatusOr<RedisAddress> a =
      ParseRedisUrl(absl::StrCat("redis://localhost:", server_->port()));
  ASSERT_THAT(a, IsOk());
  absl::StatusOr<std::unique_ptr<RedisConnection>> c =
      RedisConnection::Connect(*a);
  ASSERT_THAT(c, IsOk());
  // XREADGROUP's and XINFO STREAM FULL's nesting.
  EXPECT_EQ(
      Must((*c)->Command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"})).str,
      "OK");
  EXPECT_EQ(Must((*c)->Command({"XADD", "s", "0-1", "f", "v"})).str, "0-1");
  RedisReply read = Must(
      (*c)->Command({"XREADGROUP", "GROUP", "g", "me", "STREAMS", "s", ">"}));
  EXPECT_THAT(read.DebugString(), HasSubstr("\"0-1\""));
  RedisReply full = Must((*c)->Command({"XINFO", "STREAM", "s", "FULL"}));
  EXPECT_EQ(full.type, Type::kArray) << full.DebugString();
  EXPECT_FALSE((*c)->broken()) << (*c)->broken_reason();

  // hiredis 0.14 reads arrays nested 8 deep, not 9: a protocol error that
  // breaks the connection, said so.
  EXPECT_EQ(Must((*c)->Command({"EVAL", "return {{{{{{{{1}}}}}}}}", "0"}))
                .DebugString(),
            "[[[[[[[[(integer) 1]]]]]]]]");
  EXPECT_THAT((*c)->Command({"EVAL", "return {{{{{{{{{1}}}}}}}}}", "0"}),
              StatusIs(kUnavailable, HasSubstr("depth")));
  EXPECT_TRUE((*c)->broken());
}

// The helper itself: a server that cannot bind its port is an error, not
// the other server's PING answer taken for its own.
TEST_F(RedisConnectionTest, HelperRefusesAPortTakenByAnotherServer) {
  RedisServer::Options options;
  options.port = server_->port();
  EXPECT_THAT(RedisServer::Start(std::move(options)),
              StatusIs(kUnavailable, HasSubstr("Address already in use")));
  EXPECT_GT(server_->pid(), 0);
}

}  // namespace
}  // namespace agentstream::orchestrator::store
