#include "orchestrator/metrics.h"

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
  EXPECT_THAT(text, HasSubstr("# TYPE runs_started_total counter\n"
                              "runs_started_total 2\n"));
  EXPECT_THAT(text, HasSubstr("runs_active 1\n"));
  EXPECT_THAT(text, HasSubstr("runs_completed_total{outcome=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("updates_total 7\n"));
  EXPECT_THAT(text,
              HasSubstr("specialist_calls_total{specialist=\"RiskAnalyst\","
                        "instance=\"risk-1:50051\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("specialist_errors_total{specialist="
                              "\"Data\\\"Analyst\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE followers_active gauge\n"
                              "followers_active 1\n"));
}

}  // namespace
}  // namespace agentstream::orchestrator
