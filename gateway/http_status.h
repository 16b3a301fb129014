// The gateway's one mapping from absl::StatusCode to an HTTP status, and the
// JSON error body every error response carries:
//
//   {"error": "<code>", "message": "...", "request_id": "..."}
//
//   kInvalidArgument, kFailedPrecondition, kOutOfRange  400 invalid_argument
//   ... kResourceExhausted                                  413
//   payload_too_large kNotFound                                           404
//   not_found kUnavailable, kDeadlineExceeded                     503
//   (retryable) kUnauthenticated 401, kPermissionDenied 403, kUnimplemented
//   501, kCancelled 499, everything else                    500 internal
//
// Thread-safe (no state).
#ifndef AGENTSTREAM_GATEWAY_HTTP_STATUS_H_
#define AGENTSTREAM_GATEWAY_HTTP_STATUS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace agentstream::gateway {

int HttpStatusFor(absl::StatusCode code);

// The `error` field: "invalid_argument", "payload_too_large", "not_found",
// "unavailable", "deadline_exceeded", ... (lower-case code names).
std::string ErrorCodeName(absl::StatusCode code);

// Whether a client should retry later (and gets `Retry-After`).
bool IsRetryable(absl::StatusCode code);

// The JSON body; `request_id` is omitted when empty.
std::string ErrorBody(const absl::Status& status, std::string_view request_id);

// For HTTP statuses produced outside our handlers (cpp-httplib's own 400, 404,
// 413, 414, ...): the code whose mapping describes them best.
absl::StatusCode CodeForHttpStatus(int http_status);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_HTTP_STATUS_H_
