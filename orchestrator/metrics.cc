#include "orchestrator/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace agentstream::orchestrator {
namespace {

std::string Label(const std::string& v) {
  return absl::StrReplaceAll(v,
                             {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

void Header(std::string* out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

}  // namespace

void OrchestratorMetrics::RunStarted() {
  absl::MutexLock lock(&mu_);
  ++runs_started_;
  ++runs_active_;
}

void OrchestratorMetrics::RunCompleted(const std::string& outcome) {
  absl::MutexLock lock(&mu_);
  --runs_active_;
  ++runs_completed_[outcome];
}

void OrchestratorMetrics::UpdatesEmitted(int64_t n) {
  absl::MutexLock lock(&mu_);
  updates_ += n;
}

void OrchestratorMetrics::SpecialistCall(const std::string& specialist,
                                         const std::string& instance) {
  absl::MutexLock lock(&mu_);
  ++calls_[{specialist, instance}];
}

void OrchestratorMetrics::SpecialistError(const std::string& specialist) {
  absl::MutexLock lock(&mu_);
  ++errors_[specialist];
}

void OrchestratorMetrics::FollowerAdded() {
  absl::MutexLock lock(&mu_);
  ++followers_active_;
}

void OrchestratorMetrics::FollowerRemoved() {
  absl::MutexLock lock(&mu_);
  --followers_active_;
}

int64_t OrchestratorMetrics::runs_active() const {
  absl::MutexLock lock(&mu_);
  return runs_active_;
}

int64_t OrchestratorMetrics::followers_active() const {
  absl::MutexLock lock(&mu_);
  return followers_active_;
}

int64_t OrchestratorMetrics::updates_total() const {
  absl::MutexLock lock(&mu_);
  return updates_;
}

std::string OrchestratorMetrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  Header(&out, "runs_started_total", "counter", "Runs started.");
  absl::StrAppend(&out, "runs_started_total ", runs_started_, "\n");
  Header(&out, "runs_active", "gauge", "Runs not yet complete.");
  absl::StrAppend(&out, "runs_active ", runs_active_, "\n");
  Header(&out, "runs_completed_total", "counter", "Runs completed by outcome.");
  for (const auto& [outcome, n] : runs_completed_) {
    absl::StrAppend(&out, "runs_completed_total{outcome=\"", Label(outcome),
                    "\"} ", n, "\n");
  }
  Header(&out, "updates_total", "counter", "Updates appended to run logs.");
  absl::StrAppend(&out, "updates_total ", updates_, "\n");
  Header(&out, "specialist_calls_total", "counter",
         "Analyze calls by specialist and answering instance.");
  for (const auto& [key, n] : calls_) {
    absl::StrAppend(&out, "specialist_calls_total{specialist=\"",
                    Label(key.first), "\",instance=\"", Label(key.second),
                    "\"} ", n, "\n");
  }
  Header(&out, "specialist_errors_total", "counter",
         "Analyze calls that ended in an error, by specialist.");
  for (const auto& [name, n] : errors_) {
    absl::StrAppend(&out, "specialist_errors_total{specialist=\"", Label(name),
                    "\"} ", n, "\n");
  }
  Header(&out, "followers_active", "gauge", "Open Run and Attach streams.");
  absl::StrAppend(&out, "followers_active ", followers_active_, "\n");
  return out;
}

}  // namespace agentstream::orchestrator
