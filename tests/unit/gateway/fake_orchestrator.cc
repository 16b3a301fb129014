#include "tests/unit/gateway/fake_orchestrator.h"

#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace agentstream::gateway::testing {

using agentstream::v1::Update;

FakeOrchestrator::FakeOrchestrator() {
  script_ = [](const agentstream::v1::RunRequest& request) {
    for (const auto& name : request.specialists()) {
      if (absl::StartsWith(name, "Unknown")) {
        RunScript script;
        script.final_status =
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("unknown specialist: ", name));
        return script;
      }
    }
    return StandardScript(absl::Milliseconds(20));
  };
  attach_script_ = [](const agentstream::v1::AttachRequest& request) {
    RunScript script;
    if (absl::StartsWith(request.request_id(), "unknown")) {
      script.final_status = grpc::Status(
          grpc::StatusCode::NOT_FOUND, "no such run: " + request.request_id());
    } else if (request.after_seq() > 5) {
      script.final_status =
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrCat("after_seq ", request.after_seq(),
                                    " is ahead of the run (last seq 5)"));
    } else {
      script =
          After(StandardScript(absl::Milliseconds(20)), request.after_seq());
    }
    return script;
  };
  cancel_ = [](const std::string& request_id) {
    CancelAnswer answer;
    if (absl::StartsWith(request_id, "unknown")) {
      answer.status = grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   "no such run: " + request_id);
    } else if (absl::StartsWith(request_id, "ended")) {
      answer.cancelled = false;
    }
    return answer;
  };
}

FakeOrchestrator::~FakeOrchestrator() { Shutdown(); }

int FakeOrchestrator::Start() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  return server_ != nullptr ? port_ : 0;
}

void FakeOrchestrator::Shutdown() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }
}

std::string FakeOrchestrator::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void FakeOrchestrator::SetScript(ScriptFn script) {
  absl::MutexLock lock(&mu_);
  script_ = std::move(script);
}

void FakeOrchestrator::SetAttachScript(AttachScriptFn script) {
  absl::MutexLock lock(&mu_);
  attach_script_ = std::move(script);
}

void FakeOrchestrator::SetCancel(CancelFn cancel) {
  absl::MutexLock lock(&mu_);
  cancel_ = std::move(cancel);
}

std::vector<RunCallRecord> FakeOrchestrator::attach_calls() const {
  absl::MutexLock lock(&mu_);
  return attach_calls_;
}

std::vector<std::string> FakeOrchestrator::cancel_calls() const {
  absl::MutexLock lock(&mu_);
  return cancel_calls_;
}

bool FakeOrchestrator::WaitForAttachCalls(size_t n,
                                          absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return attach_calls_.size() >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::optional<RunCallRecord> FakeOrchestrator::WaitForAttachEnd(
    size_t index, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto ended = [this, index]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return attach_calls_.size() > index && attach_calls_[index].ended;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) {
    return std::nullopt;
  }
  return attach_calls_[index];
}

std::vector<RunCallRecord> FakeOrchestrator::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

bool FakeOrchestrator::WaitForCalls(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return calls_.size() >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::optional<RunCallRecord> FakeOrchestrator::WaitForEnd(
    size_t index, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto ended = [this, index]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return calls_.size() > index && calls_[index].ended;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) {
    return std::nullopt;
  }
  return calls_[index];
}

bool FakeOrchestrator::SleepUnlessCancelled(grpc::ServerContext* context,
                                            absl::Duration d) {
  const absl::Time deadline = absl::Now() + d;
  while (!context->IsCancelled()) {
    const absl::Time now = absl::Now();
    if (now >= deadline) return true;
    absl::SleepFor(std::min(deadline - now, absl::Milliseconds(5)));
  }
  return false;
}

bool FakeOrchestrator::WaitUnlessCancelled(grpc::ServerContext* context,
                                           absl::Notification& release) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!context->IsCancelled() && absl::Now() < deadline) {
    if (release.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
      return true;
    }
  }
  return false;
}

std::string FakeOrchestrator::MetadataRequestId(grpc::ServerContext* context) {
  auto md = context->client_metadata().find("x-request-id");
  if (md == context->client_metadata().end()) return "";
  return std::string(md->second.data(), md->second.size());
}

template <typename Message>
FakeOrchestrator::Sender FakeOrchestrator::SenderFor(
    grpc::ServerWriter<Message>* writer) {
  Sender sender;
  sender.initial_metadata = [writer] { writer->SendInitialMetadata(); };
  sender.write = [writer](const Update& update) {
    if constexpr (std::is_same_v<Message, Update>) {
      return writer->Write(update);
    } else {
      agentstream::v1::UpdateBatch batch;
      *batch.add_updates() = update;
      return writer->Write(batch);
    }
  };
  return sender;
}

std::pair<RunScript, size_t> FakeOrchestrator::RecordRun(
    grpc::ServerContext* context, const agentstream::v1::RunRequest& request) {
  absl::MutexLock lock(&mu_);
  RunCallRecord record;
  record.request = request;
  record.started_at = absl::Now();
  record.metadata_request_id = MetadataRequestId(context);
  const size_t index = calls_.size();
  calls_.push_back(std::move(record));
  return {script_(request), index};
}

std::pair<RunScript, size_t> FakeOrchestrator::RecordAttach(
    grpc::ServerContext* context,
    const agentstream::v1::AttachRequest& request) {
  absl::MutexLock lock(&mu_);
  RunCallRecord record;
  record.attach_request = request;
  record.started_at = absl::Now();
  record.metadata_request_id = MetadataRequestId(context);
  const size_t index = attach_calls_.size();
  attach_calls_.push_back(std::move(record));
  return {attach_script_(request), index};
}

grpc::Status FakeOrchestrator::Run(grpc::ServerContext* context,
                                   const agentstream::v1::RunRequest* request,
                                   grpc::ServerWriter<Update>* writer) {
  auto [script, index] = RecordRun(context, *request);
  return Play(context, request->request_id(), std::move(script),
              SenderFor(writer), &calls_, index);
}

grpc::Status FakeOrchestrator::RunBatched(
    grpc::ServerContext* context, const agentstream::v1::RunRequest* request,
    grpc::ServerWriter<agentstream::v1::UpdateBatch>* writer) {
  auto [script, index] = RecordRun(context, *request);
  return Play(context, request->request_id(), std::move(script),
              SenderFor(writer), &calls_, index);
}

grpc::Status FakeOrchestrator::Attach(
    grpc::ServerContext* context, const agentstream::v1::AttachRequest* request,
    grpc::ServerWriter<Update>* writer) {
  auto [script, index] = RecordAttach(context, *request);
  return Play(context, request->request_id(), std::move(script),
              SenderFor(writer), &attach_calls_, index);
}

grpc::Status FakeOrchestrator::AttachBatched(
    grpc::ServerContext* context, const agentstream::v1::AttachRequest* request,
    grpc::ServerWriter<agentstream::v1::UpdateBatch>* writer) {
  auto [script, index] = RecordAttach(context, *request);
  return Play(context, request->request_id(), std::move(script),
              SenderFor(writer), &attach_calls_, index);
}

grpc::Status FakeOrchestrator::Play(grpc::ServerContext* context,
                                    const std::string& request_id,
                                    RunScript script, const Sender& sender,
                                    std::vector<RunCallRecord>* calls,
                                    size_t index) {
  auto finish = [&](bool cancelled, int written) {
    absl::MutexLock lock(&mu_);
    (*calls)[index].ended = true;
    (*calls)[index].cancelled = cancelled;
    (*calls)[index].updates_written = written;
    if (cancelled) (*calls)[index].cancelled_at = absl::Now();
  };
  const bool refusal =
      script.steps.empty() && script.final_delay == absl::ZeroDuration();
  if (script.initial_metadata == InitialMetadata::kAuto && !refusal) {
    sender.initial_metadata();
    absl::MutexLock lock(&mu_);
    (*calls)[index].metadata_sent_at_once = true;
  }
  int written = 0;
  for (ScriptStep& step : script.steps) {
    if (!SleepUnlessCancelled(context, step.delay) ||
        (step.release != nullptr &&
         !WaitUnlessCancelled(context, *step.release))) {
      finish(true, written);
      return grpc::Status::CANCELLED;
    }
    step.update.set_request_id(request_id);
    if (!sender.write(step.update)) {
      finish(context->IsCancelled(), written);
      return grpc::Status::CANCELLED;
    }
    ++written;
    absl::MutexLock lock(&mu_);
    (*calls)[index].updates_written = written;
  }
  if (!SleepUnlessCancelled(context, script.final_delay)) {
    finish(true, written);
    return grpc::Status::CANCELLED;
  }
  finish(false, written);
  return script.final_status;
}

grpc::Status FakeOrchestrator::Cancel(
    grpc::ServerContext*, const agentstream::v1::CancelRequest* request,
    agentstream::v1::CancelResponse* response) {
  CancelFn cancel;
  {
    absl::MutexLock lock(&mu_);
    cancel_calls_.push_back(request->request_id());
    cancel = cancel_;
  }
  const CancelAnswer answer = cancel(request->request_id());
  absl::SleepFor(answer.delay);
  response->set_cancelled(answer.cancelled);
  return answer.status;
}

grpc::Status FakeOrchestrator::ListSpecialists(
    grpc::ServerContext*, const agentstream::v1::ListSpecialistsRequest*,
    agentstream::v1::ListSpecialistsResponse* response) {
  for (const char* name : {"DataAnalyst", "RiskAnalyst"}) {
    auto* info = response->add_specialists();
    info->mutable_card()->set_name(name);
    info->mutable_card()->set_display_name(absl::StrCat(name, " (fake)"));
    info->mutable_card()->set_icon("📊");
    info->mutable_card()->add_keywords("risk");
    info->set_address("127.0.0.1:1");
    info->set_available(true);
  }
  return grpc::Status::OK;
}

Update StatusUpdate(uint64_t seq, const std::string& message) {
  Update u;
  u.set_seq(seq);
  u.set_emitted_at(absl::ToUnixNanos(absl::Now()));
  u.mutable_status()->set_status(agentstream::v1::RUN_STATUS_ANALYZING);
  u.mutable_status()->set_message(message);
  return u;
}

Update ProgressUpdate(uint64_t seq, const std::string& specialist, int progress,
                      const std::string& action) {
  Update u;
  u.set_seq(seq);
  u.set_specialist(specialist);
  u.mutable_progress()->set_progress(progress);
  u.mutable_progress()->set_current_action(action);
  return u;
}

Update ErrorUpdate(uint64_t seq, const std::string& code,
                   const std::string& message) {
  Update u;
  u.set_seq(seq);
  u.set_specialist("RiskAnalyst");
  u.mutable_error()->set_code(code);
  u.mutable_error()->set_message(message);
  u.mutable_error()->set_retryable(true);
  return u;
}

Update TimeoutUpdate(uint64_t seq, const std::string& message) {
  Update u;
  u.set_seq(seq);
  u.set_specialist("DataAnalyst");
  u.mutable_timeout()->set_message(message);
  u.mutable_timeout()->set_action(agentstream::v1::TIMEOUT_ACTION_CONTINUING);
  return u;
}

Update CompleteUpdate(uint64_t seq, const std::string& answer) {
  Update u;
  u.set_seq(seq);
  (*u.mutable_complete()->mutable_result()->mutable_fields())["answer"]
      .set_string_value(answer);
  u.mutable_complete()->set_outcome(agentstream::v1::OUTCOME_OK);
  return u;
}

RunScript StandardScript(absl::Duration gap) {
  RunScript script;
  script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "analyzing")});
  script.steps.push_back(
      {gap, ProgressUpdate(2, "DataAnalyst", 65, "Processing\nhistory ✓")});
  script.steps.push_back({gap, ErrorUpdate(3, "unavailable", "replica down")});
  script.steps.push_back({gap, TimeoutUpdate(4, "slow")});
  script.steps.push_back({gap, CompleteUpdate(5, "all good — ✓")});
  return script;
}

RunScript OneUpdateThen(uint64_t seq, absl::Duration final_delay,
                        grpc::Status final_status) {
  RunScript script;
  script.steps.push_back({absl::ZeroDuration(), StatusUpdate(seq, "x")});
  script.final_delay = final_delay;
  script.final_status = std::move(final_status);
  return script;
}

RunScript SlowScript(absl::Duration gap, int count) {
  RunScript script;
  script.steps.push_back({absl::ZeroDuration(), StatusUpdate(1, "analyzing")});
  for (int i = 0; i < count; ++i) {
    script.steps.push_back(
        {gap, ProgressUpdate(i + 2, "DataAnalyst", i % 100, "working")});
  }
  script.steps.push_back({gap, CompleteUpdate(count + 2, "done")});
  return script;
}

}  // namespace agentstream::gateway::testing

namespace agentstream::gateway::testing {

RunScript After(RunScript script, uint64_t after_seq) {
  RunScript out;
  out.final_delay = script.final_delay;
  out.final_status = script.final_status;
  bool first = true;
  for (ScriptStep& step : script.steps) {
    if (step.update.seq() <= after_seq) continue;
    if (first) step.delay = absl::ZeroDuration();  // A replay starts at once.
    first = false;
    out.steps.push_back(std::move(step));
  }
  return out;
}

}  // namespace agentstream::gateway::testing
