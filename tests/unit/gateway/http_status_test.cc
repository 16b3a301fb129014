#include "gateway/http_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {
namespace {

TEST(HttpStatusTest, MapsCodes) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kOutOfRange), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 413);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDeadlineExceeded), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnknown), 500);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDataLoss), 500);
}

TEST(HttpStatusTest, ErrorCodeNames) {
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kInvalidArgument),
            "invalid_argument");
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kResourceExhausted),
            "payload_too_large");
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kUnavailable), "unavailable");
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kDeadlineExceeded),
            "deadline_exceeded");
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kNotFound), "not_found");
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kUnknown), "internal");
}

TEST(HttpStatusTest, OnlyUnavailableAndDeadlineAreRetryable) {
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kInternal));
}

TEST(HttpStatusTest, ErrorBodyIsJsonWithCodeMessageAndRequestId) {
  const auto body = nlohmann::json::parse(ErrorBody(
      absl::InvalidArgumentError("unknown specialist: X\n\"q\""), "req_1"));
  EXPECT_EQ(body["error"], "invalid_argument");
  EXPECT_EQ(body["message"], "unknown specialist: X\n\"q\"");
  EXPECT_EQ(body["request_id"], "req_1");
  const auto no_id =
      nlohmann::json::parse(ErrorBody(absl::NotFoundError("x"), ""));
  EXPECT_FALSE(no_id.contains("request_id"));
}

TEST(HttpStatusTest, ErrorBodySurvivesInvalidUtf8) {
  const auto body = nlohmann::json::parse(
      ErrorBody(absl::InternalError("bad \xff byte"), "r"), nullptr, false);
  ASSERT_FALSE(body.is_discarded());
  EXPECT_EQ(body["error"], "internal");
}

TEST(HttpStatusTest, HttplibStatusesMapBackToConsistentCodes) {
  EXPECT_EQ(HttpStatusFor(CodeForHttpStatus(404)), 404);
  EXPECT_EQ(HttpStatusFor(CodeForHttpStatus(413)), 413);
  EXPECT_EQ(HttpStatusFor(CodeForHttpStatus(414)), 413);
  EXPECT_EQ(HttpStatusFor(CodeForHttpStatus(400)), 400);
  EXPECT_EQ(HttpStatusFor(CodeForHttpStatus(503)), 503);
  EXPECT_EQ(HttpStatusFor(CodeForHttpStatus(500)), 500);
}

}  // namespace
}  // namespace agentstream::gateway
