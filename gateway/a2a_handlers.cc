// GatewayServer::Impl, A2A (docs/PROTOCOLS.md, "A2A"): the agent card and
// the JSON-RPC endpoint. A task is one of our runs (its id is the run id);
// streaming a message starts a run as /api/chat/stream does, a resubscribe
// attaches to it, GetTask reads its log, CancelTask cancels it. The wire is
// gateway/dialects/a2a_encoder.h; the requests gateway/dialects/a2a_rpc.h.
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/run_id.h"
#include "common/update_json.h"
#include "gateway/chat_request.h"
#include "gateway/dialects/a2a_encoder.h"
#include "gateway/dialects/a2a_rpc.h"
#include "gateway/http_status.h"
#include "gateway/request_id.h"
#include "gateway/server_impl.h"

namespace agentstream::gateway {
namespace {

using dialects::A2aEncoder;
using dialects::A2aError;
using dialects::A2aRequest;
using dialects::Json;

// How long GetTask, CancelTask and a resubscribe wait for the run's log.
// The orchestrator sends what it holds at once; this bounds one that is
// stuck.
constexpr absl::Duration kReadRunLogTimeout = absl::Seconds(10);

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The JSON-RPC error for a refusal of the orchestrator about task `id`.
A2aError TaskError(const absl::Status& status, const std::string& id,
                   const Json& rpc_id) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      // Also another principal's task: the same words as an unknown one.
      return A2aError{.code = dialects::kA2aTaskNotFound,
                      .message = absl::StrCat("task not found: ", id),
                      .id = rpc_id};
    case absl::StatusCode::kOutOfRange:
      return A2aError{.code = dialects::kA2aTaskNotFound,
                      .message = absl::StrCat(
                          "task ", id, " has ended and its log has expired"),
                      .id = rpc_id};
    case absl::StatusCode::kInvalidArgument:
      return A2aError{.code = dialects::kJsonRpcInvalidParams,
                      .message = std::string(status.message()),
                      .id = rpc_id};
    default:
      return A2aError{.code = dialects::kJsonRpcInternalError,
                      .message = absl::StrCat("orchestrator unavailable: ",
                                              status.message()),
                      .id = rpc_id};
  }
}

}  // namespace

void GatewayServer::Impl::SendA2a(const ExchangePtr& ex, const Json& body,
                                  const std::string& request_id) const {
  // JSON-RPC answers its errors in the body, with 200.
  http::HttpResponse r;
  r.headers.Add("Content-Type", "application/json");
  r.headers.Add("Cache-Control", "no-store");
  r.headers.Add("X-Request-Id", request_id);
  r.body = Dump(body);
  ex->Respond(std::move(r));
}

void GatewayServer::Impl::HandleA2aCard(const ExchangePtr& ex) {
  const http::HttpRequest& req = ex->request();
  const std::string rid = RequestIdFor(req);
  // Public, as A2A discovery is: the card says which credential the
  // endpoint asks for.
  auto specialists = client_->ListSpecialists(absl::Seconds(5), rid);
  if (!specialists.ok()) return SendError(ex, specialists.status(), rid);
  std::string base = options_.public_url;
  if (base.empty()) {
    const std::string host(req.headers.GetOr("Host"));
    base = dialects::IsSafeHost(host)
               ? absl::StrCat("http://", host)
               : absl::StrCat("http://", options_.host, ":", port());
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  http::HttpResponse r;
  r.headers.Add("Content-Type", "application/json");
  r.headers.Add("Cache-Control", "no-cache");
  r.headers.Add("X-Request-Id", rid);
  r.body = Dump(dialects::A2aAgentCard(*specialists, base,
                                       auth_->mode() != auth::AuthMode::kNone));
  ex->Respond(std::move(r));
}

void GatewayServer::Impl::HandleA2aRpc(const ExchangePtr& ex) {
  const http::HttpRequest& req = ex->request();
  const std::string correlation_id = RequestIdFor(req);
  std::optional<OnBehalfOf> who = Authenticate(ex, Need::kUser, correlation_id);
  if (!who) return;
  auto parsed = dialects::ParseA2aRequest(req.body);
  if (auto* error = std::get_if<A2aError>(&parsed)) {
    return SendA2a(ex, dialects::A2aErrorResponse(*error), correlation_id);
  }
  const A2aRequest& rpc = std::get<A2aRequest>(parsed);
  switch (rpc.method) {
    case dialects::A2aMethod::kSendStreamingMessage:
      return A2aSendStreaming(ex, rpc, correlation_id, *who);
    case dialects::A2aMethod::kSendMessage:
      return A2aSend(ex, rpc, correlation_id, *who);
    default:
      break;
  }
  auto task_id = dialects::ParseA2aTaskId(rpc);
  if (auto* error = std::get_if<A2aError>(&task_id)) {
    return SendA2a(ex, dialects::A2aErrorResponse(*error), correlation_id);
  }
  const std::string& id = std::get<std::string>(task_id);
  if (!IsValidRequestId(id)) {
    // No run can have such an id: as unknown as any other.
    return SendA2a(ex,
                   dialects::A2aErrorResponse(
                       TaskError(absl::NotFoundError(""), id, rpc.id)),
                   correlation_id);
  }
  switch (rpc.method) {
    case dialects::A2aMethod::kSubscribeToTask:
      return A2aSubscribe(ex, rpc, id, *who);
    case dialects::A2aMethod::kGetTask:
      return A2aGetTask(ex, rpc, id, *who);
    case dialects::A2aMethod::kCancelTask:
      return A2aCancelTask(ex, rpc, id, *who);
    default:
      return;
  }
}

std::optional<GatewayServer::Impl::A2aChat> GatewayServer::Impl::ParseA2aChat(
    const ExchangePtr& ex, const A2aRequest& rpc,
    const std::string& correlation_id) {
  auto message = dialects::ParseA2aMessage(rpc);
  if (auto* error = std::get_if<A2aError>(&message)) {
    SendA2a(ex, dialects::A2aErrorResponse(*error), correlation_id);
    return std::nullopt;
  }
  A2aChat out;
  out.message = std::get<dialects::A2aMessage>(std::move(message));
  // Our limits and names decide, as for /api/chat/stream.
  absl::StatusOr<ChatRequest> chat =
      ChatRequestFromJson(nlohmann::json(out.message.chat));
  if (!chat.ok()) {
    SendA2a(ex,
            dialects::A2aErrorResponse(
                {.code = dialects::kJsonRpcInvalidParams,
                 .message = std::string(chat.status().message()),
                 .id = rpc.id}),
            correlation_id);
    return std::nullopt;
  }
  out.chat = *std::move(chat);
  return out;
}

void GatewayServer::Impl::A2aSend(const ExchangePtr& ex, const A2aRequest& rpc,
                                  const std::string& correlation_id,
                                  const OnBehalfOf& who) {
  std::optional<A2aChat> parsed = ParseA2aChat(ex, rpc, correlation_id);
  if (!parsed) return;
  const dialects::A2aMessage& m = parsed->message;
  const ChatRequest* chat = &parsed->chat;
  const ClientLimiter::Refusal rate =
      limiter_.TakeRunStart(ClientKey(ex->request()));
  if (!rate.status.ok()) {
    metrics_.client_run_rate_refusals_total.fetch_add(1);
    return SendError(ex, rate.status, correlation_id, rate.retry_after_seconds);
  }
  // The answer comes at once, with the task as it starts; nobody follows
  // the run after it, so by default it must not end for lack of followers.
  RunParams params = RunParamsFor(NewRunId(), who, *chat);
  if (params.on_disconnect == agentstream::v1::DISCONNECT_POLICY_UNSPECIFIED) {
    params.on_disconnect = agentstream::v1::DISCONNECT_POLICY_CONTINUE;
  }
  const std::string rid = params.request_id;
  const std::string context_id = m.context_id.empty() ? rid : m.context_id;
  a2a_contexts_.Put(rid, context_id);
  std::unique_ptr<RunStream> run = client_->StartRun(params);
  // Until the orchestrator accepted the run (its first update) or refused
  // it.
  const absl::Time deadline = clock_->Now() + options_.first_update_timeout;
  std::vector<agentstream::v1::Update> first;
  absl::Status refused;
  while (first.empty()) {
    const absl::Duration left = deadline - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      refused = absl::DeadlineExceededError(
          absl::StrCat("the orchestrator did not answer within ",
                       absl::FormatDuration(options_.first_update_timeout)));
      break;
    }
    if (run->Wait(left, &first) == RunStream::Next::kFinished) {
      refused = run->status();
      break;
    }
  }
  // Only this call ends; the run goes on (its disconnect policy).
  run->Cancel();
  if (first.empty() && !refused.ok()) {
    const bool bad = refused.code() == absl::StatusCode::kInvalidArgument;
    return SendA2a(
        ex,
        dialects::A2aErrorResponse(
            {.code = bad ? dialects::kJsonRpcInvalidParams
                         : dialects::kJsonRpcInternalError,
             .message = bad ? std::string(refused.message())
                            : absl::StrCat("orchestrator unavailable: ",
                                           refused.message()),
             .id = rpc.id}),
        correlation_id);
  }
  A2aEncoder encoder(rid, context_id, rpc.version, rpc.id);
  encoder.Seed(first);
  // 1.0's SendMessageResponse wraps the task ({"task": ...}); 0.3's result
  // is the task itself (with its `kind`).
  Json result = encoder.Task();
  if (rpc.version == dialects::A2aVersion::kV1) {
    result = Json{{"task", std::move(result)}};
  }
  SendA2a(ex, dialects::A2aResult(rpc.id, std::move(result)), rid);
}

void GatewayServer::Impl::A2aSendStreaming(const ExchangePtr& ex,
                                           const A2aRequest& rpc,
                                           const std::string& correlation_id,
                                           const OnBehalfOf& who) {
  std::optional<A2aChat> parsed = ParseA2aChat(ex, rpc, correlation_id);
  if (!parsed) return;
  const dialects::A2aMessage& m = parsed->message;
  const ChatRequest* chat = &parsed->chat;
  const std::string rid = NewRunId();
  const std::string context_id = m.context_id.empty() ? rid : m.context_id;
  a2a_contexts_.Put(rid, context_id);
  StartRun(ex, correlation_id, who, *chat,
           std::make_unique<A2aEncoder>(rid, context_id, rpc.version, rpc.id));
}

absl::StatusOr<std::vector<agentstream::v1::Update>>
GatewayServer::Impl::ReadRunLog(const std::string& run_id,
                                const OnBehalfOf& who) {
  agentstream::v1::AttachRequest attach = AttachFrom(run_id, 0);
  attach.set_replay_only(true);
  std::unique_ptr<RunStream> stream = client_->StartAttach(attach, who);
  const absl::Time deadline = clock_->Now() + kReadRunLogTimeout;
  std::vector<agentstream::v1::Update> updates;
  std::vector<agentstream::v1::Update> batch;
  while (true) {
    const absl::Duration left = deadline - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      stream->Cancel();
      return absl::DeadlineExceededError(
          absl::StrCat("the orchestrator did not answer within ",
                       absl::FormatDuration(kReadRunLogTimeout)));
    }
    switch (stream->Wait(left, &batch)) {
      case RunStream::Next::kUpdates:
        for (auto& u : batch) updates.push_back(std::move(u));
        batch.clear();
        break;
      case RunStream::Next::kTimeout:
        break;
      case RunStream::Next::kFinished:
        if (!stream->status().ok()) return stream->status();
        return updates;
    }
  }
}

void GatewayServer::Impl::A2aGetTask(const ExchangePtr& ex,
                                     const A2aRequest& rpc,
                                     const std::string& task_id,
                                     const OnBehalfOf& who) {
  auto updates = ReadRunLog(task_id, who);
  if (!updates.ok()) {
    return SendA2a(ex,
                   dialects::A2aErrorResponse(
                       TaskError(updates.status(), task_id, rpc.id)),
                   task_id);
  }
  A2aEncoder encoder(task_id, a2a_contexts_.Get(task_id), rpc.version, rpc.id);
  encoder.Seed(*updates);
  SendA2a(ex, dialects::A2aResult(rpc.id, encoder.Task()), task_id);
}

void GatewayServer::Impl::A2aCancelTask(const ExchangePtr& ex,
                                        const A2aRequest& rpc,
                                        const std::string& task_id,
                                        const OnBehalfOf& who) {
  absl::StatusOr<bool> cancelled =
      client_->Cancel(task_id, options_.cancel_timeout, who);
  if (!cancelled.ok()) {
    return SendA2a(ex,
                   dialects::A2aErrorResponse(
                       TaskError(cancelled.status(), task_id, rpc.id)),
                   task_id);
  }
  if (!*cancelled) {
    return SendA2a(
        ex,
        dialects::A2aErrorResponse(
            {.code = dialects::kA2aTaskNotCancelable,
             .message = absl::StrCat("task ", task_id, " has already ended"),
             .id = rpc.id}),
        task_id);
  }
  metrics_.cancels_total.fetch_add(1);
  AS_LOG(INFO) << "run " << task_id << " cancelled by A2A CancelTask";
  A2aEncoder encoder(task_id, a2a_contexts_.Get(task_id), rpc.version, rpc.id);
  // The task as it stands; its log may not hold the end yet.
  if (auto updates = ReadRunLog(task_id, who); updates.ok()) {
    encoder.Seed(*updates);
  }
  encoder.MarkCanceled();
  SendA2a(ex, dialects::A2aResult(rpc.id, encoder.Task()), task_id);
}

void GatewayServer::Impl::A2aSubscribe(const ExchangePtr& ex,
                                       const A2aRequest& rpc,
                                       const std::string& task_id,
                                       const OnBehalfOf& who) {
  // The state so far, sent whole as the opening task; then the run after
  // it, so that nothing sent meanwhile is lost and nothing is sent twice.
  auto updates = ReadRunLog(task_id, who);
  if (!updates.ok()) {
    return SendA2a(ex,
                   dialects::A2aErrorResponse(
                       TaskError(updates.status(), task_id, rpc.id)),
                   task_id);
  }
  auto encoder = std::make_unique<A2aEncoder>(
      task_id, a2a_contexts_.Get(task_id), rpc.version, rpc.id,
      /*resumed=*/true);
  encoder->Seed(*updates);
  if (encoder->saw_complete()) {
    // Ended: the task and its terminal status, and the response ends.
    metrics_.streams_total.fetch_add(1);
    metrics_.events_sent_total.fetch_add(2);
    http::HttpResponse r;
    r.headers = StreamHeaders(*encoder);
    r.body = encoder->Open();
    r.body.append(encoder->Done(encoder->FinalStatusFromUpdates()));
    ex->Respond(std::move(r));
    return;
  }
  const uint64_t after = encoder->last_seq();
  ServeAttach(
      ex,
      AttachTarget{
          .request_id = task_id, .after_seq = after, .has_resume_point = true},
      who, std::move(encoder), after);
}

}  // namespace agentstream::gateway
