#include "common/http/client_address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::http {
namespace {

TEST(IpAddressTest, ParsesV4V6AndMappedV4) {
  ASSERT_TRUE(IpAddress::Parse("127.0.0.1"));
  EXPECT_FALSE(IpAddress::Parse("127.0.0.1")->v6);
  EXPECT_TRUE(IpAddress::Parse("[::1]")->v6);
  EXPECT_EQ(IpAddress::Parse("::ffff:10.1.2.3")->ToString(), "10.1.2.3");
  EXPECT_FALSE(IpAddress::Parse("300.1.1.1"));
  EXPECT_FALSE(IpAddress::Parse("unknown"));
  EXPECT_FALSE(IpAddress::Parse(""));
}

TEST(IpPrefixTest, Contains) {
  auto p = ParseIpPrefix("10.0.0.0/8");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->Contains(*IpAddress::Parse("10.255.0.1")));
  EXPECT_FALSE(p->Contains(*IpAddress::Parse("11.0.0.1")));
  EXPECT_FALSE(p->Contains(*IpAddress::Parse("::1")));
  auto q = ParseIpPrefix("172.16.0.0/12");
  EXPECT_TRUE(q->Contains(*IpAddress::Parse("172.31.255.255")));
  EXPECT_FALSE(q->Contains(*IpAddress::Parse("172.32.0.0")));
  EXPECT_TRUE(
      ParseIpPrefix("fd00::/8")->Contains(*IpAddress::Parse("fd12::1")));
  EXPECT_THAT(ParseIpPrefix("10.0.0.0/33"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIpPrefix("nope"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TrustedProxiesTest, ClientAddressReadsXForwardedForFromTheRight) {
  auto t = TrustedProxies::Parse({"127.0.0.1, 10.0.0.0/8"});
  ASSERT_TRUE(t.ok());
  // Not from a trusted peer: the header is ignored.
  EXPECT_EQ(t->ClientAddress("192.0.2.9", "203.0.113.5"), "192.0.2.9");
  // From the trusted proxy: the rightmost untrusted hop.
  EXPECT_EQ(t->ClientAddress("127.0.0.1", "1.1.1.1, 203.0.113.5"),
            "203.0.113.5");
  EXPECT_EQ(t->ClientAddress("127.0.0.1", "1.1.1.1, 203.0.113.5, 10.2.3.4"),
            "203.0.113.5");
  // A spoofed left part does not matter; garbage ends the walk.
  EXPECT_EQ(t->ClientAddress("127.0.0.1", "evil, 198.51.100.7"),
            "198.51.100.7");
  EXPECT_EQ(t->ClientAddress("127.0.0.1", "198.51.100.7, garbage"),
            "127.0.0.1");
  EXPECT_EQ(t->ClientAddress("127.0.0.1", ""), "127.0.0.1");
  TrustedProxies none;
  EXPECT_EQ(none.ClientAddress("127.0.0.1", "203.0.113.5"), "127.0.0.1");
  EXPECT_THAT(TrustedProxies::Parse({"10.0.0.0/8,bogus"}).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace agentstream::http
