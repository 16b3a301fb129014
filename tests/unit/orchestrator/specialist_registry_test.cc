#include "orchestrator/specialist_registry.h"

#include <map>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/orchestrator/fake_specialist.h"

namespace agentstream::orchestrator {
namespace {

using ::agentstream::orchestrator::testing::FakeSpecialistClient;
using ::agentstream::orchestrator::testing::MakeCard;
using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseSpecialistFlagsTest, AcceptsRepeatedAndCommaSeparatedValues) {
  auto parsed = ParseSpecialistFlags(
      {"DataAnalyst=127.0.0.1:50061",
       "RiskAnalyst=dns:///risk:50051, ComplianceExpert=c:1"});
  ASSERT_THAT(parsed, IsOk());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[1].name, "RiskAnalyst");
  EXPECT_EQ((*parsed)[1].address, "dns:///risk:50051");
  EXPECT_EQ((*parsed)[2].address, "c:1");
}

TEST(ParseSpecialistFlagsTest, AcceptsMultiAddressTargetsOfReplicas) {
  auto parsed = ParseSpecialistFlags(
      {"Synthetic=ipv4:127.0.0.1:5001,127.0.0.1:5002, 127.0.0.1:5003,"
       "RiskAnalyst=r:1",
       "DataAnalyst=d:1"});
  ASSERT_THAT(parsed, IsOk());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].name, "Synthetic");
  EXPECT_EQ((*parsed)[0].address,
            "ipv4:127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003");
  EXPECT_EQ((*parsed)[1].address, "r:1");
  // A continuation never crosses into another value.
  EXPECT_THAT(ParseSpecialistFlags({"A=ipv4:127.0.0.1:1", "127.0.0.1:2"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseSpecialistFlagsTest, RejectsMalformedAndDuplicateValues) {
  EXPECT_THAT(
      ParseSpecialistFlags({"DataAnalyst"}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NAME=ADDRESS")));
  EXPECT_THAT(ParseSpecialistFlags({"=x:1"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseSpecialistFlags({"A=x:1", "a=y:2"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
}

TEST(SpecialistRegistryTest, ReportsUnreachableSpecialistsAndPicksThemUpLater) {
  auto risk = std::make_shared<FakeSpecialistClient>(
      MakeCard("RiskAnalyst", {"risk"}), "risk:1");
  auto data = std::make_shared<FakeSpecialistClient>(
      MakeCard("DataAnalyst", {"totals"}), "data:1");
  risk->SetDescribeStatus(absl::UnavailableError("connection refused"));
  std::map<std::string, std::shared_ptr<FakeSpecialistClient>> by_address = {
      {"risk:1", risk}, {"data:1", data}};
  SpecialistRegistry registry(
      {{"DataAnalyst", "data:1"}, {"RiskAnalyst", "risk:1"}},
      [&](const std::string& a) { return by_address.at(a); },
      SpecialistRegistry::Options());
  registry.RefreshOnce(/*all=*/true);

  agentstream::v1::ListSpecialistsResponse list = registry.List();
  ASSERT_EQ(list.specialists_size(), 2);
  EXPECT_TRUE(list.specialists(0).available());
  EXPECT_EQ(list.specialists(0).card().keywords(0), "totals");
  EXPECT_EQ(list.specialists(0).address(), "data:1");
  EXPECT_FALSE(list.specialists(1).available());
  EXPECT_EQ(list.specialists(1).card().name(), "RiskAnalyst");
  // Not reachable: planned only when named.
  EXPECT_TRUE(registry.PlanningCards()[1].explicit_only());
  EXPECT_EQ(registry.available_count(), 1u);

  risk->SetDescribeStatus(absl::OkStatus());
  registry.RefreshOnce(/*all=*/false);
  EXPECT_TRUE(registry.List().specialists(1).available());
  EXPECT_FALSE(registry.PlanningCards()[1].explicit_only());
  EXPECT_EQ(registry.Client("RiskAnalyst"), risk);
  EXPECT_EQ(registry.Client("Nobody"), nullptr);
}

TEST(SpecialistRegistryTest, BackgroundRetryFindsASpecialistStartedLater) {
  auto risk = std::make_shared<FakeSpecialistClient>(
      MakeCard("RiskAnalyst", {"risk"}), "risk:1");
  risk->SetDescribeStatus(absl::UnavailableError("not yet"));
  SpecialistRegistry::Options options;
  options.retry_interval = absl::Milliseconds(10);
  SpecialistRegistry registry(
      {{"RiskAnalyst", "risk:1"}}, [&](const std::string&) { return risk; },
      options);
  registry.Start();
  EXPECT_EQ(registry.available_count(), 0u);
  risk->SetDescribeStatus(absl::OkStatus());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (registry.available_count() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(registry.available_count(), 1u);
  registry.Stop();
}

TEST(SpecialistRegistryTest, ConfiguredNameWinsOverTheCardsName) {
  auto fake = std::make_shared<FakeSpecialistClient>(MakeCard("Risk", {"risk"}),
                                                     "risk:1");
  SpecialistRegistry registry(
      {{"RiskAnalyst", "risk:1"}}, [&](const std::string&) { return fake; },
      SpecialistRegistry::Options());
  registry.RefreshOnce(true);
  EXPECT_EQ(registry.PlanningCards()[0].name(), "RiskAnalyst");
}

}  // namespace
}  // namespace agentstream::orchestrator
