// Who calls the orchestrator (orchestrator/caller.h): principal metadata is
// believed from trusted peers only; anyone else is their certificate's name
// or anonymous, never an administrator, and cannot choose a run's id.
#include "orchestrator/caller.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

MetadataLookup From(std::map<std::string, std::string> md) {
  return [md = std::move(md)](std::string_view key) {
    auto it = md.find(std::string(key));
    return it == md.end() ? std::string() : it->second;
  };
}

const std::map<std::string, std::string> kClaims = {
    {kPrincipalMetadata, "alice"},
    {kAdminMetadata, "1"},
    {kClientAddressMetadata, "203.0.113.7"},
    {kCorrelationMetadata, "trace-1"}};

TEST(CallerTest, EveryPeerIsTrustedByDefault) {
  const Caller c =
      ResolveCaller(TrustOptions{}, "", "ipv4:127.0.0.1:5", From(kClaims));
  EXPECT_TRUE(c.trusted);
  EXPECT_EQ(c.principal, "alice");
  EXPECT_TRUE(c.admin);
  EXPECT_EQ(c.client_address, "203.0.113.7");
  EXPECT_EQ(c.correlation_id, "trace-1");
}

TEST(CallerTest, OnlyTheNamedCertificatesAreBelieved) {
  TrustOptions trust;
  trust.trusted_peers = {"gateway"};
  const Caller gateway =
      ResolveCaller(trust, "gateway", "ipv4:10.0.0.2:1", From(kClaims));
  EXPECT_TRUE(gateway.trusted);
  EXPECT_EQ(gateway.principal, "alice");

  // Another certificate: its own name, whatever the metadata says.
  const Caller other =
      ResolveCaller(trust, "batch-job", "ipv4:10.0.0.3:1", From(kClaims));
  EXPECT_FALSE(other.trusted);
  EXPECT_EQ(other.principal, "peer:batch-job");
  EXPECT_FALSE(other.admin);
  EXPECT_TRUE(other.client_address.empty());
  EXPECT_EQ(other.correlation_id, "trace-1");

  // Plaintext: anonymous.
  const Caller plain =
      ResolveCaller(trust, "", "ipv4:10.0.0.4:1", From(kClaims));
  EXPECT_FALSE(plain.trusted);
  EXPECT_EQ(plain.principal, "");
  EXPECT_FALSE(plain.admin);
}

TEST(CallerTest, AccessIsTheOwnersOrAnAdministrators) {
  Caller alice;
  alice.principal = "alice";
  EXPECT_TRUE(MayAccess(alice, "alice"));
  EXPECT_FALSE(MayAccess(alice, "bob"));
  EXPECT_FALSE(MayAccess(alice, ""));
  EXPECT_TRUE(MayAccessKey(alice, OwnerKey("alice")));
  EXPECT_FALSE(MayAccessKey(alice, OwnerKey("bob")));
  Caller ops;
  ops.principal = "ops";
  ops.admin = true;
  EXPECT_TRUE(MayAccess(ops, "bob"));
  EXPECT_TRUE(MayAccessKey(ops, OwnerKey("bob")));
}

TEST(CallerTest, APrincipalIsBounded) {
  std::map<std::string, std::string> md = {
      {kPrincipalMetadata, std::string(10000, 'x')}};
  const Caller c = ResolveCaller(TrustOptions{}, "", "", From(md));
  EXPECT_EQ(c.principal.size(), kMaxPrincipalBytes);
}

}  // namespace
}  // namespace agentstream::orchestrator
