// GatewayServer::Impl, part 3: existing runs. Resuming (a chat stream
// reconnect with Last-Event-ID, or GET /api/runs/{id}/stream?after=SEQ) and
// second observers attach to the run in the orchestrator; DELETE cancels it.
#include <httplib.h>

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

void GatewayServer::Impl::HandleRunStream(const httplib::Request& req,
                                          httplib::Response& res) {
  const std::string path_id =
      req.matches.size() > 1 ? req.matches[1].str() : "";
  auto target = RunStreamTarget(path_id, req.get_header_value("Last-Event-ID"),
                                req.params);
  if (!target.ok()) {
    const std::string rid =
        IsValidRequestId(path_id) ? path_id : RequestIdFor(req, res);
    res.set_header("X-Request-Id", rid);
    return SendError(res, target.status(), rid);
  }
  auto heartbeat = ParseHeartbeatQuery(req.params);
  if (!heartbeat.ok()) {
    res.set_header("X-Request-Id", target->request_id);
    return SendError(res, heartbeat.status(), target->request_id);
  }
  ServeAttach(req, res, *target, *heartbeat);
}

void GatewayServer::Impl::ServeAttach(const httplib::Request& req,
                                      httplib::Response& res,
                                      const AttachTarget& target,
                                      HeartbeatStyle heartbeat) {
  const std::string& rid = target.request_id;
  res.set_header("X-Request-Id", rid);
  if (!ReserveStreamSlot(res, rid)) return;
  const std::optional<uint64_t> resumed_after =
      target.has_resume_point ? std::optional<uint64_t>(target.after_seq)
                              : std::nullopt;
  auto state = std::make_shared<StreamState>(
      metrics_, client_->StartAttach(rid, target.after_seq),
      ChatStreamEncoder(rid, heartbeat, options_.retry_ms, resumed_after));
  // The orchestrator accepts an attach with its initial metadata at once,
  // even when the run has nothing new yet, and refuses one with a status
  // alone: the response starts as soon as either comes.
  const RunStream::Opening first =
      state->run->WaitOpening(options_.attach_first_answer_wait);
  if (first == RunStream::Opening::kTimeout) state->run->Cancel();
  const AttachDecision decision = DecideAttachOpening(
      first,
      first == RunStream::Opening::kFinished ? state->run->status()
                                             : absl::OkStatus(),
      target.has_resume_point);
  switch (decision.opening) {
    case AttachOpening::kStream:
      if (target.has_resume_point) metrics_.resumes_total.fetch_add(1);
      return ServeStream(req, res, std::move(state));
    case AttachOpening::kNoContent:
      // After the final event: 204 tells EventSource to stop reconnecting.
      if (target.has_resume_point) metrics_.resumes_total.fetch_add(1);
      res.status = 204;
      res.set_header("Cache-Control", "no-store");
      return;
    case AttachOpening::kGapStream: {
      if (target.has_resume_point) metrics_.resumes_total.fetch_add(1);
      metrics_.gaps_total.fetch_add(1);
      metrics_.streams_total.fetch_add(1);
      metrics_.events_sent_total.fetch_add(3);
      AS_LOG(INFO) << "resume of " << rid << " after " << target.after_seq
                   << ": gap (" << decision.status << ")";
      SetStreamHeaders(req, res);
      res.set_content(GapStream(state->encoder, decision.status),
                      "text/event-stream; charset=utf-8");
      return;
    }
    case AttachOpening::kError:
      return SendError(res, decision.status, rid);
  }
}

void GatewayServer::Impl::HandleCancel(const httplib::Request& req,
                                       httplib::Response& res) {
  const std::string id = req.matches.size() > 1 ? req.matches[1].str() : "";
  if (!IsValidRequestId(id)) {
    return SendError(res,
                     absl::InvalidArgumentError(absl::StrCat(
                         "not a run id (1..64 characters of [A-Za-z0-9._-])")),
                     RequestIdFor(req, res));
  }
  res.set_header("X-Request-Id", id);
  absl::StatusOr<bool> cancelled = client_->Cancel(id, options_.cancel_timeout);
  if (cancelled.ok()) {
    if (*cancelled) {
      metrics_.cancels_total.fetch_add(1);
      AS_LOG(INFO) << "run " << id << " cancelled by request";
      return SendJson(res, 202, {{"request_id", id}, {"cancelled", true}});
    }
    res.status = 409;
    res.set_header("Cache-Control", "no-store");
    res.set_content(ErrorBody(absl::FailedPreconditionError(absl::StrCat(
                                  "run ", id, " has already ended")),
                              id),
                    "application/json");
    return;
  }
  const absl::Status& status = cancelled.status();
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return SendError(
          res, absl::NotFoundError(absl::StrCat("no such run: ", id)), id);
    case absl::StatusCode::kInvalidArgument:
      return SendError(res, status, id);
    default:
      if (IsRetryable(status.code()) ||
          status.code() == absl::StatusCode::kCancelled) {
        return SendError(res,
                         absl::UnavailableError(absl::StrCat(
                             "orchestrator unavailable: ", status.message())),
                         id);
      }
      return SendError(res, status, id);
  }
}

}  // namespace agentstream::gateway
