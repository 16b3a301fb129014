#include "specialists/sdk/metrics.h"

namespace agentstream::specialists {

// Every family carries the specialist as a constant label, rendered first
// (then `outcome`), as before the registry.
SpecialistMetrics::SpecialistMetrics(const std::string& specialist)
    : registry_("agentstream_specialist_"),
      started_(
          registry_.Counter("analyses_started_total", "Analyze calls accepted.")
              .Add({{"specialist", specialist}})),
      completed_(registry_.Counter("analyses_completed_total",
                                   "Analyze calls ended, by outcome.",
                                   {"specialist", "outcome"})),
      ok_(completed_.Add({{"specialist", specialist}, {"outcome", "ok"}})),
      cancelled_(completed_.Add(
          {{"specialist", specialist}, {"outcome", "cancelled"}})),
      failed_(
          completed_.Add({{"specialist", specialist}, {"outcome", "failed"}})),
      active_(registry_.Gauge("analyses_active", "Analyze calls in flight.")
                  .Add({{"specialist", specialist}})),
      waiting_(registry_
                   .Gauge("analyses_waiting",
                          "Blocking analyses waiting for a pool thread "
                          "(bounded by --max-waiting-analyses).")
                   .Add({{"specialist", specialist}})),
      updates_sent_(
          registry_.Counter("updates_sent_total", "Updates written to clients.")
              .Add({{"specialist", specialist}})),
      bytes_sent_(registry_
                      .Counter("update_bytes_sent_total",
                               "Serialized bytes of the updates written to "
                               "clients.")
                      .Add({{"specialist", specialist}})),
      hop_to_write_(registry_.Hop(
          "hop_emit_to_write_seconds",
          "Seconds from an update's emitted_at to its being handed to gRPC "
          "for writing (its time in the stream's queue).",
          {{"specialist", specialist}})),
      last_cancel_stop_ms_(
          registry_
              .Gauge("last_cancel_stop_ms",
                     "Milliseconds from the last cancellation request to its "
                     "analysis returning (-1: none yet).")
              .Add({{"specialist", specialist}})) {
  last_cancel_stop_ms_.Set(-1);
  registry_.GaugeFn(
      "queued_updates",
      "Updates emitted and not yet written, across all streams (each "
      "bounded by --stream-queue-updates).",
      [this] { return static_cast<double>(queued_updates()); },
      {{"specialist", specialist}});
}

void SpecialistMetrics::AnalysisStarted() {
  started_.Increment();
  active_.Increment();
}

void SpecialistMetrics::AnalysisEnded(AnalysisOutcome outcome) {
  switch (outcome) {
    case AnalysisOutcome::kOk:
      ok_.Increment();
      break;
    case AnalysisOutcome::kCancelled:
      cancelled_.Increment();
      break;
    case AnalysisOutcome::kFailed:
      failed_.Increment();
      break;
  }
  active_.Decrement();
}

void SpecialistMetrics::UpdatesSent(int64_t n, int64_t bytes) {
  updates_sent_.Increment(static_cast<double>(n));
  if (bytes > 0) bytes_sent_.Increment(static_cast<double>(bytes));
}

void SpecialistMetrics::CancelStopped(int64_t stop_ms) {
  last_cancel_stop_ms_.Set(static_cast<double>(stop_ms));
}

int64_t SpecialistMetrics::completed(AnalysisOutcome outcome) const {
  switch (outcome) {
    case AnalysisOutcome::kOk:
      return Int(ok_);
    case AnalysisOutcome::kCancelled:
      return Int(cancelled_);
    case AnalysisOutcome::kFailed:
      return Int(failed_);
  }
  return 0;
}

std::string SpecialistMetrics::RenderPrometheus() const {
  return registry_.Render();
}

}  // namespace agentstream::specialists
