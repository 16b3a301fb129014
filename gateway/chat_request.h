// Parsing and validation of a chat request, for both forms of
// /api/chat/stream, before anything is sent to the orchestrator:
//
//   GET  ?message=...&specialists=A,B&options=<json object>
//        &on_disconnect=grace|cancel|continue  (+ stream_format.h's)
//   POST {"message": "...", "specialists": ["A"], "options": {...},
//         "on_disconnect": "cancel"}  (+ stream_format.h's fields)
//
// Errors (absl codes, mapped to HTTP by http_status.h):
//   kInvalidArgument    missing or empty message, malformed JSON, wrong types,
//                       invalid UTF-8, too deeply nested options, bad names,
//                       an on_disconnect other than grace|cancel|continue,
//                       a bad stream format (stream_format.h)
//   kOutOfRange         message over 16 KiB (GET) or body over 256 KiB (POST)
//
// Pure functions, thread-safe.
#ifndef AGENTSTREAM_GATEWAY_CHAT_REQUEST_H_
#define AGENTSTREAM_GATEWAY_CHAT_REQUEST_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "gateway/stream_format.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {

inline constexpr size_t kMaxGetMessageBytes = 16 * 1024;
inline constexpr size_t kMaxPostBodyBytes = 256 * 1024;
// Deeper JSON is refused: the JSON <-> protobuf Struct conversions recurse,
// and request threads run on small stacks.
inline constexpr int kMaxOptionsDepth = 32;
inline constexpr size_t kMaxSpecialists = 32;
inline constexpr size_t kMaxSpecialistNameBytes = 128;

struct ChatRequest {
  std::string message;
  // Forced specialist set (empty: let the orchestrator plan).
  std::vector<std::string> specialists;
  nlohmann::json options = nlohmann::json::object();
  // How the stream is sent (heartbeat, types, batching; stream_format.h).
  StreamFormat format;
  // What the orchestrator does when the last follower of the run goes away.
  agentstream::v1::DisconnectPolicy on_disconnect =
      agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED;
};

// `params` are the decoded query parameters (cpp-httplib's Params).
absl::StatusOr<ChatRequest> ParseChatQuery(
    const std::multimap<std::string, std::string>& params);

// `body` is the raw POST body.
absl::StatusOr<ChatRequest> ParseChatBody(std::string_view body);

// The two halves of ParseChatBody, for the dialects (gateway/dialects/),
// whose bodies are other JSON documents that carry a chat request:
// a body within the size and nesting bounds that is a JSON object, and the
// chat request read from such an object's fields.
absl::StatusOr<nlohmann::json> ParseJsonBody(std::string_view body);
absl::StatusOr<ChatRequest> ChatRequestFromJson(const nlohmann::json& json);

// "grace" (or empty) -> UNSPECIFIED (the orchestrator's grace period),
// "cancel" -> CANCEL, "continue" -> CONTINUE; anything else kInvalidArgument.
absl::StatusOr<agentstream::v1::DisconnectPolicy> ParseDisconnectPolicy(
    std::string_view value);

// Helpers exposed for tests.
bool IsValidUtf8(std::string_view s);
// The deepest nesting of objects/arrays in JSON text (strings are skipped).
int JsonNestingDepth(std::string_view json_text);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_CHAT_REQUEST_H_
