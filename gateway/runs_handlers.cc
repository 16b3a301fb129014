// GatewayServer::Impl, part 3: existing runs. Resuming (a chat stream
// reconnect with Last-Event-ID, or GET /api/runs/{id}/stream?after=SEQ) and
// second observers attach to the run in the orchestrator; DELETE cancels it.
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "gateway/chat_request.h"
#include "gateway/http_status.h"
#include "gateway/request_id.h"
#include "gateway/resume.h"
#include "gateway/server_impl.h"

namespace agentstream::gateway {

void GatewayServer::Impl::HandleRunStream(const ExchangePtr& ex) {
  const http::HttpRequest& req = ex->request();
  const std::string path_id(ex->param("id"));
  std::optional<OnBehalfOf> who =
      Authenticate(ex, Need::kUser, RequestIdFor(req));
  if (!who) return;
  const auto params = http::ParseQuery(req.query);
  auto target =
      RunStreamTarget(path_id, req.headers.GetOr("Last-Event-ID"), params);
  if (!target.ok()) {
    const std::string rid =
        IsValidRequestId(path_id) ? path_id : RequestIdFor(req);
    return SendError(ex, target.status(), rid);
  }
  auto format = ParseStreamFormatQuery(params);
  if (!format.ok()) return SendError(ex, format.status(), target->request_id);
  ServeAttach(ex, *target, *format, *who);
}

void GatewayServer::Impl::ServeAttach(const ExchangePtr& ex,
                                      const AttachTarget& target,
                                      const StreamFormat& format,
                                      const OnBehalfOf& who) {
  ServeAttach(
      ex, target, who,
      std::make_unique<ChatStreamEncoder>(
          target.request_id, ServerFormat(format), options_.retry_ms,
          target.has_resume_point ? std::optional<uint64_t>(target.after_seq)
                                  : std::nullopt),
      target.after_seq);
}

void GatewayServer::Impl::ServeAttach(const ExchangePtr& ex,
                                      const AttachTarget& target,
                                      const OnBehalfOf& who,
                                      std::unique_ptr<StreamEncoder> encoder,
                                      uint64_t attach_after_seq) {
  const std::string& rid = target.request_id;
  std::unique_ptr<ClientLimiter::StreamSlot> slot = ReserveStreamSlots(ex, rid);
  if (!slot) return;
  auto state = std::make_shared<StreamState>(
      metrics_, std::move(slot),
      client_->StartAttach(AttachFrom(rid, attach_after_seq), who),
      std::move(encoder));
  NegotiateGzip(ex->request(), *state);
  // The orchestrator accepts an attach with its initial metadata at once,
  // even when the run has nothing new yet, and refuses one with a status
  // alone: the response starts as soon as either comes.
  const bool resuming = target.has_resume_point;
  const uint64_t after_seq = target.after_seq;
  auto opener = [this, ex, rid, resuming, after_seq](StreamState& s,
                                                     bool timed_out) {
    RunStream::Opening first = s.run->WaitOpening(absl::ZeroDuration());
    if (first == RunStream::Opening::kTimeout) {
      if (!timed_out) return OpenResult::kWaiting;
      s.run->Cancel();
    }
    const AttachDecision decision = DecideAttachOpening(
        first,
        first == RunStream::Opening::kFinished ? s.run->status()
                                               : absl::OkStatus(),
        resuming);
    switch (decision.opening) {
      case AttachOpening::kStream:
        if (resuming) metrics_.resumes_total.fetch_add(1);
        return StartSse(ex, s) ? OpenResult::kStreaming : OpenResult::kAnswered;
      case AttachOpening::kNoContent: {
        // After the final event: 204 tells EventSource to stop reconnecting.
        if (resuming) metrics_.resumes_total.fetch_add(1);
        http::HttpResponse r;
        r.status = 204;
        r.headers.Add("Cache-Control", "no-store");
        r.headers.Add("X-Request-Id", rid);
        ex->Respond(std::move(r));
        return OpenResult::kAnswered;
      }
      case AttachOpening::kGapStream: {
        if (resuming) metrics_.resumes_total.fetch_add(1);
        metrics_.gaps_total.fetch_add(1);
        metrics_.streams_total.fetch_add(1);
        metrics_.events_sent_total.fetch_add(3);
        AS_LOG(INFO) << "resume of " << rid << " after " << after_seq
                     << ": gap (" << decision.status << ")";
        http::HttpResponse r;
        r.headers = StreamHeaders(*s.encoder);
        r.body = GapStream(*s.encoder, decision.status);
        ex->Respond(std::move(r));
        return OpenResult::kAnswered;
      }
      case AttachOpening::kError:
        SendError(ex, decision.status, rid);
        return OpenResult::kAnswered;
    }
    return OpenResult::kAnswered;
  };
  ServeStream(ex, std::move(state), std::move(opener),
              options_.attach_first_answer_wait);
}

void GatewayServer::Impl::HandleCancel(const ExchangePtr& ex) {
  const std::string id(ex->param("id"));
  std::optional<OnBehalfOf> who =
      Authenticate(ex, Need::kUser, RequestIdFor(ex->request()));
  if (!who) return;
  if (!IsValidRequestId(id)) {
    return SendError(ex,
                     absl::InvalidArgumentError(absl::StrCat(
                         "not a run id (1..64 characters of [A-Za-z0-9._-])")),
                     RequestIdFor(ex->request()));
  }
  absl::StatusOr<bool> cancelled =
      client_->Cancel(id, options_.cancel_timeout, *who);
  if (cancelled.ok()) {
    if (*cancelled) {
      metrics_.cancels_total.fetch_add(1);
      AS_LOG(INFO) << "run " << id << " cancelled by request";
      return SendJson(ex, 202, {{"request_id", id}, {"cancelled", true}}, id);
    }
    return SendError(ex,
                     absl::FailedPreconditionError(
                         absl::StrCat("run ", id, " has already ended")),
                     id);
  }
  const absl::Status& status = cancelled.status();
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return SendError(
          ex, absl::NotFoundError(absl::StrCat("no such run: ", id)), id);
    case absl::StatusCode::kInvalidArgument:
      return SendError(ex, status, id);
    default:
      if (IsRetryable(status.code()) ||
          status.code() == absl::StatusCode::kCancelled) {
        return SendError(ex,
                         absl::UnavailableError(absl::StrCat(
                             "orchestrator unavailable: ", status.message())),
                         id);
      }
      return SendError(ex, status, id);
  }
}

}  // namespace agentstream::gateway
