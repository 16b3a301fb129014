#include "gateway/resume.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::gateway {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(ParseLastEventIdTest, RequestIdAndSeq) {
  auto p = ParseLastEventId("req_4f1c9a:57");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->request_id, "req_4f1c9a");
  EXPECT_EQ(p->after_seq, 57u);
  p = ParseLastEventId("client.ID_42-x:0");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->request_id, "client.ID_42-x");
  EXPECT_EQ(p->after_seq, 0u);
  p = ParseLastEventId("r:18446744073709551615");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->after_seq, 18446744073709551615u);
}

TEST(ParseLastEventIdTest, Malformed) {
  for (const std::string& bad : std::vector<std::string>{
           "", "req", "req:", ":5", "req:-1", "req:+1", "req: 1", "req:1 ",
           "req:0x10", "req:18446744073709551616",
           "req:99999999999999999999999", "a b:1", "a:b:1",
           std::string(65, 'a') + ":1", "req:1\n", "<script>:1"}) {
    EXPECT_THAT(ParseLastEventId(bad), StatusIs(kInvalid)) << bad;
  }
  // The message says what is expected and quotes the value, printable only.
  EXPECT_THAT(ParseLastEventId("x\ny"),
              StatusIs(kInvalid, HasSubstr("\"x?y\"")));
  EXPECT_THAT(ParseLastEventId("nope"),
              StatusIs(kInvalid, HasSubstr("<request_id>:<seq>")));
}

TEST(ChatResumePointTest, HeaderWinsOverQuery) {
  auto p = ChatResumePoint("r:9", {{"last_event_id", "r:3"}});
  ASSERT_THAT(p, IsOk());
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->after_seq, 9u);
  p = ChatResumePoint("", {{"last_event_id", "r:3"}, {"message", "m"}});
  ASSERT_THAT(p, IsOk());
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->request_id, "r");
  EXPECT_EQ((*p)->after_seq, 3u);
}

TEST(ChatResumePointTest, NoneIsANewRun) {
  auto p = ChatResumePoint("", {{"message", "m"}});
  ASSERT_THAT(p, IsOk());
  EXPECT_FALSE(p->has_value());
  p = ChatResumePoint("", {{"last_event_id", ""}});
  ASSERT_THAT(p, IsOk());
  EXPECT_FALSE(p->has_value());
}

TEST(ChatResumePointTest, MalformedIsAnError) {
  EXPECT_THAT(ChatResumePoint("garbage", {}), StatusIs(kInvalid));
  EXPECT_THAT(ChatResumePoint("", {{"last_event_id", "r:x"}}),
              StatusIs(kInvalid));
}

TEST(RunStreamTargetTest, FromTheStartByDefault) {
  auto t = RunStreamTarget("req_1", "", {});
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->request_id, "req_1");
  EXPECT_EQ(t->after_seq, 0u);
  EXPECT_FALSE(t->has_resume_point);
}

TEST(RunStreamTargetTest, AfterAndHeader) {
  auto t = RunStreamTarget("req_1", "", {{"after", "12"}});
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->after_seq, 12u);
  EXPECT_TRUE(t->has_resume_point);
  t = RunStreamTarget("req_1", "", {{"after", "0"}});
  ASSERT_THAT(t, IsOk());
  EXPECT_TRUE(t->has_resume_point);
  // EventSource's own reconnect to a URL with an older after=: the header
  // is newer and wins.
  t = RunStreamTarget("req_1", "req_1:30", {{"after", "12"}});
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->after_seq, 30u);
  EXPECT_TRUE(t->has_resume_point);
}

TEST(RunStreamTargetTest, Errors) {
  EXPECT_THAT(RunStreamTarget("bad id", "", {}),
              StatusIs(kInvalid, HasSubstr("not a run id")));
  EXPECT_THAT(RunStreamTarget("", "", {}), StatusIs(kInvalid));
  EXPECT_THAT(RunStreamTarget("req_1", "", {{"after", "-3"}}),
              StatusIs(kInvalid, HasSubstr("after")));
  EXPECT_THAT(RunStreamTarget("req_1", "", {{"after", ""}}),
              StatusIs(kInvalid, HasSubstr("after")));
  EXPECT_THAT(RunStreamTarget("req_1", "req_2:4", {}),
              StatusIs(kInvalid, HasSubstr("req_2")));
  EXPECT_THAT(RunStreamTarget("req_1", "req_1", {}), StatusIs(kInvalid));
}

TEST(DecideAttachOpeningTest, Matrix) {
  using Opening = RunStream::Opening;
  struct Case {
    Opening first;
    absl::Status status;
    bool resume;
    AttachOpening opening;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {Opening::kAccepted, absl::OkStatus(), true, AttachOpening::kStream,
       absl::StatusCode::kOk},
      {Opening::kAccepted, absl::OkStatus(), false, AttachOpening::kStream,
       absl::StatusCode::kOk},
      // No answer at all: 503, whether or not resuming.
      {Opening::kTimeout, absl::OkStatus(), false, AttachOpening::kError,
       absl::StatusCode::kUnavailable},
      {Opening::kTimeout, absl::OkStatus(), true, AttachOpening::kError,
       absl::StatusCode::kUnavailable},
      {Opening::kFinished, absl::OkStatus(), true, AttachOpening::kNoContent,
       absl::StatusCode::kOk},
      {Opening::kFinished, absl::OutOfRangeError("gap: x"), false,
       AttachOpening::kGapStream, absl::StatusCode::kOutOfRange},
      {Opening::kFinished, absl::NotFoundError("x"), true,
       AttachOpening::kGapStream, absl::StatusCode::kNotFound},
      {Opening::kFinished, absl::NotFoundError("x"), false,
       AttachOpening::kError, absl::StatusCode::kNotFound},
      {Opening::kFinished, absl::InvalidArgumentError("x"), true,
       AttachOpening::kError, absl::StatusCode::kInvalidArgument},
      {Opening::kFinished, absl::UnavailableError("x"), true,
       AttachOpening::kError, absl::StatusCode::kUnavailable},
      {Opening::kFinished, absl::DeadlineExceededError("x"), true,
       AttachOpening::kError, absl::StatusCode::kUnavailable},
      {Opening::kFinished, absl::CancelledError("x"), true,
       AttachOpening::kError, absl::StatusCode::kUnavailable},
      {Opening::kFinished, absl::InternalError("x"), true,
       AttachOpening::kError, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    const AttachDecision d = DecideAttachOpening(c.first, c.status, c.resume);
    EXPECT_EQ(d.opening, c.opening) << c.status;
    EXPECT_EQ(d.status.code(), c.code) << c.status;
  }
  EXPECT_THAT(DecideAttachOpening(Opening::kFinished,
                                  absl::UnavailableError("conn refused"), true)
                  .status.message(),
              HasSubstr("orchestrator unavailable: conn refused"));
}

}  // namespace
}  // namespace agentstream::gateway
