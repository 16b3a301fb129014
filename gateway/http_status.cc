#include "gateway/http_status.h"

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kOutOfRange:
      return 413;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorCodeName(absl::StatusCode code) {
  if (code == absl::StatusCode::kOutOfRange) return "payload_too_large";
  if (code == absl::StatusCode::kResourceExhausted) return "too_many_requests";
  if (code == absl::StatusCode::kUnknown) return "internal";
  std::string name = absl::StatusCodeToString(code);  // "INVALID_ARGUMENT"
  absl::AsciiStrToLower(&name);
  return name;
}

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

namespace {

std::string Body(std::string error, std::string_view message,
                 std::string_view request_id) {
  nlohmann::json body = {
      {"error", std::move(error)},
      {"message", std::string(message)},
  };
  if (!request_id.empty()) body["request_id"] = std::string(request_id);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string ErrorBody(const absl::Status& status, std::string_view request_id) {
  return Body(
      ErrorCodeName(status.code()),
      std::string_view(status.message().data(), status.message().size()),
      request_id);
}

std::string ErrorNameForHttpStatus(int http_status) {
  switch (http_status) {
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 414:
      return "uri_too_long";
    case 417:
      return "expectation_failed";
    case 431:
      return "header_fields_too_large";
    case 505:
      return "http_version_not_supported";
    default:
      return ErrorCodeName(CodeForHttpStatus(http_status));
  }
}

std::string HttpErrorBody(int http_status, std::string_view message,
                          std::string_view request_id) {
  return Body(ErrorNameForHttpStatus(http_status), message, request_id);
}

absl::StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
    case 405:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 409:
      return absl::StatusCode::kFailedPrecondition;
    case 413:
    case 414:
    case 431:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      if (http_status >= 400 && http_status < 500) {
        return absl::StatusCode::kInvalidArgument;
      }
      return absl::StatusCode::kInternal;
  }
}

}  // namespace agentstream::gateway
