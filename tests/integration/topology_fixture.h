// The fixture the stream-survival integration tests share: it owns one
// Topology (the real binaries on loopback ports) and prints the processes'
// logs when a test failed. Header-only.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_TOPOLOGY_FIXTURE_H_
#define AGENTSTREAM_TESTS_INTEGRATION_TOPOLOGY_FIXTURE_H_

#include <cstddef>
#include <iostream>
#include <memory>
#include <utility>

#include "gtest/gtest.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {

// A topology of the orchestrator, the gateway and one Synthetic specialist.
inline TopologyOptions SyntheticOnlyOptions() {
  TopologyOptions options;
  options.specialists = {"synthetic"};
  return options;
}

class TopologyTest : public ::testing::Test {
 protected:
  // `log_chars_on_failure`: how much of the logs TearDown prints.
  explicit TopologyTest(size_t log_chars_on_failure = 30000)
      : log_chars_on_failure_(log_chars_on_failure) {}

  void TearDown() override {
    if (HasFailure() && topology_ != nullptr) {
      std::cerr << topology_->Logs().substr(0, log_chars_on_failure_);
    }
  }

  // Starts the topology into `topology_`; a fatal failure if it cannot.
  // From SetUp() (the test body is then skipped) or wrapped in
  // ASSERT_NO_FATAL_FAILURE.
  void StartTopology(TopologyOptions options) {
    auto t = Topology::Start(std::move(options));
    ASSERT_TRUE(t.ok()) << t.status();
    topology_ = std::move(*t);
  }

  std::unique_ptr<Topology> topology_;

 private:
  const size_t log_chars_on_failure_;
};

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_INTEGRATION_TOPOLOGY_FIXTURE_H_
