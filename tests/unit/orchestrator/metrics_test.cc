#include "orchestrator/metrics.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

using ::testing::HasSubstr;

TEST(OrchestratorMetricsTest, RendersPrometheusText) {
  OrchestratorMetrics m;
  m.RunStarted();
  m.RunStarted();
  m.RunCompleted("ok");
  m.UpdatesEmitted(7);
  m.SpecialistCall("RiskAnalyst", "risk-1:50051");
  m.SpecialistCall("RiskAnalyst", "risk-1:50051");
  m.SpecialistError("Data\"Analyst");
  m.FollowerAdded();
  const std::string text = m.Render();
  EXPECT_THAT(
      text,
      HasSubstr("# TYPE agentstream_orchestrator_runs_started_total counter\n"
                "agentstream_orchestrator_runs_started_total 2\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_runs_active 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "agentstream_orchestrator_runs_completed_total{outcome=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_updates_total 7\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_specialist_calls_total{"
                              "specialist=\"RiskAnalyst\","
                              "instance=\"risk-1:50051\"} 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("agentstream_orchestrator_specialist_errors_total{specialist="
                "\"Data\\\"Analyst\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("# TYPE agentstream_orchestrator_followers_active gauge\n"
                      "agentstream_orchestrator_followers_active 1\n"));
}

TEST(OrchestratorMetricsTest, EveryContractNameIsPrefixedAndRendered) {
  OrchestratorMetrics m;
  m.RunCancelled("grace");
  m.Attached(/*resume=*/true);
  m.Attached(/*resume=*/false);
  m.Gap();
  m.UpdatesCoalesced(5);
  m.SlowConsumerCutOff();
  m.SpecialistRetry("RiskAnalyst");
  m.SpecialistTimeout("RiskAnalyst", "continuing");
  m.SpecialistCall("RiskAnalyst", "r:1");
  m.SpecialistError("RiskAnalyst");
  m.RunStarted();
  m.RunCompleted("cancelled");
  m.LogBytesChanged(5000);
  m.LogBytesChanged(-1000);
  m.RunRefused("memory");
  m.LogsDropped(2);
  m.UpdatesTrimmed(7);
  const std::string text = m.Render();
  for (const char* name :
       {"runs_started_total", "runs_active", "runs_completed_total",
        "runs_cancelled_total", "followers_active", "attaches_total",
        "resumes_total", "gaps_total", "coalesced_updates_total",
        "slow_consumer_cutoffs_total", "updates_total",
        "specialist_calls_total", "specialist_errors_total",
        "specialist_retries_total", "specialist_timeouts_total", "log_bytes",
        "runs_refused_total", "logs_dropped_total",
        "log_updates_trimmed_total"}) {
    EXPECT_THAT(
        text,
        HasSubstr(std::string("# TYPE agentstream_orchestrator_") + name + " "))
        << name;
  }
  // Every sample line carries the prefix.
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(absl::StartsWith(line, "agentstream_orchestrator_")) << line;
  }
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_runs_cancelled_total{"
                              "reason=\"grace\"} 1\n"));
  // The other reasons are rendered from the start.
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_runs_cancelled_total{"
                              "reason=\"shutdown\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE agentstream_orchestrator_log_bytes "
                              "gauge\nagentstream_orchestrator_log_bytes "
                              "4000\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_runs_refused_total{"
                              "reason=\"memory\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_runs_refused_total{"
                              "reason=\"max_runs\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("agentstream_orchestrator_logs_dropped_total 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("agentstream_orchestrator_log_updates_trimmed_total 7\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_attaches_total 2\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_resumes_total 1\n"));
  EXPECT_THAT(text, HasSubstr("agentstream_orchestrator_gaps_total 1\n"));
  EXPECT_THAT(
      text, HasSubstr("agentstream_orchestrator_coalesced_updates_total 5\n"));
  EXPECT_THAT(
      text,
      HasSubstr("agentstream_orchestrator_slow_consumer_cutoffs_total 1\n"));
  EXPECT_THAT(text,
              HasSubstr("agentstream_orchestrator_specialist_retries_total{"
                        "specialist=\"RiskAnalyst\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("agentstream_orchestrator_specialist_timeouts_total{"
                      "specialist=\"RiskAnalyst\",action=\"continuing\"} 1\n"));
}

}  // namespace
}  // namespace agentstream::orchestrator
