#include "gateway/http_status.h"

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
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
      return 413;
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
  if (code == absl::StatusCode::kResourceExhausted) return "payload_too_large";
  if (code == absl::StatusCode::kUnknown) return "internal";
  std::string name = absl::StatusCodeToString(code);  // "INVALID_ARGUMENT"
  absl::AsciiStrToLower(&name);
  return name;
}

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

std::string ErrorBody(const absl::Status& status, std::string_view request_id) {
  nlohmann::json body = {
      {"error", ErrorCodeName(status.code())},
      {"message", std::string(status.message())},
  };
  if (!request_id.empty()) body["request_id"] = std::string(request_id);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
    case 413:
    case 414:
    case 431:
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
