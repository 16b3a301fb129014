// The AI SDK's chat request (docs/PROTOCOLS.md, "AI SDK UI message
// stream"): the body `DefaultChatTransport.sendMessages` POSTs,
//
//   {"id": "<chatId>", "messages": [UIMessage...],
//    "trigger": "submit-message" | "regenerate-message",
//    "messageId": "...",                        (regenerate)
//    "specialists": [...], "options": {...},    (the transport's `body`)
//    "on_disconnect": "grace" | "cancel" | "continue"}
//
// UIMessage = {"id", "role": "system"|"user"|"assistant", "parts": [...]}.
// The question is the text parts of the last user message, joined by
// newlines (a regenerate asks it again: the transport sends the messages up
// to it). The other fields are ours, read by ChatRequestFromJson
// (gateway/chat_request.h), so every limit is decided there.
//
// Errors are kInvalidArgument (kOutOfRange for a body over the POST limit).
// Pure functions, thread-safe.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_AI_SDK_REQUEST_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_AI_SDK_REQUEST_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "gateway/chat_request.h"

namespace agentstream::gateway::dialects {

// A chat id: 1..128 characters of [A-Za-z0-9._-], not "." or "..": it
// travels in the reconnect's path, and is a key of the chat index.
inline constexpr size_t kMaxChatIdBytes = 128;
bool IsValidChatId(std::string_view chat_id);

struct AiSdkChatRequest {
  std::string chat_id;
  bool regenerate = false;  // trigger "regenerate-message".
  ChatRequest chat;
};

// `body` is the raw POST body.
absl::StatusOr<AiSdkChatRequest> ParseAiSdkChatBody(std::string_view body);

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_AI_SDK_REQUEST_H_
