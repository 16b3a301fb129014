// The fixture of the gateway's integration-style tests: the real gateway
// (in-process GatewayServer) against the fake orchestrator, over loopback.
#ifndef AGENTSTREAM_TESTS_UNIT_GATEWAY_GATEWAY_FIXTURE_H_
#define AGENTSTREAM_TESTS_UNIT_GATEWAY_GATEWAY_FIXTURE_H_

#include <httplib.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gateway/http_server.h"
#include "gateway/orchestrator_client.h"
#include "gtest/gtest.h"
#include "tests/testing/sse_client.h"
#include "tests/unit/gateway/fake_orchestrator.h"

namespace agentstream::gateway::testing {

using agentstream::testing::SseRequest;
using agentstream::testing::SseResponse;
using agentstream::testing::StreamSse;

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GT(fake_.Start(), 0); }
  void TearDown() override {
    if (gateway_) gateway_->Stop();
    gateway_.reset();
    fake_.Shutdown();
  }

  void StartGateway(GatewayOptions options = {},
                    std::string orchestrator = "") {
    options.host = "127.0.0.1";
    options.port = 0;
    if (orchestrator.empty()) orchestrator = fake_.address();
    gateway_ = std::make_unique<GatewayServer>(
        options,
        NewGrpcOrchestratorClient(NewOrchestratorChannel(orchestrator)));
    ASSERT_TRUE(gateway_->Start().ok());
    ASSERT_GT(gateway_->port(), 0);
  }

  SseResponse Stream(const std::string& path,
                     std::multimap<std::string, std::string> headers = {},
                     const std::string& method = "GET",
                     const std::string& body = "") {
    SseRequest request;
    request.port = gateway_->port();
    request.path = path;
    request.method = method;
    request.body = body;
    request.headers = std::move(headers);
    request.timeout = absl::Seconds(20);
    return StreamSse(request);
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", gateway_->port());
    client.set_read_timeout(10, 0);
    return client.Get(path.c_str());
  }

  // The server side finishes a stream just after the client saw its end.
  int64_t StreamsOpenSettled() const {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (gateway_->metrics().streams_open.load() != 0 &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return gateway_->metrics().streams_open.load();
  }

  // `call`, as WaitForEnd gave it, ended cancelled within `bound` of
  // `since`; `never_ended` says what it means if it did not end. Call with
  // ASSERT_NO_FATAL_FAILURE.
  static void ExpectCancelledWithin(const std::optional<RunCallRecord>& call,
                                    absl::Time since, absl::Duration bound,
                                    const std::string& never_ended) {
    ASSERT_TRUE(call.has_value()) << never_ended;
    EXPECT_TRUE(call->cancelled);
    EXPECT_LT(call->cancelled_at - since, bound)
        << absl::FormatDuration(call->cancelled_at - since);
  }

  // After a client went away: no stream is left open and it was counted as
  // one client disconnect.
  void ExpectOneClientGoneAndNoStreamOpen() const {
    EXPECT_EQ(StreamsOpenSettled(), 0);
    EXPECT_EQ(gateway_->metrics().client_disconnects_total.load(), 1);
  }

  static std::vector<std::string> Names(const SseResponse& r) {
    std::vector<std::string> names;
    for (const auto& e : r.events) names.push_back(e.event);
    return names;
  }

  FakeOrchestrator fake_;
  std::unique_ptr<GatewayServer> gateway_;
};

}  // namespace agentstream::gateway::testing

#endif  // AGENTSTREAM_TESTS_UNIT_GATEWAY_GATEWAY_FIXTURE_H_
