#include "orchestrator/metrics.h"

namespace agentstream::orchestrator {
namespace {

prometheus::Counter& One(prometheus::Family<prometheus::Counter>& family) {
  return family.Add({});
}

}  // namespace

OrchestratorMetrics::OrchestratorMetrics()
    : registry_(kMetricsPrefix),
      runs_started_(
          One(registry_.Counter("runs_started_total", "Runs started."))),
      runs_taken_over_(One(registry_.Counter(
          "runs_taken_over_total",
          "Runs continued here after their owner stopped renewing its lease "
          "(run store; docs/SCALING.md)."))),
      runs_lost_(One(registry_.Counter(
          "runs_lost_total",
          "Runs stopped here because another replica took them over while "
          "this one could not reach the run store."))),
      store_up_(registry_
                    .Gauge("run_store_up",
                           "1 while the run store answers (always 1 for the "
                           "in-memory store).")
                    .Add({})),
      store_errors_(One(registry_.Counter(
          "run_store_errors_total",
          "Run store commands that failed (unreachable, timed out)."))),
      store_appended_(One(registry_.Counter(
          "run_store_updates_total",
          "Updates the run store acknowledged (then shown to followers)."))),
      runs_active_(
          registry_.Gauge("runs_active", "Runs not yet complete.").Add({})),
      runs_completed_(registry_.Counter("runs_completed_total",
                                        "Runs completed by outcome.")),
      runs_cancelled_(registry_.Counter(
          "runs_cancelled_total",
          "Runs cancelled, by reason (request: Cancel; disconnect: the last "
          "client left with on_disconnect=cancel; grace: nobody came back "
          "within the grace period; shutdown).")),
      updates_(One(
          registry_.Counter("updates_total", "Updates appended to run logs."))),
      followers_active_(
          registry_.Gauge("followers_active", "Open Run and Attach streams.")
              .Add({})),
      attaches_(One(registry_.Counter("attaches_total", "Attach calls."))),
      resumes_(One(registry_.Counter("resumes_total",
                                     "Attach calls with after_seq > 0."))),
      store_attaches_(One(registry_.Counter(
          "store_attaches_total",
          "Attach calls of runs another replica holds, served from the run "
          "store."))),
      gaps_(One(registry_.Counter(
          "gaps_total",
          "Followers ended with OUT_OF_RANGE (the log no longer held their "
          "next update)."))),
      coalesced_(One(registry_.Counter(
          "coalesced_updates_total",
          "Progress updates skipped for lagging followers (superseded by a "
          "newer progress update of the same specialist)."))),
      cutoffs_(One(registry_.Counter(
          "slow_consumer_cutoffs_total",
          "Followers ended with RESOURCE_EXHAUSTED for lagging."))),
      runs_refused_(registry_.Counter(
          "runs_refused_total",
          "New runs refused at capacity (RESOURCE_EXHAUSTED at_capacity), by "
          "reason (max_runs: --max-runs live runs; memory: "
          "--max-total-log-bytes).")),
      logs_dropped_(One(registry_.Counter(
          "logs_dropped_total",
          "Ended runs' logs dropped before their TTL to stay within "
          "--max-total-log-bytes."))),
      updates_trimmed_(One(registry_.Counter(
          "log_updates_trimmed_total",
          "Updates dropped from live runs' logs to stay within "
          "--max-total-log-bytes."))),
      calls_(registry_.Counter(
          "specialist_calls_total",
          "Analyze calls by specialist and answering instance.",
          {"specialist", "instance"})),
      errors_(registry_.Counter(
          "specialist_errors_total",
          "Analyze calls that ended in an error, by specialist.")),
      retries_(registry_.Counter(
          "specialist_retries_total",
          "Analyze calls tried again (unavailable before the first update).")),
      timeouts_(registry_.Counter(
          "specialist_timeouts_total",
          "Specialists past their soft (continuing) or hard (abandoned) "
          "deadline.",
          {"specialist", "action"})),
      received_updates_(One(registry_.Counter(
          "specialist_updates_received_total",
          "Updates received from specialists (Analyze and AnalyzeBatched), "
          "before validation."))),
      received_bytes_(One(registry_.Counter(
          "specialist_update_bytes_received_total",
          "Serialized bytes of the updates received from specialists."))),
      sent_updates_(One(registry_.Counter(
          "updates_sent_total",
          "Updates handed to gRPC for writing to followers (Run, Attach and "
          "their batched forms; a replay counts again)."))),
      sent_bytes_(One(registry_.Counter(
          "update_bytes_sent_total",
          "Message bytes handed to gRPC for writing to followers."))),
      hop_to_receipt_(
          registry_.Hop("hop_emit_to_receipt_seconds",
                        "Seconds from a specialist update's emitted_at (the "
                        "specialist's clock) to its receipt here.")),
      hop_to_write_(
          registry_.Hop("hop_emit_to_write_seconds",
                        "Seconds from an update's emitted_at (its emitter's "
                        "clock) to its being handed to gRPC for a follower "
                        "(the gateway's stream).")) {
  registry_.GaugeFn("log_bytes",
                    "Bytes held by all runs' logs and bookkeeping, against "
                    "--max-total-log-bytes.",
                    [this] { return static_cast<double>(log_bytes()); });
  store_up_.Set(1);
  // Rendered from the start, so that a scraper sees zeros, not absences.
  for (const char* reason : {"request", "disconnect", "grace", "shutdown"}) {
    runs_cancelled_.Add({{"reason", reason}});
  }
  for (const char* reason : {"max_runs", "memory"}) {
    runs_refused_.Add({{"reason", reason}});
  }
}

int64_t OrchestratorMetrics::Get(CounterFamily& family,
                                 const prometheus::Labels& labels) {
  if (!family.Has(labels)) return 0;
  return static_cast<int64_t>(family.Add(labels).Value());
}

void OrchestratorMetrics::RunStarted() {
  runs_started_.Increment();
  runs_active_.Increment();
}

void OrchestratorMetrics::AttachedThroughStore() {
  store_attaches_.Increment();
}

void OrchestratorMetrics::RunTakenOver() {
  runs_taken_over_.Increment();
  runs_active_.Increment();
}

void OrchestratorMetrics::RunLost() {
  runs_lost_.Increment();
  runs_active_.Decrement();
}

void OrchestratorMetrics::StoreUp(bool up) { store_up_.Set(up ? 1 : 0); }

void OrchestratorMetrics::StoreError() { store_errors_.Increment(); }

void OrchestratorMetrics::StoreAppended(int64_t n) {
  store_appended_.Increment(static_cast<double>(n));
}

void OrchestratorMetrics::RunCompleted(const std::string& outcome) {
  runs_active_.Decrement();
  runs_completed_.Add({{"outcome", outcome}}).Increment();
}

void OrchestratorMetrics::RunCancelled(const std::string& reason) {
  runs_cancelled_.Add({{"reason", reason}}).Increment();
}

void OrchestratorMetrics::UpdatesEmitted(int64_t n) {
  updates_.Increment(static_cast<double>(n));
}

void OrchestratorMetrics::SpecialistCall(const std::string& specialist,
                                         const std::string& instance) {
  calls_.Add({{"specialist", specialist}, {"instance", instance}}).Increment();
}

void OrchestratorMetrics::SpecialistError(const std::string& specialist) {
  errors_.Add({{"specialist", specialist}}).Increment();
}

void OrchestratorMetrics::SpecialistRetry(const std::string& specialist) {
  retries_.Add({{"specialist", specialist}}).Increment();
}

void OrchestratorMetrics::SpecialistTimeout(const std::string& specialist,
                                            const std::string& action) {
  timeouts_.Add({{"specialist", specialist}, {"action", action}}).Increment();
}

void OrchestratorMetrics::FollowerAdded() { followers_active_.Increment(); }

void OrchestratorMetrics::FollowerRemoved() { followers_active_.Decrement(); }

void OrchestratorMetrics::Attached(bool resume) {
  attaches_.Increment();
  if (resume) resumes_.Increment();
}

void OrchestratorMetrics::Gap() { gaps_.Increment(); }

void OrchestratorMetrics::UpdatesCoalesced(int64_t n) {
  coalesced_.Increment(static_cast<double>(n));
}

void OrchestratorMetrics::SlowConsumerCutOff() { cutoffs_.Increment(); }

void OrchestratorMetrics::LogBytesChanged(int64_t delta) {
  log_bytes_.fetch_add(delta, std::memory_order_relaxed);
}

void OrchestratorMetrics::RunRefused(const std::string& reason) {
  runs_refused_.Add({{"reason", reason}}).Increment();
}

void OrchestratorMetrics::LogsDropped(int64_t n) {
  logs_dropped_.Increment(static_cast<double>(n));
}

void OrchestratorMetrics::UpdatesTrimmed(int64_t n) {
  updates_trimmed_.Increment(static_cast<double>(n));
}

void OrchestratorMetrics::SpecialistUpdatesReceived(int64_t updates,
                                                    int64_t bytes) {
  received_updates_.Increment(static_cast<double>(updates));
  received_bytes_.Increment(static_cast<double>(bytes));
}

void OrchestratorMetrics::UpdatesSent(int64_t updates, int64_t bytes) {
  sent_updates_.Increment(static_cast<double>(updates));
  sent_bytes_.Increment(static_cast<double>(bytes));
}

int64_t OrchestratorMetrics::log_bytes() const {
  return log_bytes_.load(std::memory_order_relaxed);
}

int64_t OrchestratorMetrics::runs_refused(const std::string& reason) const {
  return Get(runs_refused_, {{"reason", reason}});
}

int64_t OrchestratorMetrics::logs_dropped() const {
  return static_cast<int64_t>(logs_dropped_.Value());
}

int64_t OrchestratorMetrics::updates_trimmed() const {
  return static_cast<int64_t>(updates_trimmed_.Value());
}

int64_t OrchestratorMetrics::runs_active() const {
  return static_cast<int64_t>(runs_active_.Value());
}

int64_t OrchestratorMetrics::followers_active() const {
  return static_cast<int64_t>(followers_active_.Value());
}

int64_t OrchestratorMetrics::updates_total() const {
  return static_cast<int64_t>(updates_.Value());
}

int64_t OrchestratorMetrics::runs_cancelled(const std::string& reason) const {
  return Get(runs_cancelled_, {{"reason", reason}});
}

int64_t OrchestratorMetrics::gaps() const {
  return static_cast<int64_t>(gaps_.Value());
}

int64_t OrchestratorMetrics::coalesced() const {
  return static_cast<int64_t>(coalesced_.Value());
}

int64_t OrchestratorMetrics::slow_consumer_cutoffs() const {
  return static_cast<int64_t>(cutoffs_.Value());
}

int64_t OrchestratorMetrics::specialist_retries(
    const std::string& specialist) const {
  return Get(retries_, {{"specialist", specialist}});
}

std::string OrchestratorMetrics::Render() const { return registry_.Render(); }

}  // namespace agentstream::orchestrator
