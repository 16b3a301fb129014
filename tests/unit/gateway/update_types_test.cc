#include "gateway/update_types.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/gateway/fake_orchestrator.h"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(UpdateTypesTest, EveryKindHasItsWireName) {
  // The names come from the proto's oneof through UpdateType: a kind added
  // to the proto is selectable at once, under its wire name.
  const std::vector<std::string>& names = UpdateTypeNames();
  EXPECT_THAT(names,
              ::testing::IsSupersetOf(
                  {"status", "specialist_activated", "progress", "thinking",
                   "tool_call", "partial_result", "synthesis",
                   "specialist_complete", "complete", "error", "timeout"}));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("unknown")));
}

TEST(UpdateTypesTest, OnlyTheNamedTypesAndAlwaysErrorsAndTimeouts) {
  auto set = ParseTypeList("progress, complete");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_FALSE(set->all());
  EXPECT_TRUE(set->Sends(testing::ProgressUpdate(1, "A", 10, "x")));
  EXPECT_TRUE(set->Sends(testing::CompleteUpdate(2, "ok")));
  EXPECT_FALSE(set->Sends(testing::StatusUpdate(3, "analyzing")));
  EXPECT_TRUE(set->Sends(testing::ErrorUpdate(4, "unavailable", "x")));
  EXPECT_TRUE(set->Sends(testing::TimeoutUpdate(5, "slow")));
  EXPECT_THAT(set->Names(), ElementsAre("progress", "complete"));
}

TEST(UpdateTypesTest, AllSendsEverything) {
  const UpdateTypeSet all = UpdateTypeSet::All();
  EXPECT_TRUE(all.all());
  EXPECT_TRUE(all.Sends(testing::StatusUpdate(1, "x")));
  EXPECT_TRUE(all.Sends(Update()));  // Even a kind this build does not know.
  EXPECT_TRUE(all.Names().empty());
}

TEST(UpdateTypesTest, UnknownNamesAreRefusedByName) {
  auto bad = ParseTypeList("progress,progres,Thinking");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("progres, Thinking"));
  EXPECT_THAT(bad.status().message(), HasSubstr("known: status,"));
}

TEST(UpdateTypesTest, EmptyAndOversizedListsAreRefused) {
  EXPECT_EQ(ParseTypeList("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTypeList(" , ,").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string many;
  for (size_t i = 0; i <= kMaxTypeNames; ++i) many += "progress,";
  auto too_many = ParseTypeList(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.status().message(), HasSubstr("at most"));
}

TEST(UpdateTypesTest, TheQueryParameter) {
  auto absent = ParseTypesQuery({});
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->all());
  auto some = ParseTypesQuery({{"types", "thinking"}});
  ASSERT_TRUE(some.ok());
  EXPECT_THAT(some->Names(), ElementsAre("thinking"));
  EXPECT_FALSE(ParseTypesQuery({{"types", "nope"}}).ok());
}

}  // namespace
}  // namespace agentstream::gateway
