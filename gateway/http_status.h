// The gateway's one mapping from absl::StatusCode to an HTTP status, and the
// JSON error body every error response carries:
//
//   {"error": "<code>", "message": "...", "request_id": "..."}
//
//   kInvalidArgument                  400 invalid_argument
//   kFailedPrecondition               409 failed_precondition
//   kOutOfRange                       413 payload_too_large (a value or body
//                                         over its limit)
//   kResourceExhausted                429 too_many_requests (+ Retry-After)
//   kNotFound                         404 not_found
//   kUnavailable, kDeadlineExceeded   503 (+ Retry-After: retryable)
//   kUnauthenticated 401, kPermissionDenied 403, kUnimplemented 501,
//   kCancelled 499, everything else 500 internal
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

// For HTTP statuses the HTTP server produces itself (400, 404, 405, 408,
// 413, 414, 429, 431, 503, ...): the code whose name describes them best.
absl::StatusCode CodeForHttpStatus(int http_status);

// The `error` field for a status the HTTP server produces itself:
// "method_not_allowed", "request_timeout", "uri_too_long",
// "header_fields_too_large", ...; else the name of CodeForHttpStatus.
std::string ErrorNameForHttpStatus(int http_status);
// The JSON body of such a response.
std::string HttpErrorBody(int http_status, std::string_view message,
                          std::string_view request_id);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_HTTP_STATUS_H_
