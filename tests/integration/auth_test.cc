// Authentication and run ownership through the real binaries
// (docs/SECURITY.md): the gateway with --auth=jwt (a JWKS with an RS256 and
// an ES256 key, issuer and audience checked; HS256 with a secret file) and
// --auth=token (entries made by the gateway's own `token add`), tokens made
// by an independent tool (Python's jwt: tests/unit/gateway/auth/jwt_tool.py).
// A second principal cannot reach the first's run and cannot tell it exists;
// the operator scope can; refusals and starts are audited, tokens never
// logged.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"
#include "tests/testing/subprocess.h"
#include "tests/unit/gateway/auth/jwt_tool.h"

namespace agentstream::testing {
namespace {

using ::agentstream::gateway::auth::testing::JwtToolAvailable;
using ::agentstream::gateway::auth::testing::RunJwtTool;
using ::agentstream::gateway::auth::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kIssuer[] = "https://idp.example";
constexpr char kAudience[] = "agentstream";

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

int64_t Now() { return absl::ToUnixSeconds(absl::Now()); }

// One request through the gateway with extra headers (any method).
RawSseResult Call(int port, const std::string& method, const std::string& path,
                  std::vector<std::pair<std::string, std::string>> headers,
                  absl::Duration timeout = absl::Seconds(30)) {
  RawSseRequest req;
  req.method = method;
  req.port = port;
  req.path = path;
  req.headers = std::move(headers);
  req.timeout = timeout;
  return RawSse(req);
}

std::pair<std::string, std::string> Bearer(const std::string& token) {
  return {"Authorization", "Bearer " + token};
}

std::string Header(const RawSseResult& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class AuthTest : public TopologyTest {
 protected:
  void SetUp() override {
    if (!JwtToolAvailable()) {
      if (InCi()) FAIL() << "python3-jwt is missing (CI=true)";
      GTEST_SKIP() << "python3-jwt is not installed";
    }
    absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Make("auth_keys_");
    ASSERT_TRUE(dir.ok()) << dir.status();
    keys_dir_ = *std::move(dir);
    keys_ = keys_dir_.path();
    ASSERT_TRUE(RunJwtTool({"keys", keys_}).ok());
  }

  // A token from the independent tool. `claims` are merged over a valid
  // default set for `sub`.
  std::string Sign(const std::string& alg, const std::string& key,
                   const std::string& sub, nlohmann::json claims = {},
                   const std::string& kid = "") {
    nlohmann::json c = {{"sub", sub},
                        {"iss", kIssuer},
                        {"aud", kAudience},
                        {"iat", Now()},
                        {"exp", Now() + 600}};
    if (claims.is_object()) c.update(claims);
    std::vector<std::string> args = {"sign", alg, key, c.dump()};
    if (!kid.empty()) args.push_back(kid);
    absl::StatusOr<std::string> token = RunJwtTool(args);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : "";
  }
  std::string Rs(const std::string& sub, nlohmann::json claims = {}) {
    return Sign("RS256", keys_ + "/rsa.pem", sub, std::move(claims), "rsa-1");
  }
  std::string Es(const std::string& sub, nlohmann::json claims = {}) {
    return Sign("ES256", keys_ + "/ec.pem", sub, std::move(claims), "ec-1");
  }

  void StartWithJwks() {
    TopologyOptions options = SyntheticOnlyOptions();
    options.extra_gateway_args = {
        "--auth=jwt",
        absl::StrCat("--auth-jwks-file=", keys_, "/jwks.json"),
        absl::StrCat("--auth-jwt-issuer=", kIssuer),
        absl::StrCat("--auth-jwt-audience=", kAudience),
        "--auth-allow-query-token",
        "--auth-protect-metrics"};
    options.gateway_token = Rs("readiness");
    StartTopology(options);
    port_ = topology_->gateway_port();
  }

  // The logs of the gateway and the orchestrator (audit lines).
  std::string GatewayLog() {
    return ReadAll(topology_->process("gateway")->log_path());
  }
  std::string OrchestratorLog() {
    return ReadAll(topology_->process("orchestrator")->log_path());
  }

  // The keys and JWKS of the independent tool; removed after the test.
  ScopedTempDir keys_dir_;
  std::string keys_;
  int port_ = 0;
};

const std::string kShortRun = SyntheticChatPath({{"count", 5}, {"rate", 0}});
const std::string kLongRun =
    SyntheticChatPath({{"count", 100000}, {"rate", 100}});

TEST_F(AuthTest, WithoutAValidTokenEveryApiIs401AndHealthzStaysOpen) {
  StartWithJwks();
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"GET", kShortRun},
           {"POST", "/api/chat/stream"},
           {"GET", "/api/specialists"},
           {"GET", "/api/runs/run_0123/stream"},
           {"DELETE", "/api/runs/run_0123"}}) {
    const RawSseResult r = Call(port_, method, path, {});
    EXPECT_EQ(r.status, 401) << method << " " << path << ": " << r.body;
    EXPECT_EQ(Header(r, "www-authenticate"), "Bearer realm=\"agentstream\"");
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_EQ(body.value("error", ""), "unauthenticated") << r.body;
  }
  EXPECT_EQ(Call(port_, "GET", "/healthz", {}).status, 200);
  EXPECT_EQ(Call(port_, "GET", "/", {}).status, 200);  // The web client.

  // Bad tokens: a wrong signature, expired, not yet valid, another
  // audience or issuer, alg none, an HS256 forgery keyed with the public
  // key, garbage. Each 401 invalid_token.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"another key",
       Sign("RS256", keys_ + "/rsa2.pem", "mallory", {}, "rsa-1")},
      {"expired", Rs("alice", {{"exp", Now() - 3600}})},
      {"not yet valid", Rs("alice", {{"nbf", Now() + 3600}})},
      {"audience", Rs("alice", {{"aud", "someone-else"}})},
      {"issuer", Es("alice", {{"iss", "https://evil.example"}})},
      {"alg none", *RunJwtTool({"none", nlohmann::json{{"sub", "mallory"},
                                                       {"iss", kIssuer},
                                                       {"aud", kAudience},
                                                       {"exp", Now() + 600}}
                                            .dump()})},
      {"key confusion", *RunJwtTool({"forge-hs256", keys_ + "/rsa.pub",
                                     nlohmann::json{{"sub", "mallory"},
                                                    {"iss", kIssuer},
                                                    {"aud", kAudience},
                                                    {"exp", Now() + 600}}
                                         .dump()})},
      {"garbage", "not.a.token"}};
  for (const auto& [what, token] : bad) {
    const RawSseResult r = Call(port_, "GET", kShortRun, {Bearer(token)});
    EXPECT_EQ(r.status, 401) << what << ": " << r.body;
    EXPECT_THAT(Header(r, "www-authenticate"),
                HasSubstr("error=\"invalid_token\""))
        << what;
  }
  // Refusals are audited, with where from; tokens are never logged.
  const std::string log = GatewayLog();
  EXPECT_THAT(log, HasSubstr("audit {\"event\":\"auth_refused\""));
  EXPECT_THAT(log, HasSubstr("\"client\":\"127.0.0.1\""));
  for (const auto& [what, token] : bad) {
    EXPECT_THAT(log, ::testing::Not(HasSubstr(token))) << what;
  }
}

TEST_F(AuthTest, Rs256AndEs256InTheHeaderACookieOrTheQueryRunAQuestion) {
  StartWithJwks();
  const std::string rs = Rs("alice");
  const std::string es = Es("alice");
  const std::vector<std::pair<std::string, RawSseResult>> runs = {
      {"RS256 header", Call(port_, "GET", kShortRun, {Bearer(rs)})},
      {"ES256 header", Call(port_, "GET", kShortRun, {Bearer(es)})},
      {"cookie", Call(port_, "GET", kShortRun,
                      {{"Cookie", "theme=dark; agentstream_token=" + es}})},
      {"query", Call(port_, "GET", kShortRun + "&access_token=" + rs, {})}};
  for (const auto& [what, r] : runs) {
    EXPECT_EQ(r.status, 200) << what << ": " << r.body;
    EXPECT_TRUE(r.EndedWithDone()) << what;
    // With authentication on, the run's id is ours: 128 random bits.
    const std::string rid = Header(r, "x-request-id");
    EXPECT_THAT(rid, StartsWith("run_")) << what;
    EXPECT_EQ(rid.size(), 36u) << what;
  }
  // The query form never reaches a log.
  EXPECT_THAT(GatewayLog(), ::testing::Not(HasSubstr(rs)));
  // Every run start is audited with its principal.
  EXPECT_THAT(OrchestratorLog(), HasSubstr("audit {\"event\":\"run_start\""));
  EXPECT_THAT(OrchestratorLog(), HasSubstr("\"principal\":\"alice\""));
}

TEST_F(AuthTest, AClientsRequestIdIsACorrelationIdNeverTheRunsKey) {
  StartWithJwks();
  const RawSseResult r =
      Call(port_, "GET", kShortRun,
           {Bearer(Rs("alice")), {"X-Request-Id", "my-trace-42"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string rid = Header(r, "x-request-id");
  EXPECT_NE(rid, "my-trace-42");
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.front().json.value("request_id", ""), rid);
  EXPECT_EQ(r.events.front().json.value("correlation_id", ""), "my-trace-42");
  // The same X-Request-Id again is a new run, not a 409.
  const RawSseResult again =
      Call(port_, "GET", kShortRun,
           {Bearer(Rs("bob")), {"X-Request-Id", "my-trace-42"}});
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(Header(again, "x-request-id"), rid);
}

TEST_F(AuthTest, AnotherPrincipalGets404AsForAnUnknownRunAndTheOperatorCan) {
  StartWithJwks();
  const std::string alice = Rs("alice");
  const std::string bob = Es("bob");
  const std::string ops = Rs("ops", {{"scope", "agentstream:admin"}});

  // Alice's long run, read in the background until it ends.
  absl::Notification started;
  std::string rid;
  RawSseResult alices;
  std::thread reader([&] {
    RawSseRequest req;
    req.port = port_;
    req.path = kLongRun;
    req.headers = {Bearer(alice)};
    req.timeout = absl::Seconds(60);
    req.on_event = [&](const SseEvent& e) {
      if (!started.HasBeenNotified() && e.event == "connected") {
        rid = e.json.value("request_id", "");
        started.Notify();
      }
      return RawSseAction{};
    };
    alices = RawSse(req);
    if (!started.HasBeenNotified()) started.Notify();
  });
  const JoinOnExit join(reader);
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_THAT(rid, StartsWith("run_"));
  const std::string unknown = "run_00000000000000000000000000000000";

  // Bob: attach, resume (Last-Event-ID on the chat endpoint) and cancel get
  // what an unknown run gets, word for word but for the id.
  auto same_as_unknown = [&](const std::string& what,
                             const RawSseResult& theirs,
                             const RawSseResult& none) {
    // A resume on the chat endpoint answers as EventSource needs: a stream
    // that says the run is unknown (resume.h); the others 404.
    EXPECT_EQ(theirs.status, what == "resume" ? 200 : 404)
        << what << ": " << theirs.body;
    for (const SseEvent& e : theirs.events) {
      EXPECT_NE(e.event, "message") << what << ": " << theirs.body;
    }
    EXPECT_EQ(theirs.status, none.status) << what;
    EXPECT_EQ(absl::StrReplaceAll(theirs.body, {{rid, "ID"}}),
              absl::StrReplaceAll(none.body, {{unknown, "ID"}}))
        << what;
  };
  same_as_unknown("attach",
                  Call(port_, "GET", RunStreamPath(rid), {Bearer(bob)}),
                  Call(port_, "GET", RunStreamPath(unknown), {Bearer(bob)}));
  same_as_unknown("resume",
                  Call(port_, "GET", "/api/chat/stream?message=x",
                       {Bearer(bob), {"Last-Event-ID", rid + ":1"}}),
                  Call(port_, "GET", "/api/chat/stream?message=x",
                       {Bearer(bob), {"Last-Event-ID", unknown + ":1"}}));
  same_as_unknown("cancel",
                  Call(port_, "DELETE", "/api/runs/" + rid, {Bearer(bob)}),
                  Call(port_, "DELETE", "/api/runs/" + unknown, {Bearer(bob)}));
  // Bob's attempts are audited as refused, at the orchestrator.
  EXPECT_THAT(OrchestratorLog(), HasSubstr("\"event\":\"access_refused\""));
  EXPECT_THAT(OrchestratorLog(), HasSubstr("\"principal\":\"bob\""));

  // Alice herself: a second observer stream (cut after a few events).
  RawSseRequest own;
  own.port = port_;
  own.path = RunStreamPath(rid);
  own.headers = {Bearer(alice)};
  own.timeout = absl::Seconds(20);
  int seen = 0;
  own.on_event = [&](const SseEvent&) {
    RawSseAction a;
    a.close = ++seen >= 3;
    return a;
  };
  const RawSseResult mine = RawSse(own);
  EXPECT_EQ(mine.status, 200) << mine.body;
  EXPECT_GE(seen, 3);

  // The operator sees and cancels it.
  RawSseRequest watch = own;
  watch.headers = {Bearer(ops)};
  seen = 0;
  const RawSseResult theirs = RawSse(watch);
  EXPECT_EQ(theirs.status, 200) << theirs.body;
  const RawSseResult cancel =
      Call(port_, "DELETE", "/api/runs/" + rid, {Bearer(ops)});
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  reader.join();
  EXPECT_TRUE(alices.EndedWithDone());
  ASSERT_FALSE(alices.events.empty());
  EXPECT_THAT(alices.body, HasSubstr("\"outcome\":\"cancelled\""));
  EXPECT_THAT(OrchestratorLog(), HasSubstr("\"event\":\"run_cancel\""));
}

TEST_F(AuthTest, MetricsNeedTheMetricsScope) {
  StartWithJwks();
  EXPECT_EQ(Call(port_, "GET", "/metrics", {}).status, 401);
  const RawSseResult plain = Call(port_, "GET", "/metrics", {Bearer(Rs("a"))});
  EXPECT_EQ(plain.status, 403) << plain.body;
  EXPECT_THAT(Header(plain, "www-authenticate"),
              HasSubstr("error=\"insufficient_scope\""));
  EXPECT_EQ(Call(port_, "GET", "/metrics",
                 {Bearer(Rs("prom", {{"scope", "agentstream:metrics"}}))})
                .status,
            200);
  // /readyz is not protected here (--auth-protect-readyz is off).
  EXPECT_EQ(Call(port_, "GET", "/readyz", {}).status, 200);
}

TEST_F(AuthTest, Hs256WithASecretFile) {
  const std::string secret = keys_ + "/hs.secret";
  // No line break: the tool signs with the file's bytes.
  WriteFile(secret, "0123456789abcdef0123456789abcdef-a-long-enough-secret");
  TopologyOptions options = SyntheticOnlyOptions();
  options.extra_gateway_args = {"--auth=jwt",
                                "--auth-jwt-secret-file=" + secret};
  options.gateway_token = Sign("HS256", secret, "readiness");
  StartTopology(options);
  port_ = topology_->gateway_port();
  const RawSseResult ok =
      Call(port_, "GET", kShortRun, {Bearer(Sign("HS256", secret, "carol"))});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(ok.EndedWithDone());
  const std::string other = keys_ + "/other.secret";
  WriteFile(other, "another-secret-that-is-also-long-enough-000000");
  EXPECT_EQ(
      Call(port_, "GET", kShortRun, {Bearer(Sign("HS256", other, "carol"))})
          .status,
      401);
}

// Opaque tokens: entries made by the gateway binary's own subcommand.
TEST_F(AuthTest, OpaqueTokensFromTheTokenSubcommand) {
  const std::string file = keys_ + "/tokens";
  auto add = [&](const std::string& name, const std::string& scope) {
    std::string cmd =
        BinDir() + "/gateway token add --file " + file + " --name " + name;
    if (!scope.empty()) cmd += " --scope " + scope;
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    size_t n;
    while (p != nullptr && (n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
      out.append(buf, n);
    }
    EXPECT_EQ(p != nullptr ? ::pclose(p) : -1, 0) << cmd;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
      out.pop_back();
    }
    return out;
  };
  const std::string dave = add("dave", "");
  const std::string erin = add("erin", "");
  ASSERT_FALSE(dave.empty());
  // The file holds no token.
  EXPECT_THAT(ReadAll(file), ::testing::Not(HasSubstr(dave)));

  TopologyOptions options = SyntheticOnlyOptions();
  options.extra_gateway_args = {"--auth=token", "--auth-token-file=" + file};
  options.gateway_token = dave;
  StartTopology(options);
  port_ = topology_->gateway_port();
  const RawSseResult run = Call(port_, "GET", kShortRun, {Bearer(dave)});
  EXPECT_EQ(run.status, 200) << run.body;
  EXPECT_TRUE(run.EndedWithDone());
  const std::string rid = Header(run, "x-request-id");
  // The ended run is dave's alone.
  EXPECT_EQ(Call(port_, "GET", RunStreamPath(rid), {Bearer(dave)}).status, 200);
  EXPECT_EQ(Call(port_, "GET", RunStreamPath(rid), {Bearer(erin)}).status, 404);
  // A token with a wrong secret part.
  std::string forged = dave;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(Call(port_, "GET", kShortRun, {Bearer(forged)}).status, 401);
}

}  // namespace
}  // namespace agentstream::testing
