// A run's ending from outside its calls: cancellation (a client, the
// disconnect policy, shutdown) and the soft and hard deadlines
// (docs/ORCHESTRATOR.md, "A run"). The rest of Run is in run.cc.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "orchestrator/run.h"

namespace agentstream::orchestrator {

using agentstream::v1::Update;

bool Run::Cancel(CancelReason reason, const std::string& message) {
  return CancelImpl(reason, message, std::nullopt);
}

bool Run::CancelIfOrphanedSince(absl::Time cutoff, const std::string& message) {
  return CancelImpl(CancelReason::kGrace, message, cutoff);
}

bool Run::CancelImpl(CancelReason reason, const std::string& message,
                     std::optional<absl::Time> orphaned_cutoff) {
  std::vector<std::shared_ptr<AnalyzeCall>> to_cancel;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return false;
    if (orphaned_cutoff.has_value() &&
        (followers_ > 0 || !orphaned_since_.has_value() ||
         *orphaned_since_ > *orphaned_cutoff)) {
      return false;
    }
    cancelled_ = true;
    if (!started_ && metrics_ != nullptr) metrics_->RunStarted();
    started_ = true;
    if (metrics_ != nullptr) metrics_->RunCancelled(CancelReasonName(reason));
    AS_LOG(INFO) << request_id_ << ": cancelled (" << CancelReasonName(reason)
                 << "): " << message;
    EmitStatusLocked(agentstream::v1::RUN_STATUS_CANCELLED,
                     absl::StrCat("Cancelled: ", message));
    for (CallState& call : calls_) {
      if (call.done) continue;
      call.done = true;
      call.outcome = agentstream::v1::OUTCOME_CANCELLED;
      call.error = message;
      if (call.handle != nullptr) to_cancel.push_back(std::move(call.handle));
      call.handle.reset();
      EmitCompleteOfCallLocked(call);
    }
    FinishLocked(true);
  }
  for (const auto& handle : to_cancel) handle->Cancel();
  AfterUnlock();
  return true;
}

void Run::CheckDeadlines(absl::Time now) {
  std::vector<std::shared_ptr<AnalyzeCall>> to_cancel;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || finished_) return;
    bool any_ended = false;
    for (CallState& call : calls_) {
      if (!call.done && CheckDeadlineLocked(call, now, &to_cancel)) {
        any_ended = true;
      }
    }
    if (any_ended) {
      bool all_done = true;
      for (const CallState& c : calls_) all_done = all_done && c.done;
      if (all_done) FinishLocked(false);
    }
  }
  for (const auto& handle : to_cancel) handle->Cancel();
  AfterUnlock();
}

std::optional<absl::Time> Run::NextDeadline() const {
  absl::MutexLock lock(&mu_);
  if (!started_ || finished_) return std::nullopt;
  std::optional<absl::Time> next;
  auto consider = [&next](absl::Time t) {
    if (!next.has_value() || t < *next) next = t;
  };
  for (const CallState& call : calls_) {
    if (call.done) continue;
    if (call.deadlines.soft > absl::ZeroDuration() &&
        !call.soft_deadline_reported) {
      consider(call.started_at + call.deadlines.soft);
    }
    if (call.deadlines.hard > absl::ZeroDuration()) {
      consider(call.started_at + call.deadlines.hard);
    }
  }
  return next;
}

bool Run::CheckDeadlineLocked(
    CallState& call, absl::Time now,
    std::vector<std::shared_ptr<AnalyzeCall>>* to_cancel) {
  const absl::Duration soft = call.deadlines.soft;
  const absl::Duration hard = call.deadlines.hard;
  const std::string& name = call.participant.planned.card.name();
  const absl::Duration elapsed = now - call.started_at;
  if (hard > absl::ZeroDuration() && elapsed >= hard) {
    call.done = true;
    call.outcome = agentstream::v1::OUTCOME_TIMED_OUT;
    call.error = absl::StrCat("no answer within ", absl::FormatDuration(hard));
    if (call.handle != nullptr) to_cancel->push_back(std::move(call.handle));
    call.handle.reset();
    if (metrics_ != nullptr) metrics_->SpecialistTimeout(name, "abandoned");
    Update timeout;
    timeout.set_specialist(name);
    timeout.set_instance(call.instance);
    timeout.mutable_timeout()->set_action(
        agentstream::v1::TIMEOUT_ACTION_ABANDONED);
    timeout.mutable_timeout()->set_message(absl::StrCat(
        name, " gave no answer within ", absl::FormatDuration(hard),
        "; the run goes on without it"));
    EmitLocked(std::move(timeout));
    EmitCompleteOfCallLocked(call);
    return true;
  }
  if (soft > absl::ZeroDuration() && elapsed >= soft &&
      !call.soft_deadline_reported) {
    call.soft_deadline_reported = true;
    if (metrics_ != nullptr) metrics_->SpecialistTimeout(name, "continuing");
    Update timeout;
    timeout.set_specialist(name);
    timeout.set_instance(call.instance);
    timeout.mutable_timeout()->set_action(
        agentstream::v1::TIMEOUT_ACTION_CONTINUING);
    timeout.mutable_timeout()->set_message(
        absl::StrCat(name, " is taking longer than ",
                     absl::FormatDuration(soft), "; still waiting"));
    EmitLocked(std::move(timeout));
  }
  return false;
}

}  // namespace agentstream::orchestrator
