// The fixture of the whole-path tests (whole_path_test,
// whole_path_rejects_test, whole_path_services_test): every process real
// (the gateway, the orchestrator and the four built-in specialists on the
// generated SQLite data set, on loopback ports), one topology for the whole
// suite, the processes' logs printed when a test failed, and a whole chat
// stream asked through the gateway. Header-only.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_WHOLE_PATH_FIXTURE_H_
#define AGENTSTREAM_TESTS_INTEGRATION_WHOLE_PATH_FIXTURE_H_

#include <iostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {

// One topology for the whole suite: starting it (and generating the data
// set) is the slow part.
class WholePathTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TopologyOptions options;
    options.db_path = SharedTestDatabase();
    options.extra_gateway_args = extra_gateway_args_;
    auto t = Topology::Start(options);
    if (!t.ok()) {
      setup_error_ = new std::string(t.status().ToString());
      return;
    }
    topology_ = t->release();
  }
  static void TearDownTestSuite() {
    delete topology_;
    topology_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(topology_, nullptr) << (setup_error_ ? *setup_error_ : "");
  }
  void TearDown() override {
    if (HasFailure() && topology_ != nullptr) {
      std::cerr << topology_->Logs().substr(0, 20000);
    }
  }

  static SseResponse Ask(const std::string& query,
                         absl::Duration timeout = absl::Seconds(120)) {
    SseRequest req;
    req.port = topology_->gateway_port();
    req.path = "/api/chat/stream?" + query;
    req.timeout = timeout;
    return StreamSse(req);
  }

  // A suite's own gateway flags: set them in its SetUpTestSuite before
  // calling this one's.
  static inline std::vector<std::string> extra_gateway_args_;
  static inline Topology* topology_ = nullptr;
  static inline std::string* setup_error_ = nullptr;
};

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_INTEGRATION_WHOLE_PATH_FIXTURE_H_
