#include "gateway/stream_encoder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gateway/http_status.h"

namespace agentstream::gateway {

using agentstream::v1::Update;

std::string DoneStatusName(DoneStatus status) {
  switch (status) {
    case DoneStatus::kComplete:
      return "complete";
    case DoneStatus::kCancelled:
      return "cancelled";
    case DoneStatus::kFailed:
      return "failed";
  }
  return "failed";
}

void StreamEncoder::AddHeaders(http::HttpHeaders* headers) const {
  headers->Add("Content-Type", "text/event-stream; charset=utf-8");
}

std::string StreamEncoder::EventId(uint64_t seq) const {
  return absl::StrCat(request_id_, ":", seq);
}

void StreamEncoder::Observe(const Update& update) {
  switch (update.kind_case()) {
    case Update::kComplete:
      saw_complete_ = true;
      if (update.complete().outcome() == agentstream::v1::OUTCOME_CANCELLED) {
        saw_cancelled_ = true;
      }
      break;
    case Update::kStatus:
      if (update.status().status() == agentstream::v1::RUN_STATUS_CANCELLED) {
        saw_cancelled_ = true;
      }
      break;
    default:
      break;
  }
  last_seq_ = std::max<uint64_t>(last_seq_, update.seq());
}

DoneStatus StreamEncoder::FinalStatusFromUpdates() const {
  if (saw_cancelled_) return DoneStatus::kCancelled;
  return saw_complete_ ? DoneStatus::kComplete : DoneStatus::kFailed;
}

std::string StreamEncoder::Failure(const absl::Status& status) const {
  return Error(ErrorCodeName(status.code()), std::string(status.message()),
               IsRetryable(status.code()), /*final=*/true);
}

std::string StreamEncoder::Gap(const absl::Status& status) const {
  const std::string point = EventId(last_seq_);
  std::string message;
  if (status.code() == absl::StatusCode::kNotFound) {
    message = absl::StrCat(
        "run ", request_id_,
        " is no longer known to the orchestrator (it ended too long ago, or "
        "the orchestrator restarted): the updates after ",
        point, " cannot be replayed; start the question again");
  } else {
    message =
        absl::StrCat("the run's log no longer holds the updates after ", point,
                     " (", std::string(status.message()),
                     "): they cannot be replayed; start the question again");
  }
  return Error("gap", message, false, /*final=*/true);
}

std::string GapStream(StreamEncoder& encoder, const absl::Status& status) {
  std::string out = encoder.Open();
  out.append(encoder.Gap(status));
  out.append(encoder.Done(DoneStatus::kFailed));
  return out;
}

}  // namespace agentstream::gateway
