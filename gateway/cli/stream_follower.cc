#include "gateway/cli/stream_follower.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace agentstream::cli {

using Json = nlohmann::json;

StreamFollower::StreamFollower(const CliOptions& options) : options_(options) {}

void StreamFollower::OnResponse(int status, std::string_view request_id,
                                std::optional<int> retry_after_s) {
  parser_ = SseStreamParser();
  status_ = status;
  retry_after_s_ = retry_after_s;
  seq_at_connect_ = view_.last_seq;
  // A stream's X-Request-Id is its run's id; other answers carry the
  // correlation id, which is not a run.
  if (status == 200 && view_.run_id.empty() && !request_id.empty()) {
    view_.run_id = std::string(request_id);
  }
}

void StreamFollower::OnBytes(
    std::string_view bytes,
    const std::function<void(const Json&, std::string_view)>& on_update) {
  if (status_ != 200) return;  // An error's JSON body, not a stream.
  parser_.Feed(bytes, [&](SseFields event) {
    if (event.has_id && !event.id.empty()) last_event_id_ = event.id;
    Json update = Json::parse(event.data, nullptr, false);
    if (update.is_discarded() || !update.is_object()) return;
    if (Reduce(view_, update)) on_update(update, event.data);
  });
  if (parser_.retry_ms().has_value()) server_retry_ms_ = parser_.retry_ms();
}

NextStep StreamFollower::OnConnectionEnd(std::string_view error_view,
                                         std::string_view body_view) {
  // (absl::StrCat takes absl::string_view, not std::string_view, here.)
  const std::string transport_error(error_view);
  const std::string body(body_view);
  NextStep step;
  if (!view_.done.empty()) return step;  // kFinished.
  if (status_ == 204) {
    // Nothing after our Last-Event-ID: the run ended there. Complete when
    // its `complete` came (only `done` was lost), else it ended unseen.
    if (view_.final_result.has_value()) {
      view_.done = view_.status;
      return step;
    }
    step.kind = NextStep::Kind::kGiveUp;
    step.reason = "the run ended without its final result reaching us";
    return step;
  }
  const bool retryable_status =
      status_ == 0 || status_ == 200 || status_ == 503 || status_ == 429;
  if (view_.run_id.empty() || !retryable_status) {
    // Before a run id there is nothing to resume (a new POST would start
    // a second run); other answers (400, 401, 403, 404, ...) do not change
    // by retrying.
    step.kind = NextStep::Kind::kGiveUp;
    step.reason = status_ == 0
                      ? absl::StrCat("no answer from ", options_.gateway, " (",
                                     transport_error, ")")
                      : absl::StrCat("HTTP ", status_, ": ", body);
    return step;
  }
  failures_ = view_.last_seq > seq_at_connect_ ? 1 : failures_ + 1;
  if (failures_ > options_.max_reconnects) {
    step.kind = NextStep::Kind::kGiveUp;
    step.reason = absl::StrCat(
        "gave up after ", options_.max_reconnects, " reconnects in a row",
        transport_error.empty() ? "" : ": ", transport_error);
    return step;
  }
  absl::Duration delay = server_retry_ms_.has_value()
                             ? absl::Milliseconds(*server_retry_ms_)
                             : options_.retry_delay;
  for (int i = 1; i < failures_ && delay < options_.max_retry_delay; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, options_.max_retry_delay);
  // A 503's or 429's Retry-After is the gateway's own word on when.
  if (retry_after_s_.has_value()) {
    delay = std::max(delay, absl::Seconds(*retry_after_s_));
  }
  step.kind = NextStep::Kind::kReconnect;
  step.delay = delay;
  step.attempt = failures_;
  step.reason = !view_.notice.empty()      ? view_.notice
                : !transport_error.empty() ? transport_error
                : status_ != 200           ? absl::StrCat("HTTP ", status_)
                                           : "the stream ended early";
  return step;
}

std::string StreamFollower::ResumePath() const {
  return absl::StrCat("/api/runs/", view_.run_id, "/stream");
}

int StreamFollower::ExitCode() const {
  if (view_.status == "complete") return kExitComplete;
  if (view_.status == "cancelled") return kExitCancelled;
  return kExitFailed;
}

}  // namespace agentstream::cli
