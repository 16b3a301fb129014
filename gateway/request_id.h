// Correlation ids: a client's `X-Request-Id` is kept only when it is a
// short token (1..64 characters of [A-Za-z0-9._-]); anything else is
// replaced by a fresh `req_<16 hex digits>` and never echoed. It is never a
// run's id (common/run_id.h; docs/GATEWAY.md, "Request ids"). Thread-safe.
#ifndef AGENTSTREAM_GATEWAY_REQUEST_ID_H_
#define AGENTSTREAM_GATEWAY_REQUEST_ID_H_

#include <string>
#include <string_view>

namespace agentstream::gateway {

inline constexpr size_t kMaxRequestIdLength = 64;

bool IsValidRequestId(std::string_view id);

// "req_" followed by 16 lower-case hex digits (64 random bits from a
// per-thread generator seeded from the OS entropy source).
std::string GenerateRequestId();

// `client_id` when valid, else a generated id.
std::string AcceptOrGenerateRequestId(std::string_view client_id);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_REQUEST_ID_H_
