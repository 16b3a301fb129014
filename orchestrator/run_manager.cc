#include "orchestrator/run_manager.h"

#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "orchestrator/planner.h"

namespace agentstream::orchestrator {

bool ValidRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

std::string GenerateRequestId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  uint64_t v;
  {
    absl::MutexLock lock(&mu);
    v = absl::Uniform<uint64_t>(*gen);
  }
  return absl::StrFormat("req_%016x", v);
}

RunManager::RunManager(RunManagerOptions options,
                       const SpecialistRegistry* registry, const Clock* clock,
                       OrchestratorMetrics* metrics)
    : options_(options),
      registry_(registry),
      clock_(clock),
      metrics_(metrics) {}

absl::StatusOr<std::shared_ptr<Run>> RunManager::CreateRun(
    const agentstream::v1::RunRequest& request,
    const std::string& metadata_request_id) {
  std::string id =
      request.request_id().empty() ? metadata_request_id : request.request_id();
  if (id.empty()) {
    id = GenerateRequestId();
  } else if (!ValidRequestId(id)) {
    return absl::InvalidArgumentError(
        "request_id must be 1 to 128 characters of [A-Za-z0-9._-]");
  }

  std::vector<std::string> forced(request.specialists().begin(),
                                  request.specialists().end());
  absl::StatusOr<Plan> plan =
      PlanQuestion(request.message(), registry_->PlanningCards(), forced);
  if (!plan.ok()) return plan.status();

  std::vector<Run::Participant> participants;
  for (PlannedSpecialist& planned : plan->specialists) {
    std::shared_ptr<SpecialistClient> client =
        registry_->Client(planned.card.name());
    if (client == nullptr) {
      return absl::InternalError(
          absl::StrCat("no client for ", planned.card.name()));
    }
    participants.push_back({std::move(planned), std::move(client)});
  }

  Sweep();
  absl::MutexLock lock(&mu_);
  if (runs_.count(id) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("a run with request id ", id, " exists"));
  }
  RunOptions run_options;
  run_options.max_log_events = options_.max_log_events;
  run_options.max_attempts = options_.max_attempts;
  run_options.soft_deadline = options_.soft_deadline;
  run_options.hard_deadline = options_.hard_deadline;
  auto run = std::make_shared<Run>(
      id, request.message(), request.options(), std::move(plan->reasoning),
      std::move(participants), clock_, run_options, metrics_,
      /*on_finished=*/nullptr);
  runs_[id] = run;
  AS_LOG(INFO) << id << ": new run, " << runs_.size() << " runs held";
  return run;
}

std::shared_ptr<Run> RunManager::Find(const std::string& request_id) {
  Sweep();
  absl::MutexLock lock(&mu_);
  auto it = runs_.find(request_id);
  return it == runs_.end() ? nullptr : it->second;
}

absl::StatusOr<bool> RunManager::Cancel(const std::string& request_id) {
  std::shared_ptr<Run> run = Find(request_id);
  if (run == nullptr) {
    return absl::NotFoundError(absl::StrCat("no run ", request_id));
  }
  return run->Cancel("cancelled by request");
}

void RunManager::ReleaseFollower(const std::shared_ptr<Run>& run) {
  if (run->RemoveFollower() &&
      options_.disconnect_grace <= absl::ZeroDuration()) {
    if (run->Cancel("the last client went away")) {
      AS_LOG(INFO) << run->request_id()
                   << ": cancelled, the last client went away";
    }
  }
}

void RunManager::Sweep() {
  const absl::Time now = clock_->Now();
  std::vector<std::shared_ptr<Run>> orphaned;
  std::vector<std::shared_ptr<Run>> running;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = runs_.begin(); it != runs_.end();) {
      const std::shared_ptr<Run>& run = it->second;
      std::optional<absl::Time> ended = run->finished_at();
      if (ended.has_value() && now - *ended >= options_.log_ttl) {
        it = runs_.erase(it);
        continue;
      }
      if (!ended.has_value()) running.push_back(run);
      std::optional<absl::Time> orphan = run->orphaned_since();
      if (orphan.has_value() && now - *orphan >= options_.disconnect_grace) {
        orphaned.push_back(run);
      }
      ++it;
    }
  }
  for (const auto& run : orphaned) {
    if (run->followers() == 0) run->Cancel("no client came back in time");
  }
  for (const auto& run : running) run->CheckDeadlines(now);
}

void RunManager::CancelAll(const std::string& reason) {
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, run] : runs_) runs.push_back(run);
  }
  for (const auto& run : runs) run->Cancel(reason);
}

size_t RunManager::run_count() const {
  absl::MutexLock lock(&mu_);
  return runs_.size();
}

}  // namespace agentstream::orchestrator
