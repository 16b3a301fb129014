// What the whole path refuses, with every process real (the gateway, the
// orchestrator and the built-in specialists on loopback ports): a request ID
// that is not valid is replaced and never echoed, bad HTTP input gets a clear
// JSON error and leaves the gateway healthy, the gRPC methods refuse empty
// and oversized tasks, and a gateway without its orchestrator answers 503
// with Retry-After.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/whole_path_fixture.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(WholePathTest, InvalidRequestIdIsReplacedNeverEchoed) {
  SseRequest req;
  req.port = topology_->gateway_port();
  req.path = "/api/chat/stream?specialists=DataAnalyst&message=" +
             UrlEncode("totals for ACC-1042");
  const std::string bad = "evil<script>id with spaces";
  req.headers.emplace("X-Request-Id", bad);
  const SseResponse r = StreamSse(req);
  ASSERT_EQ(r.status, 200);
  const std::string rid = r.Header("X-Request-Id");
  EXPECT_FALSE(rid.empty());
  EXPECT_NE(rid, bad);
  EXPECT_THAT(r.raw, Not(HasSubstr("evil")));
}

struct BadInput {
  std::string name;
  std::string method;
  std::string path;
  std::string body;
  int status;
  std::string message_part;
};

TEST_F(WholePathTest, BadInputGetsAClearJsonError) {
  const std::string big_get(17 * 1024, 'a');
  const std::string big_post =
      nlohmann::json({{"message", std::string(300 * 1024, 'b')}}).dump();
  const std::vector<BadInput> cases = {
      {"missing message", "GET", "/api/chat/stream", "", 400, "message"},
      {"empty message", "GET", "/api/chat/stream?message=", "", 400, "message"},
      {"blank message", "GET", "/api/chat/stream?message=%20%20", "", 400,
       "message"},
      {"oversized GET", "GET", "/api/chat/stream?message=" + big_get, "", 413,
       ""},
      {"oversized POST", "POST", "/api/chat/stream", big_post, 413, ""},
      {"malformed JSON", "POST", "/api/chat/stream", "{\"message\": ", 400, ""},
      {"message not a string", "POST", "/api/chat/stream", "{\"message\": 42}",
       400, "message"},
      {"unknown specialist (GET)", "GET",
       "/api/chat/stream?message=hi&specialists=DataAnalyst,NoSuchExpert", "",
       400, "NoSuchExpert"},
      {"unknown specialist (POST)", "POST", "/api/chat/stream",
       R"({"message":"hi","specialists":["Nobody"]})", 400, "Nobody"},
  };
  httplib::Client client("127.0.0.1", topology_->gateway_port());
  client.set_read_timeout(20, 0);
  for (const BadInput& c : cases) {
    httplib::Result res =
        c.method == "GET"
            ? client.Get(c.path.c_str())
            : client.Post(c.path.c_str(), c.body, "application/json");
    ASSERT_TRUE(res) << c.name << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, c.status) << c.name << ": " << res->body;
    EXPECT_THAT(res->get_header_value("Content-Type"),
                HasSubstr("application/json"))
        << c.name;
    const auto body = nlohmann::json::parse(res->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << c.name << ": " << res->body;
    EXPECT_TRUE(body.contains("error")) << c.name;
    ASSERT_TRUE(body.contains("message")) << c.name;
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(c.message_part))
        << c.name;
  }
  // The gateway is still healthy after all of that.
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(WholePathTest, GrpcMethodsRejectEmptyAndOversizedTasks) {
  auto channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", topology_->orchestrator_port()),
      grpc::InsecureChannelCredentials());
  auto orch = agentstream::v1::Orchestrator::NewStub(channel);
  for (const std::string& message :
       {std::string(), std::string(17 * 1024, 'x')}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    agentstream::v1::RunRequest req;
    req.set_message(message);
    auto reader = orch->Run(&ctx, req);
    agentstream::v1::Update u;
    while (reader->Read(&u)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "message of " << message.size() << " bytes";
  }
  for (const char* kind : {"data_analyst", "synthetic"}) {
    auto sch = grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", topology_->specialist_port(kind)),
        grpc::InsecureChannelCredentials());
    auto spec = agentstream::v1::Specialist::NewStub(sch);
    for (const std::string& task :
         {std::string(), std::string(17 * 1024, 'y')}) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
      agentstream::v1::AnalyzeRequest req;
      req.set_request_id("req_test");
      req.set_question(task);
      req.set_task(task);
      auto reader = spec->Analyze(&ctx, req);
      agentstream::v1::Update u;
      while (reader->Read(&u)) {
      }
      EXPECT_EQ(reader->Finish().error_code(),
                grpc::StatusCode::INVALID_ARGUMENT)
          << kind << " task of " << task.size() << " bytes";
    }
  }
}

TEST(GatewayWithoutOrchestratorTest, AnswersServiceUnavailableWithRetryAfter) {
  // A port nothing listens on (not one an unaccepting socket holds).
  const absl::StatusOr<int> free_port = UnusedLoopbackPort();
  ASSERT_TRUE(free_port.ok()) << free_port.status();
  TopologyOptions options;
  options.specialists = {};
  options.orchestrator_address_override =
      absl::StrCat("127.0.0.1:", *free_port);
  auto t = Topology::Start(options);
  ASSERT_TRUE(t.ok()) << t.status();
  httplib::Client client("127.0.0.1", (*t)->gateway_port());
  client.set_read_timeout(30, 0);
  auto res = client.Get("/api/chat/stream?message=hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
  const auto body = nlohmann::json::parse(res->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << res->body;
  EXPECT_TRUE(body.contains("error"));
  EXPECT_TRUE(body.contains("message"));
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  auto healthy = client.Get("/healthz");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->status, 200);
}

}  // namespace
}  // namespace agentstream::testing
