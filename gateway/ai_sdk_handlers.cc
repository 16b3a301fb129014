// GatewayServer::Impl, the AI SDK's UI message stream (docs/PROTOCOLS.md,
// "AI SDK UI message stream"): `DefaultChatTransport.sendMessages` POSTs a
// chat to /api/ai-sdk/chat, which starts a run rendered by AiSdkEncoder;
// `reconnectToStream` GETs /api/ai-sdk/chat/{chatId}/stream, which finds
// the chat's run in the chat index and attaches to it.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/http/server.h"
#include "common/run_id.h"
#include "gateway/dialects/ai_sdk_encoder.h"
#include "gateway/dialects/ai_sdk_request.h"
#include "gateway/http_status.h"
#include "gateway/resume.h"
#include "gateway/server_impl.h"

namespace agentstream::gateway {

std::unique_ptr<StreamEncoder> GatewayServer::Impl::AiSdkStream(
    const OnBehalfOf& who, const std::string& chat_id,
    const std::string& run_id, bool new_run,
    std::optional<uint64_t> resume_after) {
  // The hooks hold the index, not the server: a stream may end after it.
  std::shared_ptr<dialects::ChatIndex> chats = ai_sdk_chats_;
  dialects::AiSdkEncoder::Hooks hooks;
  if (new_run) {
    // A new run becomes the chat's run once its stream starts (not when a
    // refused request named it). A replay or a continuation leaves the
    // chat's run as it is: a newer run may have started meanwhile.
    hooks.opened = [chats, principal = who.principal, chat_id, run_id] {
      chats->Started(principal, chat_id, run_id);
    };
  }
  hooks.finished = [chats, principal = who.principal, chat_id,
                    run_id](uint64_t final_seq) {
    chats->Finished(principal, chat_id, run_id, final_seq);
  };
  return std::make_unique<dialects::AiSdkEncoder>(run_id, resume_after,
                                                  std::move(hooks));
}

void GatewayServer::Impl::HandleAiSdkChat(const ExchangePtr& ex) {
  const http::HttpRequest& req = ex->request();
  const std::string correlation_id = RequestIdFor(req);
  std::optional<OnBehalfOf> who = Authenticate(ex, Need::kUser, correlation_id);
  if (!who) return;
  absl::StatusOr<dialects::AiSdkChatRequest> chat =
      dialects::ParseAiSdkChatBody(req.body);
  if (!chat.ok()) return SendError(ex, chat.status(), correlation_id);
  // A regenerate is a new run of the same question: a run never restarts.
  const std::string rid = NewRunId();
  StartRun(
      ex, correlation_id, *who, chat->chat,
      AiSdkStream(*who, chat->chat_id, rid, /*new_run=*/true, std::nullopt));
}

void GatewayServer::Impl::HandleAiSdkReconnect(const ExchangePtr& ex) {
  const http::HttpRequest& req = ex->request();
  const std::string correlation_id = RequestIdFor(req);
  std::optional<OnBehalfOf> who = Authenticate(ex, Need::kUser, correlation_id);
  if (!who) return;
  const std::string chat_id =
      http::PercentDecode(ex->param("chatId"), /*plus_as_space=*/false);
  if (!dialects::IsValidChatId(chat_id)) {
    return SendError(ex,
                     absl::InvalidArgumentError(absl::StrCat(
                         "not a chat id (1..", dialects::kMaxChatIdBytes,
                         " characters of [A-Za-z0-9._-])")),
                     correlation_id);
  }
  const std::string header(req.headers.GetOr("Last-Event-ID"));
  std::optional<ResumePoint> point;
  if (!header.empty()) {
    absl::StatusOr<ResumePoint> parsed = ParseLastEventId(header);
    if (!parsed.ok()) return SendError(ex, parsed.status(), correlation_id);
    point = *parsed;
  }
  const std::optional<dialects::ChatIndex::Entry> entry =
      ai_sdk_chats_->Find(who->principal, chat_id);
  // Nothing to send: no run of this chat is known (204 is the transport's
  // "no active stream"), or its stream was sent to the end and the client
  // asks without a cursor, or from at least where that ending was.
  const bool none = point ? entry && entry->run_id == point->request_id &&
                                entry->finished &&
                                point->after_seq >= entry->final_seq
                          : !entry || entry->finished;
  if (none) {
    http::HttpResponse r;
    r.status = 204;
    r.headers.Add("Cache-Control", "no-store");
    r.headers.Add("X-Request-Id", entry ? entry->run_id : correlation_id);
    ex->Respond(std::move(r));
    return;
  }
  // Without a cursor the run is replayed from its start (useChat starts
  // the message again on `start`); with one, it continues after it. Both
  // attach from the start: the encoder rebuilds the state up to the point
  // without sending it. A run the orchestrator no longer holds is then a
  // `gap` in the stream, not a 404.
  const std::string run_id = point ? point->request_id : entry->run_id;
  const AttachTarget target{.request_id = run_id,
                            .after_seq = point ? point->after_seq : 0,
                            .has_resume_point = true};
  ServeAttach(ex, target, *who,
              AiSdkStream(*who, chat_id, run_id, /*new_run=*/false,
                          point ? std::optional<uint64_t>(point->after_seq)
                                : std::nullopt),
              /*attach_after_seq=*/0);
}

}  // namespace agentstream::gateway
