// POST /api/ag-ui's body, AG-UI's RunAgentInput (docs/PROTOCOLS.md,
// "AG-UI"), as our chat request:
//
//   {"threadId": "...", "runId": "...", "messages": [...], "state": {...},
//    "tools": [...], "context": [...],
//    "forwardedProps": {"specialists": ["DataAnalyst"], "options": {...},
//                       "on_disconnect": "grace|cancel|continue"}}
//
// The question is the last message whose role is "user" (its `content`, a
// string, or the text parts of a content array). `state`, `tools` and
// `context` are the client's and not used. Errors are kInvalidArgument (or
// kOutOfRange for a body over the limit), naming the field; the chat
// request's own checks are ChatRequestFromJson's. Pure, thread-safe.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_REQUEST_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_REQUEST_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "gateway/chat_request.h"
#include "gateway/dialects/ag_ui_encoder.h"

namespace agentstream::gateway::dialects {

// The longest threadId / runId accepted.
inline constexpr size_t kMaxAgUiIdBytes = 256;

struct AgUiInput {
  // Empty when the client sent none (the gateway names them then).
  AgUiRunNames names;
  ChatRequest chat;
};

absl::StatusOr<AgUiInput> ParseAgUiInput(std::string_view body);

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_REQUEST_H_
