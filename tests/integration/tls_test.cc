// Service-to-service mTLS through the real binaries (common/tls.h,
// docs/SECURITY.md, "Service-to-service TLS"): a CA and per-service
// certificates made by deploy/docker/make_certs.sh (compose's init step),
// another CA made with the openssl CLI; the specialists, the orchestrator
// and the gateway started with --tls-cert/--tls-key/--tls-ca; a question
// answered through the gateway; gRPC clients without a certificate, with one
// from another CA, or in plaintext refused by the orchestrator and by a
// specialist; the image's health probe with the service's files.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "common/grpc_health.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/certs.h"
#include "tests/testing/sse_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kQuestion[] =
    "Assess the risk and AML compliance of account ACC-1042 over the last 6 "
    "months";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> TlsArgs(const TlsFiles& f) {
  return {"--tls-cert=" + f.cert_file, "--tls-key=" + f.key_file,
          "--tls-ca=" + f.ca_file};
}

// The standard health check (common/grpc_health.h) at 127.0.0.1:port with
// `creds`: OK when the answer is SERVING, else why not.
absl::Status HealthCheck(int port,
                         std::shared_ptr<grpc::ChannelCredentials> creds) {
  return GrpcHealthCheck(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), std::move(creds)),
      absl::Seconds(10));
}

class TlsTopologyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::Status s = Prepare();
    if (!s.ok()) setup_error_ = new std::string(s.ToString());
  }
  static absl::Status Prepare() {
    absl::StatusOr<std::string> dir = MakeTempDir("agentstream-tls-");
    if (!dir.ok()) return dir.status();
    dir_ = new std::string(*dir);
    // The CA and per-service certificates as compose makes them
    // (deploy/docker/make_certs.sh); each service its own.
    const std::string tls_dir = *dir_ + "/tls";
    if (absl::Status s = RunShell(
            absl::StrCat("sh '", AGENTSTREAM_MAKE_CERTS, "' '", tls_dir,
                         "' specialist orchestrator gateway tester"));
        !s.ok()) {
      return s;
    }
    auto files = [&](const std::string& service) {
      TlsFiles f;
      f.cert_file = absl::StrCat(tls_dir, "/", service, "/tls.crt");
      f.key_file = absl::StrCat(tls_dir, "/", service, "/tls.key");
      f.ca_file = tls_dir + "/ca.crt";
      return f;
    };
    const TlsFiles specialist = files("specialist");
    const TlsFiles orchestrator = files("orchestrator");
    const TlsFiles gateway = files("gateway");
    const TlsFiles client = files("tester");
    absl::StatusOr<TestCa> rogue = TestCa::Create(*dir_, "rogue");
    if (!rogue.ok()) return rogue.status();
    absl::StatusOr<TlsFiles> rogue_client = rogue->IssueLoopback("gateway");
    if (!rogue_client.ok()) return rogue_client.status();
    orchestrator_files_ = new TlsFiles(orchestrator);
    gateway_files_ = new TlsFiles(gateway);
    client_files_ = new TlsFiles(client);
    rogue_files_ = new TlsFiles(*rogue_client);

    TopologyOptions options;
    options.db_path = SharedTestDatabase();
    options.specialists = {"data_analyst", "risk_analyst", "compliance_expert"};
    options.extra_specialist_args = TlsArgs(specialist);
    options.extra_orchestrator_args = TlsArgs(orchestrator);
    // Principal metadata is believed from the gateway's certificate only
    // (docs/SECURITY.md, "Runs belong to their owner").
    options.extra_orchestrator_args.push_back("--trusted-peers=gateway");
    options.extra_gateway_args = TlsArgs(gateway);
    // Ready only once the orchestrator has described every specialist over
    // mTLS, and the gateway has reached the orchestrator (topology.cc).
    absl::StatusOr<std::unique_ptr<Topology>> t = Topology::Start(options);
    if (!t.ok()) return t.status();
    topology_ = t->release();
    return absl::OkStatus();
  }
  static void TearDownTestSuite() {
    delete topology_;
    topology_ = nullptr;
    if (dir_ != nullptr) (void)RunShell(absl::StrCat("rm -rf '", *dir_, "'"));
  }
  void SetUp() override {
    ASSERT_NE(topology_, nullptr) << (setup_error_ ? *setup_error_ : "");
  }
  void TearDown() override {
    if (HasFailure() && topology_ != nullptr) {
      std::cerr << topology_->Logs().substr(0, 20000);
    }
  }

  // The orchestrator and one specialist: the two kinds of gRPC server.
  static std::vector<std::pair<std::string, int>> Servers() {
    return {{"orchestrator", topology_->orchestrator_port()},
            {"data_analyst", topology_->specialist_port("data_analyst")}};
  }

  static inline Topology* topology_ = nullptr;
  static inline std::string* setup_error_ = nullptr;
  static inline std::string* dir_ = nullptr;
  static inline TlsFiles* orchestrator_files_ = nullptr;
  static inline TlsFiles* client_files_ = nullptr;
  static inline TlsFiles* gateway_files_ = nullptr;
  static inline TlsFiles* rogue_files_ = nullptr;
};

TEST_F(TlsTopologyTest, AQuestionIsAnsweredThroughTheGateway) {
  SseRequest req;
  req.port = topology_->gateway_port();
  req.path = "/api/chat/stream?message=" + UrlEncode(kQuestion);
  req.timeout = absl::Seconds(120);
  const SseResponse r = StreamSse(req);
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.back().event, "done") << r.raw;
  std::set<std::string> activated;
  const nlohmann::json* last = nullptr;
  for (const SseEvent& e : r.events) {
    if (e.event != "message") continue;
    last = &e.json;
    if (e.json["type"] == "specialist_activated") {
      activated.insert(e.json["specialist"].get<std::string>());
    }
  }
  ASSERT_NE(last, nullptr) << r.raw;
  EXPECT_EQ((*last)["type"], "complete");
  EXPECT_EQ((*last)["outcome"], "ok") << last->dump();
  EXPECT_EQ(activated, (std::set<std::string>{"DataAnalyst", "RiskAnalyst",
                                              "ComplianceExpert"}));
}

// A direct gRPC client with a certificate that is not the gateway's: its
// principal metadata is ignored, it acts as `peer:tester`, cannot reach the
// runs the gateway started for alice, and cannot choose its run's id.
TEST_F(TlsTopologyTest, OnlyTheGatewaysCertificateMayActForAPrincipal) {
  auto stub_with = [](const TlsFiles& files) {
    return agentstream::v1::Orchestrator::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", topology_->orchestrator_port()),
        MakeChannelCredentials(files)));
  };
  auto as = [](grpc::ClientContext& ctx, const std::string& principal) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    ctx.AddMetadata("x-agentstream-principal", principal);
  };
  auto gateway = stub_with(*gateway_files_);
  auto tester = stub_with(*client_files_);

  // Alice's run, started through the gateway's certificate.
  agentstream::v1::RunRequest run;
  run.set_message("What is the risk of ACC-1042?");
  run.add_specialists("RiskAnalyst");
  grpc::ClientContext alice_ctx;
  as(alice_ctx, "alice");
  auto alice = gateway->Run(&alice_ctx, run);
  agentstream::v1::Update first;
  ASSERT_TRUE(alice->Read(&first));
  const std::string rid = first.request_id();
  ASSERT_THAT(rid, ::testing::StartsWith("run_"));

  // The tester claims to be alice: NOT_FOUND, as for an unknown run.
  agentstream::v1::AttachRequest attach;
  attach.set_request_id(rid);
  {
    grpc::ClientContext ctx;
    as(ctx, "alice");
    auto reader = tester->Attach(&ctx, attach);
    agentstream::v1::Update u;
    EXPECT_FALSE(reader->Read(&u));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    as(ctx, "alice");
    agentstream::v1::CancelRequest cancel;
    cancel.set_request_id(rid);
    agentstream::v1::CancelResponse response;
    EXPECT_EQ(tester->Cancel(&ctx, cancel, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  // Through the gateway's certificate, bob cannot either; alice can.
  {
    grpc::ClientContext ctx;
    as(ctx, "bob");
    auto reader = gateway->Attach(&ctx, attach);
    agentstream::v1::Update u;
    EXPECT_FALSE(reader->Read(&u));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    as(ctx, "alice");
    auto reader = gateway->Attach(&ctx, attach);
    agentstream::v1::Update u;
    ASSERT_TRUE(reader->Read(&u));
    EXPECT_EQ(u.seq(), 1u);
    ctx.TryCancel();
    (void)reader->Finish();
  }
  // The tester's own run: a generated id whatever it asked for, and its own.
  agentstream::v1::RunRequest own = run;
  own.set_request_id("tester-chosen-id");
  grpc::ClientContext own_ctx;
  as(own_ctx, "alice");
  auto mine = tester->Run(&own_ctx, own);
  agentstream::v1::Update u;
  ASSERT_TRUE(mine->Read(&u));
  EXPECT_NE(u.request_id(), "tester-chosen-id");
  EXPECT_THAT(u.request_id(), ::testing::StartsWith("run_"));
  agentstream::v1::Update rest;
  while (mine->Read(&rest)) {
  }
  EXPECT_TRUE(mine->Finish().ok());
  while (alice->Read(&rest)) {
  }
  EXPECT_TRUE(alice->Finish().ok());
}

TEST_F(TlsTopologyTest, AClientWithAValidCertificateIsServed) {
  for (const auto& [name, port] : Servers()) {
    EXPECT_TRUE(HealthCheck(port, MakeChannelCredentials(*client_files_)).ok())
        << name;
  }
}

TEST_F(TlsTopologyTest, AClientWithoutACertificateIsRefused) {
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = ReadAll(client_files_->ca_file);
  for (const auto& [name, port] : Servers()) {
    EXPECT_EQ(HealthCheck(port, grpc::SslCredentials(no_cert)).code(),
              absl::StatusCode::kUnavailable)
        << name;
  }
}

TEST_F(TlsTopologyTest, AClientWithACertificateFromAnotherCaIsRefused) {
  // It trusts the servers' CA: only its own certificate is wrong.
  grpc::SslCredentialsOptions rogue;
  rogue.pem_root_certs = ReadAll(client_files_->ca_file);
  rogue.pem_private_key = ReadAll(rogue_files_->key_file);
  rogue.pem_cert_chain = ReadAll(rogue_files_->cert_file);
  for (const auto& [name, port] : Servers()) {
    EXPECT_EQ(HealthCheck(port, grpc::SslCredentials(rogue)).code(),
              absl::StatusCode::kUnavailable)
        << name;
  }
}

TEST_F(TlsTopologyTest, APlaintextClientIsRefused) {
  for (const auto& [name, port] : Servers()) {
    EXPECT_EQ(HealthCheck(port, grpc::InsecureChannelCredentials()).code(),
              absl::StatusCode::kUnavailable)
        << name;
  }
}

// The container's HEALTHCHECK (deploy/docker/health_probe.cc) with the
// service's own files in its environment, as compose runs it.
TEST_F(TlsTopologyTest, TheHealthProbeUsesTheServicesFiles) {
  const std::string target =
      absl::StrCat("grpc://127.0.0.1:", topology_->orchestrator_port());
  auto probe = [&](std::vector<std::string> env) -> absl::StatusOr<int> {
    Subprocess::Options opts;
    opts.binary = "health_probe";
    opts.args = {target};
    opts.env = std::move(env);
    opts.log_path = absl::StrCat(*dir_, "/probe.log");
    absl::StatusOr<std::unique_ptr<Subprocess>> p =
        Subprocess::Start(std::move(opts));
    if (!p.ok()) return p.status();
    return (*p)->Wait(absl::Seconds(20));
  };
  EXPECT_THAT(probe({"AGENTSTREAM_TLS_CERT=" + orchestrator_files_->cert_file,
                     "AGENTSTREAM_TLS_KEY=" + orchestrator_files_->key_file,
                     "AGENTSTREAM_TLS_CA=" + orchestrator_files_->ca_file}),
              IsOkAndHolds(0))
      << ReadFileOrEmpty(*dir_ + "/probe.log");
  EXPECT_THAT(probe({}), IsOkAndHolds(1))
      << ReadFileOrEmpty(*dir_ + "/probe.log");
}

// Half a configuration is an error at start, naming what is missing; an
// unreadable file too. Never a plaintext server.
TEST_F(TlsTopologyTest, IncompleteOrUnreadableFilesStopABinaryAtStart) {
  struct Case {
    std::string binary;
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"orchestrator",
       {"--port=0", "--tls-cert=" + orchestrator_files_->cert_file},
       "missing: --tls-key, --tls-ca"},
      {"data_analyst",
       {"--port=0", "--db=" + topology_->db_path(),
        "--tls-cert=" + orchestrator_files_->cert_file,
        "--tls-key=" + *dir_ + "/absent.key",
        "--tls-ca=" + orchestrator_files_->ca_file},
       "--tls-key: cannot read"},
      {"gateway",
       {"--port=0", "--tls-ca=" + client_files_->ca_file},
       "missing: --tls-cert, --tls-key"},
  };
  for (const Case& c : cases) {
    Subprocess::Options opts;
    opts.binary = c.binary;
    opts.args = c.args;
    opts.log_path = absl::StrCat(*dir_, "/", c.binary, "-bad-tls.log");
    absl::StatusOr<std::unique_ptr<Subprocess>> p =
        Subprocess::Start(std::move(opts));
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_THAT((*p)->Wait(absl::Seconds(20)), IsOkAndHolds(2)) << c.binary;
    EXPECT_THAT((*p)->ReadLog(), HasSubstr(c.says)) << c.binary;
  }
}

}  // namespace
}  // namespace agentstream::testing
