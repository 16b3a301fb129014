// Where the token is (gateway/auth/credentials.h), and the RFC 6750 answer
// (gateway/auth/principal.h).
#include "gateway/auth/credentials.h"

#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::gateway::auth {
namespace {

using ::testing::HasSubstr;

// "source:token" or "error:description".
std::string Extract(const CredentialInput& in, AuthOptions o = {}) {
  const auto r = ExtractCredential(in, o);
  if (const auto* f = std::get_if<AuthFailure>(&r)) {
    return f->error + ":" + f->description;
  }
  const Credential& c = std::get<Credential>(r);
  return std::string(CredentialSourceName(c.source)) + ":" + c.token;
}

CredentialInput Header(std::string_view v) {
  CredentialInput in;
  in.authorization.push_back(v);
  return in;
}

TEST(CredentialsTest, AuthorizationHeader) {
  EXPECT_EQ(Extract(Header("Bearer abc.def-_~+/=")), "header:abc.def-_~+/=");
  EXPECT_EQ(Extract(Header("bearer abc")), "header:abc");
  EXPECT_EQ(Extract(Header("BEARER   abc  ")), "header:abc");
  EXPECT_EQ(Extract(Header("Bearer\tabc")), "header:abc");
  EXPECT_THAT(Extract(Header("Basic dXNlcjpwYXNz")),
              HasSubstr("invalid_request:the Authorization scheme"));
  EXPECT_THAT(Extract(Header("Bearer")), HasSubstr("invalid_request"));
  EXPECT_THAT(Extract(Header("Bearer ")), HasSubstr("invalid_request"));
  EXPECT_THAT(Extract(Header("Bearer a b")), HasSubstr("invalid_request"));
  EXPECT_THAT(Extract(Header("Bearer a=b")), HasSubstr("invalid_request"));
  EXPECT_THAT(Extract(Header("")), HasSubstr("invalid_request"));
  const std::string big = "Bearer " + std::string(kMaxTokenBytes + 1, 'a');
  EXPECT_THAT(Extract(Header(big)), HasSubstr("too long"));
  CredentialInput two = Header("Bearer a");
  two.authorization.push_back("Bearer b");
  EXPECT_THAT(Extract(two), HasSubstr("more than one"));
}

TEST(CredentialsTest, ErrorsNeverEchoTheToken) {
  for (const char* h : {"Bearer sekrit sekrit", "Bearer sekrit\x01",
                        "Token sekrit", "Bearer sekrit\""}) {
    EXPECT_THAT(Extract(Header(h)), ::testing::Not(HasSubstr("sekrit"))) << h;
  }
}

TEST(CredentialsTest, Cookie) {
  CredentialInput in;
  in.cookie.push_back("theme=dark; agentstream_token=tok1; other=x");
  EXPECT_EQ(Extract(in), "cookie:tok1");
  in.cookie = {"agentstream_token=\"tok2\""};
  EXPECT_EQ(Extract(in), "cookie:tok2");
  in.cookie = {" a=1 ;agentstream_token = tok3 ;", "b=2"};
  EXPECT_EQ(Extract(in), "cookie:tok3");
  in.cookie = {"x=1", "agentstream_token=tok4"};  // a second Cookie field
  EXPECT_EQ(Extract(in), "cookie:tok4");
  in.cookie = {"agentstream_token=; agentstream_token=tok5"};
  EXPECT_EQ(Extract(in), "cookie:tok5");
  in.cookie = {"my_agentstream_token=tok; agentstream_token_x=tok; junk"};
  EXPECT_EQ(Extract(in), "none:");
  in.cookie = {"agentstream_token=a,b"};
  EXPECT_THAT(Extract(in), HasSubstr("invalid_request:the token cookie"));
  AuthOptions o;
  o.cookie_name = "session";
  in.cookie = {"agentstream_token=a; session=s1"};
  EXPECT_EQ(Extract(in, o), "cookie:s1");
  o.cookie_name.clear();
  EXPECT_EQ(Extract(in, o), "none:");
}

TEST(CredentialsTest, QueryOnlyWhenAllowed) {
  CredentialInput in;
  in.query = "after=3&access_token=q%2Bt";
  EXPECT_EQ(Extract(in), "none:");
  AuthOptions o;
  o.allow_query_token = true;
  EXPECT_EQ(Extract(in, o), "query:q+t");
  in.query = "access_token=a&access_token=b";
  EXPECT_THAT(Extract(in, o), HasSubstr("more than once"));
  in.query = "access_token=";
  EXPECT_THAT(Extract(in, o), HasSubstr("invalid_request"));
  in.query = "x=1";
  EXPECT_EQ(Extract(in, o), "none:");
}

TEST(CredentialsTest, HeaderThenCookieThenQuery) {
  AuthOptions o;
  o.allow_query_token = true;
  CredentialInput in;
  in.authorization = {"Bearer h"};
  in.cookie = {"agentstream_token=c"};
  in.query = "access_token=q";
  EXPECT_EQ(Extract(in, o), "header:h");
  in.authorization.clear();
  EXPECT_EQ(Extract(in, o), "cookie:c");
  in.cookie.clear();
  EXPECT_EQ(Extract(in, o), "query:q");
  // A malformed header does not fall through to the cookie.
  in.authorization = {"Basic x"};
  in.cookie = {"agentstream_token=c"};
  EXPECT_THAT(Extract(in, o), HasSubstr("invalid_request"));
}

TEST(CredentialsTest, FromAnHttpRequest) {
  http::HttpRequest req;
  req.headers.Add("authorization", "Bearer one");
  req.headers.Add("COOKIE", "agentstream_token=two");
  req.query = "access_token=three";
  const CredentialInput in = CredentialInputFrom(req);
  ASSERT_EQ(in.authorization.size(), 1u);
  EXPECT_EQ(in.authorization[0], "Bearer one");
  ASSERT_EQ(in.cookie.size(), 1u);
  EXPECT_EQ(in.query, "access_token=three");
}

TEST(CredentialsTest, RedactQueryToken) {
  EXPECT_EQ(RedactQueryToken("/api/runs/r1/stream?access_token=sekrit&after=3"),
            "/api/runs/r1/stream?access_token=REDACTED&after=3");
  EXPECT_EQ(RedactQueryToken("/x?a=1&access%5Ftoken=sekrit&access_token"),
            "/x?a=1&access%5Ftoken=REDACTED&access_token=REDACTED");
  EXPECT_EQ(RedactQueryToken("/?x=?&access_token=sekrit"),
            "/?x=?&access_token=REDACTED");
  EXPECT_EQ(RedactQueryToken("/x?my_access_token=1"), "/x?my_access_token=1");
  EXPECT_EQ(RedactQueryToken("/healthz"), "/healthz");
  EXPECT_EQ(RedactQueryToken("/x?"), "/x?");
  EXPECT_EQ(RedactQueryToken("/x?a=#&access_token=s"),
            "/x?a=#&access_token=REDACTED");
}

TEST(PrincipalTest, WwwAuthenticate) {
  EXPECT_EQ(WwwAuthenticate(AuthFailure{}), "Bearer realm=\"agentstream\"");
  EXPECT_EQ(
      WwwAuthenticate(MakeFailure(kInvalidToken, "the token has expired")),
      "Bearer realm=\"agentstream\", error=\"invalid_token\", "
      "error_description=\"the token has expired\"");
  EXPECT_EQ(WwwAuthenticate(MakeFailure(kInvalidRequest, "a \"q\\\" \n")),
            "Bearer realm=\"agentstream\", error=\"invalid_request\", "
            "error_description=\"a \\\"q\\\\\\\" ?\"");
  EXPECT_EQ(WwwAuthenticate(InsufficientScope("agentstream:metrics")),
            "Bearer realm=\"agentstream\", error=\"insufficient_scope\", "
            "error_description=\"the request needs scope "
            "agentstream:metrics\", scope=\"agentstream:metrics\"");
  EXPECT_EQ(HttpStatusFor(AuthFailure{}), 401);
  EXPECT_EQ(HttpStatusFor(MakeFailure(kInvalidToken, "")), 401);
  EXPECT_EQ(HttpStatusFor(MakeFailure(kInvalidRequest, "")), 400);
  EXPECT_EQ(HttpStatusFor(InsufficientScope("x")), 403);
}

TEST(PrincipalTest, ScopesAndNames) {
  Principal p = MakePrincipal("a", {"x", "agentstream:metrics"},
                              "agentstream:admin", "agentstream:metrics");
  EXPECT_FALSE(p.admin);
  EXPECT_TRUE(p.metrics);
  p = MakePrincipal("a", {"boss"}, "boss", "");
  EXPECT_TRUE(p.admin && p.metrics);
  p = MakePrincipal("a", {""}, "", "");
  EXPECT_FALSE(p.admin || p.metrics);
  EXPECT_TRUE(IsValidPrincipalName("user@example.com"));
  EXPECT_TRUE(IsValidPrincipalName("auth0|5f7c8ec7c33c6c004bbafe82"));
  EXPECT_FALSE(IsValidPrincipalName("Zoë"));  // not ASCII: not metadata
  EXPECT_FALSE(IsValidPrincipalName("John Doe"));
  EXPECT_FALSE(IsValidPrincipalName(""));
  EXPECT_FALSE(IsValidPrincipalName("a\nb"));
  EXPECT_FALSE(IsValidScope("a b"));
  EXPECT_FALSE(IsValidScope("a,b"));
  EXPECT_TRUE(IsValidScope("agentstream:admin"));
}

}  // namespace
}  // namespace agentstream::gateway::auth
