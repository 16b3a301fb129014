#include "gateway/http_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {
namespace {

TEST(HttpStatusTest, MapsCodes) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kOutOfRange), 413);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
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
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kOutOfRange), "payload_too_large");
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kResourceExhausted),
            "too_many_requests");
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

TEST(HttpStatusTest, TheServersOwnStatusesHaveTheirOwnNames) {
  EXPECT_EQ(ErrorNameForHttpStatus(405), "method_not_allowed");
  EXPECT_EQ(ErrorNameForHttpStatus(408), "request_timeout");
  EXPECT_EQ(ErrorNameForHttpStatus(413), "payload_too_large");
  EXPECT_EQ(ErrorNameForHttpStatus(414), "uri_too_long");
  EXPECT_EQ(ErrorNameForHttpStatus(429), "too_many_requests");
  EXPECT_EQ(ErrorNameForHttpStatus(431), "header_fields_too_large");
  EXPECT_EQ(ErrorNameForHttpStatus(505), "http_version_not_supported");
  EXPECT_EQ(ErrorNameForHttpStatus(400), "invalid_argument");
  EXPECT_EQ(ErrorNameForHttpStatus(404), "not_found");
  EXPECT_EQ(ErrorNameForHttpStatus(503), "unavailable");
  const auto body = nlohmann::json::parse(
      HttpErrorBody(431, "too many header fields", "req_2"));
  EXPECT_EQ(body["error"], "header_fields_too_large");
  EXPECT_EQ(body["request_id"], "req_2");
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
