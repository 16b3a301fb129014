#include "specialists/sdk/metrics.h"

#include "absl/strings/str_cat.h"

namespace agentstream::specialists {

void SpecialistMetrics::AnalysisStarted() {
  started_.fetch_add(1);
  active_.fetch_add(1);
}

void SpecialistMetrics::AnalysisEnded(AnalysisOutcome outcome) {
  switch (outcome) {
    case AnalysisOutcome::kOk:
      ok_.fetch_add(1);
      break;
    case AnalysisOutcome::kCancelled:
      cancelled_.fetch_add(1);
      break;
    case AnalysisOutcome::kFailed:
      failed_.fetch_add(1);
      break;
  }
  active_.fetch_sub(1);
}

void SpecialistMetrics::CancelStopped(int64_t stop_ms) {
  last_cancel_stop_ms_.store(stop_ms);
}

int64_t SpecialistMetrics::completed(AnalysisOutcome outcome) const {
  switch (outcome) {
    case AnalysisOutcome::kOk:
      return ok_.load();
    case AnalysisOutcome::kCancelled:
      return cancelled_.load();
    case AnalysisOutcome::kFailed:
      return failed_.load();
  }
  return 0;
}

std::string SpecialistMetrics::RenderPrometheus() const {
  const std::string label = absl::StrCat("specialist=\"", specialist_, "\"");
  std::string out;
  absl::StrAppend(
      &out,
      "# HELP agentstream_specialist_analyses_started_total Analyze calls "
      "accepted.\n",
      "# TYPE agentstream_specialist_analyses_started_total counter\n",
      "agentstream_specialist_analyses_started_total{", label, "} ",
      started_.load(), "\n");
  absl::StrAppend(
      &out,
      "# HELP agentstream_specialist_analyses_completed_total Analyze calls "
      "ended, by outcome.\n",
      "# TYPE agentstream_specialist_analyses_completed_total counter\n");
  const std::pair<const char*, int64_t> outcomes[] = {
      {"ok", ok_.load()},
      {"cancelled", cancelled_.load()},
      {"failed", failed_.load()}};
  for (const auto& [name, value] : outcomes) {
    absl::StrAppend(&out, "agentstream_specialist_analyses_completed_total{",
                    label, ",outcome=\"", name, "\"} ", value, "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP agentstream_specialist_analyses_active Analyze calls in "
      "flight.\n",
      "# TYPE agentstream_specialist_analyses_active gauge\n",
      "agentstream_specialist_analyses_active{", label, "} ", active_.load(),
      "\n");
  absl::StrAppend(
      &out,
      "# HELP agentstream_specialist_updates_sent_total Updates written to "
      "clients.\n",
      "# TYPE agentstream_specialist_updates_sent_total counter\n",
      "agentstream_specialist_updates_sent_total{", label, "} ",
      updates_sent_.load(), "\n");
  absl::StrAppend(
      &out,
      "# HELP agentstream_specialist_last_cancel_stop_ms Milliseconds from "
      "the last cancellation request to its analysis returning (-1: none "
      "yet).\n",
      "# TYPE agentstream_specialist_last_cancel_stop_ms gauge\n",
      "agentstream_specialist_last_cancel_stop_ms{", label, "} ",
      last_cancel_stop_ms_.load(), "\n");
  return out;
}

}  // namespace agentstream::specialists
