// A2A's JSON-RPC binding (docs/PROTOCOLS.md, "A2A"), without sockets: the
// requests POSTed to /api/a2a read into ours, the JSON-RPC answers, and the
// agent card served at /.well-known/agent-card.json.
//
// Methods, by name; the name says which version's shapes answer:
//
//   v1.0                    v0.3                what
//   SendStreamingMessage    message/stream      a new run, streamed as a task
//   SendMessage             message/send        a new run, its task at once
//   SubscribeToTask         tasks/resubscribe   follow a task again
//   GetTask                 tasks/get           the task's state
//   CancelTask              tasks/cancel        cancel the run
//
// Errors: -32700 (not JSON), -32600 (not a JSON-RPC 2.0 request object with
// an id: batches and notifications are not served), -32601 (unknown
// method), -32602 (bad params), -32001 (no such task, also another
// principal's), -32002 (the task has ended), -32004 (a message naming a
// taskId), -32005 (a part that is not text). Pure functions, thread-safe.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_A2A_RPC_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_A2A_RPC_H_

#include <string>
#include <string_view>
#include <variant>

#include "agentstream/v1/orchestrator.pb.h"
#include "gateway/dialects/a2a_encoder.h"
#include "gateway/dialects/run_view.h"

namespace agentstream::gateway::dialects {

inline constexpr int kJsonRpcParseError = -32700;
inline constexpr int kJsonRpcInvalidRequest = -32600;
inline constexpr int kJsonRpcMethodNotFound = -32601;
inline constexpr int kJsonRpcInvalidParams = -32602;
inline constexpr int kJsonRpcInternalError = -32603;
inline constexpr int kA2aTaskNotFound = -32001;
inline constexpr int kA2aTaskNotCancelable = -32002;
inline constexpr int kA2aUnsupportedOperation = -32004;
inline constexpr int kA2aContentTypeNotSupported = -32005;

// The longest contextId the gateway keeps (a client's UUID fits many times).
inline constexpr size_t kMaxA2aContextIdBytes = 256;

enum class A2aMethod {
  kSendStreamingMessage,
  kSendMessage,
  kSubscribeToTask,
  kGetTask,
  kCancelTask,
};

struct A2aRequest {
  Json id;  // A number or a string.
  A2aMethod method = A2aMethod::kGetTask;
  A2aVersion version = A2aVersion::kV1;
  Json params = Json::object();
};

struct A2aError {
  int code = kJsonRpcInternalError;
  std::string message;
  Json id = nullptr;  // The request's id when it was read.
};

// The request in `body` (a POST's body), or the error to answer.
std::variant<A2aRequest, A2aError> ParseA2aRequest(std::string_view body);

// The message of SendStreamingMessage / message/stream: our chat request's
// JSON (for ChatRequestFromJson: {"message", "specialists"?, "options"?,
// "on_disconnect"?}) and the client's contextId (empty: none).
//
// The text is the message's text parts, joined by a blank line. How to run
// it may be said in `metadata.agentstream` (of the params or of the
// message): {"specialists": [...], "options": {...}, "on_disconnect": "..."}.
struct A2aMessage {
  Json chat = Json::object();
  std::string context_id;
};
std::variant<A2aMessage, A2aError> ParseA2aMessage(const A2aRequest& request);

// The task id of SubscribeToTask / GetTask / CancelTask ({"id": "..."}).
std::variant<std::string, A2aError> ParseA2aTaskId(const A2aRequest& request);

// {"jsonrpc":"2.0","id":...,"result":...} and {...,"error":{code,message}}.
Json A2aResult(const Json& id, Json result);
Json A2aErrorResponse(const A2aError& error);

// The agent card: agentstream, with one skill per specialist.
// `base_url` ("http://host:port", no trailing slash) makes the endpoint's
// URL; `bearer`: the gateway asks for a bearer credential (--auth).
Json A2aAgentCard(const agentstream::v1::ListSpecialistsResponse& specialists,
                  std::string_view base_url, bool bearer);

// Whether `host` (a Host header) may be put in a URL: host[:port] of
// letters, digits, '.', '-', ':', '[', ']'.
bool IsSafeHost(std::string_view host);

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_A2A_RPC_H_
