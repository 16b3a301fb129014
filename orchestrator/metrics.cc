#include "orchestrator/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace agentstream::orchestrator {
namespace {

std::string Label(const std::string& v) {
  return absl::StrReplaceAll(v,
                             {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

// Appends the HELP and TYPE lines of `name` (without the prefix).
void Header(std::string* out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(out, "# HELP ", kMetricsPrefix, name, " ", help, "\n# TYPE ",
                  kMetricsPrefix, name, " ", type, "\n");
}

void Sample(std::string* out, const char* name, int64_t value) {
  absl::StrAppend(out, kMetricsPrefix, name, " ", value, "\n");
}

// name{label="key"} value, for each key.
void Samples(std::string* out, const char* name, const char* label,
             const std::map<std::string, int64_t>& values) {
  for (const auto& [key, n] : values) {
    absl::StrAppend(out, kMetricsPrefix, name, "{", label, "=\"", Label(key),
                    "\"} ", n, "\n");
  }
}

void Samples(
    std::string* out, const char* name, const char* label1, const char* label2,
    const std::map<std::pair<std::string, std::string>, int64_t>& values) {
  for (const auto& [key, n] : values) {
    absl::StrAppend(out, kMetricsPrefix, name, "{", label1, "=\"",
                    Label(key.first), "\",", label2, "=\"", Label(key.second),
                    "\"} ", n, "\n");
  }
}

int64_t Get(const std::map<std::string, int64_t>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

}  // namespace

OrchestratorMetrics::OrchestratorMetrics() {
  absl::MutexLock lock(&mu_);
  // Rendered from the start, so that a scraper sees zeros, not absences.
  for (const char* reason : {"request", "disconnect", "grace", "shutdown"}) {
    runs_cancelled_[reason] = 0;
  }
  for (const char* reason : {"max_runs", "memory"}) runs_refused_[reason] = 0;
}

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

void OrchestratorMetrics::RunCancelled(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  ++runs_cancelled_[reason];
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

void OrchestratorMetrics::SpecialistRetry(const std::string& specialist) {
  absl::MutexLock lock(&mu_);
  ++retries_[specialist];
}

void OrchestratorMetrics::SpecialistTimeout(const std::string& specialist,
                                            const std::string& action) {
  absl::MutexLock lock(&mu_);
  ++timeouts_[{specialist, action}];
}

void OrchestratorMetrics::FollowerAdded() {
  absl::MutexLock lock(&mu_);
  ++followers_active_;
}

void OrchestratorMetrics::FollowerRemoved() {
  absl::MutexLock lock(&mu_);
  --followers_active_;
}

void OrchestratorMetrics::Attached(bool resume) {
  absl::MutexLock lock(&mu_);
  ++attaches_;
  if (resume) ++resumes_;
}

void OrchestratorMetrics::Gap() {
  absl::MutexLock lock(&mu_);
  ++gaps_;
}

void OrchestratorMetrics::UpdatesCoalesced(int64_t n) {
  absl::MutexLock lock(&mu_);
  coalesced_ += n;
}

void OrchestratorMetrics::SlowConsumerCutOff() {
  absl::MutexLock lock(&mu_);
  ++cutoffs_;
}

void OrchestratorMetrics::LogBytesChanged(int64_t delta) {
  log_bytes_.fetch_add(delta, std::memory_order_relaxed);
}

void OrchestratorMetrics::RunRefused(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  ++runs_refused_[reason];
}

void OrchestratorMetrics::LogsDropped(int64_t n) {
  absl::MutexLock lock(&mu_);
  logs_dropped_ += n;
}

void OrchestratorMetrics::UpdatesTrimmed(int64_t n) {
  absl::MutexLock lock(&mu_);
  updates_trimmed_ += n;
}

int64_t OrchestratorMetrics::log_bytes() const {
  return log_bytes_.load(std::memory_order_relaxed);
}

int64_t OrchestratorMetrics::runs_refused(const std::string& reason) const {
  absl::MutexLock lock(&mu_);
  return Get(runs_refused_, reason);
}

int64_t OrchestratorMetrics::logs_dropped() const {
  absl::MutexLock lock(&mu_);
  return logs_dropped_;
}

int64_t OrchestratorMetrics::updates_trimmed() const {
  absl::MutexLock lock(&mu_);
  return updates_trimmed_;
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

int64_t OrchestratorMetrics::runs_cancelled(const std::string& reason) const {
  absl::MutexLock lock(&mu_);
  return Get(runs_cancelled_, reason);
}

int64_t OrchestratorMetrics::gaps() const {
  absl::MutexLock lock(&mu_);
  return gaps_;
}

int64_t OrchestratorMetrics::coalesced() const {
  absl::MutexLock lock(&mu_);
  return coalesced_;
}

int64_t OrchestratorMetrics::slow_consumer_cutoffs() const {
  absl::MutexLock lock(&mu_);
  return cutoffs_;
}

int64_t OrchestratorMetrics::specialist_retries(
    const std::string& specialist) const {
  absl::MutexLock lock(&mu_);
  return Get(retries_, specialist);
}

std::string OrchestratorMetrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  Header(&out, "runs_started_total", "counter", "Runs started.");
  Sample(&out, "runs_started_total", runs_started_);
  Header(&out, "runs_active", "gauge", "Runs not yet complete.");
  Sample(&out, "runs_active", runs_active_);
  Header(&out, "runs_completed_total", "counter", "Runs completed by outcome.");
  Samples(&out, "runs_completed_total", "outcome", runs_completed_);
  Header(&out, "runs_cancelled_total", "counter",
         "Runs cancelled, by reason (request: Cancel; disconnect: the last "
         "client left with on_disconnect=cancel; grace: nobody came back "
         "within the grace period; shutdown).");
  Samples(&out, "runs_cancelled_total", "reason", runs_cancelled_);
  Header(&out, "updates_total", "counter", "Updates appended to run logs.");
  Sample(&out, "updates_total", updates_);
  Header(&out, "followers_active", "gauge", "Open Run and Attach streams.");
  Sample(&out, "followers_active", followers_active_);
  Header(&out, "attaches_total", "counter", "Attach calls.");
  Sample(&out, "attaches_total", attaches_);
  Header(&out, "resumes_total", "counter", "Attach calls with after_seq > 0.");
  Sample(&out, "resumes_total", resumes_);
  Header(&out, "gaps_total", "counter",
         "Followers ended with OUT_OF_RANGE (the log no longer held their "
         "next update).");
  Sample(&out, "gaps_total", gaps_);
  Header(&out, "coalesced_updates_total", "counter",
         "Progress updates skipped for lagging followers (superseded by a "
         "newer progress update of the same specialist).");
  Sample(&out, "coalesced_updates_total", coalesced_);
  Header(&out, "slow_consumer_cutoffs_total", "counter",
         "Followers ended with RESOURCE_EXHAUSTED for lagging.");
  Sample(&out, "slow_consumer_cutoffs_total", cutoffs_);
  Header(&out, "log_bytes", "gauge",
         "Bytes held by all runs' logs and bookkeeping, against "
         "--max-total-log-bytes.");
  Sample(&out, "log_bytes", log_bytes_.load(std::memory_order_relaxed));
  Header(&out, "runs_refused_total", "counter",
         "New runs refused at capacity (RESOURCE_EXHAUSTED at_capacity), by "
         "reason (max_runs: --max-runs live runs; memory: "
         "--max-total-log-bytes).");
  Samples(&out, "runs_refused_total", "reason", runs_refused_);
  Header(&out, "logs_dropped_total", "counter",
         "Ended runs' logs dropped before their TTL to stay within "
         "--max-total-log-bytes.");
  Sample(&out, "logs_dropped_total", logs_dropped_);
  Header(&out, "log_updates_trimmed_total", "counter",
         "Updates dropped from live runs' logs to stay within "
         "--max-total-log-bytes.");
  Sample(&out, "log_updates_trimmed_total", updates_trimmed_);
  Header(&out, "specialist_calls_total", "counter",
         "Analyze calls by specialist and answering instance.");
  Samples(&out, "specialist_calls_total", "specialist", "instance", calls_);
  Header(&out, "specialist_errors_total", "counter",
         "Analyze calls that ended in an error, by specialist.");
  Samples(&out, "specialist_errors_total", "specialist", errors_);
  Header(&out, "specialist_retries_total", "counter",
         "Analyze calls tried again (unavailable before the first update).");
  Samples(&out, "specialist_retries_total", "specialist", retries_);
  Header(&out, "specialist_timeouts_total", "counter",
         "Specialists past their soft (continuing) or hard (abandoned) "
         "deadline.");
  Samples(&out, "specialist_timeouts_total", "specialist", "action", timeouts_);
  return out;
}

}  // namespace agentstream::orchestrator
