#include "orchestrator/run.h"

#include <string_view>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/update_json.h"
#include "google/protobuf/arena.h"
#include "orchestrator/synthesis.h"
#include "orchestrator/update_wire.h"

namespace agentstream::orchestrator {

using agentstream::v1::Outcome;
using agentstream::v1::Update;

namespace {

constexpr char kOrchestrator[] = "Orchestrator";

Outcome OutcomeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return agentstream::v1::OUTCOME_OK;
    case absl::StatusCode::kDeadlineExceeded:
      return agentstream::v1::OUTCOME_TIMED_OUT;
    case absl::StatusCode::kCancelled:
      return agentstream::v1::OUTCOME_CANCELLED;
    default:
      return agentstream::v1::OUTCOME_FAILED;
  }
}

bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kAborted;
}

// "unavailable", "deadline_exceeded", ...
std::string ErrorCode(absl::StatusCode code) {
  std::string name = absl::AsciiStrToLower(absl::StatusCodeToString(code));
  for (char& c : name) {
    if (c == ' ') c = '_';
  }
  return name;
}

// The kinds a specialist may contribute to a run; the others (status,
// complete, ...) belong to the orchestrator.
bool ForwardedKind(const Update& update) {
  switch (update.kind_case()) {
    case Update::kProgress:
    case Update::kThinking:
    case Update::kToolCall:
    case Update::kPartialResult:
    case Update::kError:
    case Update::kTimeout:
      return true;
    default:
      return false;
  }
}

}  // namespace

const char* CancelReasonName(CancelReason reason) {
  switch (reason) {
    case CancelReason::kRequest:
      return "request";
    case CancelReason::kDisconnect:
      return "disconnect";
    case CancelReason::kGrace:
      return "grace";
    case CancelReason::kShutdown:
      return "shutdown";
  }
  return "request";
}

// Routes one attempt's callbacks to the run; keeps the run alive while the
// call is pending.
class Run::CallObserver final : public AnalyzeObserver {
 public:
  CallObserver(std::shared_ptr<Run> run, size_t index, int attempt)
      : run_(std::move(run)), index_(index), attempt_(attempt) {}
  void OnUpdate(Update update) override {
    run_->OnCallUpdate(index_, attempt_, std::move(update));
  }
  bool OnSerializedUpdates(
      absl::Span<const std::string_view> updates) override {
    return run_->OnCallEncodedUpdates(index_, attempt_, updates);
  }
  void OnDone(const absl::Status& status) override {
    run_->OnCallDone(index_, attempt_, status);
  }

 private:
  const std::shared_ptr<Run> run_;
  const size_t index_;
  const int attempt_;
};

Run::Run(std::string request_id, std::string question,
         google::protobuf::Struct options, std::string reasoning,
         std::vector<Participant> participants, const Clock* clock,
         RunOptions run_options, OrchestratorMetrics* metrics,
         std::function<void()> on_finished)
    : request_id_(std::move(request_id)),
      question_(std::move(question)),
      options_(std::move(options)),
      reasoning_(std::move(reasoning)),
      clock_(clock),
      run_options_(run_options),
      metrics_(metrics),
      log_(std::make_shared<RunLog>(run_options.max_log_events,
                                    run_options.max_log_bytes,
                                    run_options.memory)),
      on_finished_(std::move(on_finished)) {
  // An estimate of what the run holds besides its log, fixed for its life.
  charged_bytes_ = sizeof(Run) + request_id_.size() + question_.size() +
                   reasoning_.size() + options_.SpaceUsedLong();
  for (Participant& p : participants) {
    charged_bytes_ += sizeof(CallState) + p.planned.task.size() +
                      p.planned.card.SpaceUsedLong();
    CallState call;
    auto kind = run_options.deadlines_by_kind.find(p.planned.card.name());
    if (kind != run_options.deadlines_by_kind.end()) {
      call.deadlines = kind->second;
    } else {
      call.deadlines = {run_options.soft_deadline, run_options.hard_deadline};
    }
    call.participant = std::move(p);
    calls_.push_back(std::move(call));
  }
  if (run_options_.memory != nullptr) {
    run_options_.memory->Charge(charged_bytes_);
  }
}

Run::~Run() {
  if (run_options_.memory != nullptr) {
    run_options_.memory->Release(charged_bytes_);
  }
}

void Run::Start() {
  size_t n = 0;
  {
    absl::MutexLock lock(&mu_);
    if (started_ || finished_) return;
    started_ = true;
    if (metrics_ != nullptr) metrics_->RunStarted();
    EmitStatusLocked(agentstream::v1::RUN_STATUS_ANALYZING,
                     "Analyzing the request");
    Update thinking;
    thinking.mutable_thinking()->set_agent(kOrchestrator);
    thinking.mutable_thinking()->set_thought(reasoning_);
    thinking.mutable_thinking()->set_visible(true);
    EmitLocked(std::move(thinking));
    std::vector<std::string> names;
    for (const CallState& call : calls_) {
      names.push_back(call.participant.planned.card.name());
    }
    EmitStatusLocked(
        agentstream::v1::RUN_STATUS_DELEGATING,
        absl::StrCat("Delegating to ", absl::StrJoin(names, ", ")));
    const absl::Time now = clock_->Now();
    for (CallState& call : calls_) {
      const auto& card = call.participant.planned.card;
      Update activated;
      activated.set_specialist(card.name());
      auto* a = activated.mutable_specialist_activated();
      a->set_task(call.participant.planned.task);
      a->set_icon(card.icon());
      a->set_display_name(card.display_name().empty() ? card.name()
                                                      : card.display_name());
      EmitLocked(std::move(activated));
      call.started_at = now;
    }
    n = calls_.size();
    if (n == 0) FinishLocked(false);
  }
  AfterUnlock();
  for (size_t i = 0; i < n; ++i) StartCall(i);
}

absl::Status Run::LoadStored(const std::vector<std::string>& stored) {
  absl::MutexLock lock(&mu_);
  if (started_ || finished_) {
    return absl::FailedPreconditionError("the run has started");
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < calls_.size(); ++i) {
    index[calls_[i].participant.planned.card.name()] = i;
  }
  bool completed = false;
  for (const std::string& bytes : stored) {
    absl::StatusOr<uint64_t> seq = log_->AppendStored(bytes);
    if (!seq.ok()) return seq.status();
    Update update;
    update.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    if (update.has_complete()) completed = true;
    auto it = index.find(update.specialist());
    if (it == index.end()) continue;
    CallState& call = calls_[it->second];
    if (call.done) continue;
    if (update.has_specialist_complete()) {
      call.done = true;
      call.outcome = update.specialist_complete().outcome();
    } else if (update.has_error()) {
      call.error = update.error().message();
    } else {
      AcceptLocked(call, update);
    }
  }
  const absl::Time now = clock_->Now();
  for (CallState& call : calls_) {
    if (call.done) continue;
    // Called again from the start: what its earlier call said is in the
    // log, but only the new call's results count.
    call.merged = google::protobuf::Struct();
    call.summary = google::protobuf::Struct();
    call.error.clear();
    call.instance.clear();
    call.updates_seen = 0;
    call.started_at = now;
  }
  loaded_complete_ = completed;
  return absl::OkStatus();
}

std::vector<std::string> Run::DoneSpecialists(bool done) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const CallState& call : calls_) {
    if (call.done == done)
      names.push_back(call.participant.planned.card.name());
  }
  return names;
}

void Run::Resume(const std::string& note) {
  std::vector<size_t> to_call;
  {
    absl::MutexLock lock(&mu_);
    if (started_ || finished_) return;
    started_ = true;
    orphaned_since_ =
        followers_ == 0 ? std::optional(clock_->Now()) : std::nullopt;
    if (loaded_complete_) {
      // The previous owner finished it; only the end was not stored.
      log_->End();
      finished_ = true;
      finished_at_ = clock_->Now();
      orphaned_since_.reset();
    } else {
      std::vector<std::string> again;
      for (size_t i = 0; i < calls_.size(); ++i) {
        if (calls_[i].done) continue;
        to_call.push_back(i);
        again.push_back(calls_[i].participant.planned.card.name());
      }
      EmitStatusLocked(agentstream::v1::RUN_STATUS_DELEGATING, note);
      Update thinking;
      thinking.mutable_thinking()->set_agent(kOrchestrator);
      thinking.mutable_thinking()->set_thought(
          again.empty()
              ? std::string("Every specialist had finished; combining their "
                            "results.")
              : absl::StrCat("Calling again: ", absl::StrJoin(again, ", "),
                             " (their analyses are reads, safe to repeat)."));
      thinking.mutable_thinking()->set_visible(true);
      EmitLocked(std::move(thinking));
      if (to_call.empty()) FinishLocked(false);
    }
  }
  AfterUnlock();
  for (size_t i : to_call) StartCall(i);
}

void Run::Abandon(const absl::Status& why) {
  std::vector<std::shared_ptr<AnalyzeCall>> handles;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    cancelled_ = true;
    finished_at_ = clock_->Now();
    orphaned_since_.reset();
    for (CallState& call : calls_) {
      call.done = true;
      if (call.handle != nullptr) handles.push_back(std::move(call.handle));
    }
    log_->End(why);
  }
  for (const auto& handle : handles) handle->Cancel();
  AfterUnlock();
}

void Run::FollowedElsewhere(absl::Time until) {
  absl::MutexLock lock(&mu_);
  if (followers_ == 0 && !finished_ && orphaned_since_.has_value()) {
    orphaned_since_ = std::max(*orphaned_since_, until);
  }
}

void Run::StartCall(size_t index) {
  std::shared_ptr<SpecialistClient> client;
  agentstream::v1::AnalyzeRequest request;
  int attempt = 0;
  {
    absl::MutexLock lock(&mu_);
    CallState& call = calls_[index];
    if (call.done || finished_) return;
    client = call.participant.client;
    attempt = call.attempt;
    request.set_request_id(request_id_);
    request.set_question(question_);
    request.set_task(call.participant.planned.task);
    *request.mutable_options() = options_;
  }
  auto observer =
      std::make_shared<CallObserver>(shared_from_this(), index, attempt);
  std::shared_ptr<AnalyzeCall> handle = client->Analyze(request, observer);
  bool cancel_now = false;
  {
    absl::MutexLock lock(&mu_);
    CallState& call = calls_[index];
    if (call.attempt == attempt && !call.done) {
      call.handle = handle;
    } else {
      // Ended (or cancelled) while Analyze was being started.
      cancel_now = cancelled_;
    }
  }
  if (cancel_now) handle->Cancel();
}

bool Run::AcceptLocked(CallState& call, const Update& update) {
  ++call.updates_seen;
  if (call.instance.empty() && !update.instance().empty()) {
    call.instance = update.instance();
  }
  if (!ForwardedKind(update)) {
    AS_LOG(DEBUG) << request_id_ << ": dropped a " << UpdateType(update)
                  << " update from " << call.participant.planned.card.name();
    return false;
  }
  if (update.has_partial_result()) {
    // Merged as protobuf (a map assignment per key); converted to JSON
    // only once, for the synthesis.
    for (const auto& [key, value] : update.partial_result().result().fields()) {
      (*call.merged.mutable_fields())[key] = value;
    }
    const auto& fields = update.partial_result().result().fields();
    auto summary = fields.find("summary");
    if (summary != fields.end() && summary->second.has_string_value()) {
      call.summary = update.partial_result().result();
    }
  }
  return true;
}

void Run::OnCallUpdate(size_t index, int attempt, Update update) {
  {
    absl::MutexLock lock(&mu_);
    CallState& call = calls_[index];
    if (finished_ || call.done || call.attempt != attempt) return;
    if (!AcceptLocked(call, update)) return;
    update.set_specialist(call.participant.planned.card.name());
    EmitLocked(std::move(update));
  }
  log_->Notify();
}

bool Run::OnCallEncodedUpdates(size_t index, int attempt,
                               absl::Span<const std::string_view> updates) {
  const int64_t received_at = metrics::WallNanos();
  // Parsed (which also validates them: what the log holds, every follower's
  // parser accepts) on an arena whose first block is on the stack, so that
  // a Struct payload costs no heap allocation; outside the lock.
  alignas(16) char block[kParseArenaBlockBytes];
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = block;
  arena_options.initial_block_size = sizeof(block);
  google::protobuf::Arena arena(arena_options);
  absl::InlinedVector<Update*, 1> parsed(updates.size());
  absl::InlinedVector<EncodedUpdate, 1> encoded(updates.size());
  for (size_t i = 0; i < updates.size(); ++i) {
    parsed[i] = google::protobuf::Arena::CreateMessage<Update>(&arena);
    if (!parsed[i]->ParseFromArray(updates[i].data(),
                                   static_cast<int>(updates[i].size())) ||
        !encoded[i].Init(updates[i])) {
      return false;
    }
  }
  if (metrics_ != nullptr) {
    // The hop specialist -> here, for the whole message at once.
    metrics::HopBatch hop(metrics_->hop_to_receipt(), received_at);
    int64_t bytes = 0;
    for (size_t i = 0; i < updates.size(); ++i) {
      hop.Add(encoded[i].emitted_at());
      bytes += static_cast<int64_t>(updates[i].size());
    }
    metrics_->SpecialistUpdatesReceived(static_cast<int64_t>(updates.size()),
                                        bytes);
  }
  int64_t appended = 0;
  {
    // A whole message's updates under one lock, and one notification.
    absl::MutexLock lock(&mu_);
    CallState& call = calls_[index];
    if (finished_ || call.done || call.attempt != attempt) return true;
    for (size_t i = 0; i < updates.size(); ++i) {
      if (!AcceptLocked(call, *parsed[i])) continue;
      // Kept as the specialist encoded it; only the envelope is the run's.
      const int64_t emitted_at = encoded[i].emitted_at() != 0
                                     ? encoded[i].emitted_at()
                                     : clock_->NowNanos();
      if (log_->AppendEncoded(parsed[i]->kind_case(), encoded[i], request_id_,
                              emitted_at,
                              call.participant.planned.card.name()) != 0) {
        ++appended;
      }
    }
  }
  if (appended > 0 && metrics_ != nullptr) metrics_->UpdatesEmitted(appended);
  log_->Notify();
  return true;
}

void Run::OnCallDone(size_t index, int attempt, const absl::Status& status) {
  bool retry = false;
  {
    absl::MutexLock lock(&mu_);
    CallState& call = calls_[index];
    if (finished_ || call.done || call.attempt != attempt) return;
    const std::string& name = call.participant.planned.card.name();
    if (status.code() == absl::StatusCode::kUnavailable &&
        call.updates_seen == 0 &&
        call.attempt + 1 < run_options_.max_attempts) {
      AS_LOG(INFO) << request_id_ << ": " << name
                   << " unavailable, trying again: " << status.message();
      ++call.attempt;
      call.handle.reset();
      retry = true;
      if (metrics_ != nullptr) metrics_->SpecialistRetry(name);
    } else {
      call.done = true;
      call.handle.reset();
      call.outcome = OutcomeOf(status);
      if (metrics_ != nullptr) {
        metrics_->SpecialistCall(name, call.instance.empty()
                                           ? call.participant.client->address()
                                           : call.instance);
      }
      if (!status.ok()) {
        AS_LOG(INFO) << request_id_ << ": " << name << " ended with " << status;
        call.error = std::string(status.message());
        if (metrics_ != nullptr) metrics_->SpecialistError(name);
        Update error;
        error.set_specialist(name);
        error.set_instance(call.instance);
        auto* e = error.mutable_error();
        e->set_code(ErrorCode(status.code()));
        e->set_message(absl::StrCat(name, ": ", status.message()));
        e->set_retryable(Retryable(status.code()));
        EmitLocked(std::move(error));
      }
      EmitCompleteOfCallLocked(call);
      bool all_done = true;
      for (const CallState& c : calls_) all_done = all_done && c.done;
      if (all_done) FinishLocked(false);
    }
  }
  if (retry) {
    StartCall(index);
    return;
  }
  AfterUnlock();
}

void Run::AddFollower() {
  absl::MutexLock lock(&mu_);
  ++followers_;
  orphaned_since_.reset();
}

bool Run::RemoveFollower() {
  absl::MutexLock lock(&mu_);
  if (followers_ > 0) --followers_;
  if (followers_ == 0 && !finished_) {
    orphaned_since_ = clock_->Now();
    return true;
  }
  return false;
}

int Run::followers() const {
  absl::MutexLock lock(&mu_);
  return followers_;
}

std::optional<absl::Time> Run::orphaned_since() const {
  absl::MutexLock lock(&mu_);
  return orphaned_since_;
}

bool Run::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

std::optional<absl::Time> Run::finished_at() const {
  absl::MutexLock lock(&mu_);
  return finished_at_;
}

void Run::EmitLocked(Update update) {
  update.set_request_id(request_id_);
  if (update.emitted_at() == 0) update.set_emitted_at(clock_->NowNanos());
  if (log_->Append(std::move(update)) != 0 && metrics_ != nullptr) {
    metrics_->UpdatesEmitted(1);
  }
}

void Run::EmitStatusLocked(agentstream::v1::RunStatus status,
                           const std::string& message) {
  Update update;
  update.mutable_status()->set_status(status);
  update.mutable_status()->set_message(message);
  EmitLocked(std::move(update));
}

void Run::EmitCompleteOfCallLocked(CallState& call) {
  const std::string& name = call.participant.planned.card.name();
  const absl::Time now = clock_->Now();
  Update complete;
  complete.set_specialist(name);
  complete.set_instance(call.instance);
  complete.mutable_specialist_complete()->set_outcome(call.outcome);
  complete.mutable_specialist_complete()->set_duration_ms(
      absl::ToInt64Milliseconds(now - call.started_at));
  EmitLocked(std::move(complete));

  std::vector<std::string> done;
  std::vector<std::string> pending;
  for (const CallState& c : calls_) {
    (c.done ? done : pending).push_back(c.participant.planned.card.name());
  }
  Update synthesis;
  auto* s = synthesis.mutable_synthesis();
  s->set_message(SynthesisProgressMessage(done, pending));
  for (const std::string& n : done) s->add_specialists_complete(n);
  for (const std::string& n : pending) s->add_specialists_pending(n);
  EmitLocked(std::move(synthesis));
}

void Run::FinishLocked(bool cancelled) {
  std::vector<SpecialistContribution> contributions;
  for (const CallState& call : calls_) {
    SpecialistContribution c;
    c.name = call.participant.planned.card.name();
    c.outcome = call.outcome;
    c.result = StructToJson(call.merged);
    c.summary_result = StructToJson(call.summary);
    c.error = call.error;
    contributions.push_back(std::move(c));
  }
  if (!cancelled) {
    EmitStatusLocked(agentstream::v1::RUN_STATUS_SYNTHESIZING,
                     absl::StrCat("Combining the results of ",
                                  contributions.size(), " specialists"));
  }
  Synthesis synthesis = Synthesize(contributions, cancelled);
  // The merged results were only kept for the synthesis.
  for (CallState& call : calls_) {
    call.merged = google::protobuf::Struct();
    call.summary = google::protobuf::Struct();
  }
  Update complete;
  *complete.mutable_complete()->mutable_result() =
      JsonToStruct(synthesis.result);
  complete.mutable_complete()->set_outcome(synthesis.outcome);
  EmitLocked(std::move(complete));
  log_->End();
  finished_ = true;
  finished_at_ = clock_->Now();
  orphaned_since_.reset();
  if (metrics_ != nullptr)
    metrics_->RunCompleted(OutcomeName(synthesis.outcome));
  AS_LOG(INFO) << request_id_ << ": complete, outcome "
               << OutcomeName(synthesis.outcome) << ", " << log_->last_seq()
               << " updates";
}

void Run::AfterUnlock() {
  log_->Notify();
  std::function<void()> on_finished;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ && on_finished_) {
      on_finished = std::move(on_finished_);
      on_finished_ = nullptr;
    }
  }
  if (on_finished) on_finished();
}

}  // namespace agentstream::orchestrator
