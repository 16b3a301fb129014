// common/tls.h: flag validation, and through real gRPC connections on
// loopback: who is let in, and the identity a server sees (PeerIdentity).
#include "common/tls.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/certs.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace agentstream {
namespace {

using ::agentstream::testing::TestCa;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Answers every call with the caller's PeerIdentity() as the response bytes.
class IdentityService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* ctx) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(std::string identity) {
        grpc::Slice slice(identity);
        response_ = grpc::ByteBuffer(&slice, 1);
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::OK);
          return;
        }
        StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      grpc::ByteBuffer request_;
      grpc::ByteBuffer response_;
    };
    return new Reactor(PeerIdentity(*ctx));
  }
};

class TlsServer {
 public:
  explicit TlsServer(const TlsFiles& tls) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MakeServerCredentials(tls);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    if (!credentials.ok()) return;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~TlsServer() {
    if (server_ != nullptr) server_->Shutdown();
  }
  int port() const { return port_; }

 private:
  IdentityService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// One unary call over `credentials` to 127.0.0.1:port (or `host`): the
// server's answer (the identity it saw), or the call's status.
absl::StatusOr<std::string> Call(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& host = "127.0.0.1") {
  auto channel =
      grpc::CreateChannel(absl::StrCat(host, ":", port), credentials);
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, "/test.Identity/Get", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();  // The call's deadline bounds it.
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("dump");
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = testing::MakeTempDir("tls-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    absl::StatusOr<TestCa> ca = TestCa::Create(dir_, "test");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    absl::StatusOr<TestCa> rogue = TestCa::Create(dir_, "rogue");
    ASSERT_TRUE(rogue.ok()) << rogue.status();
    rogue_ = *std::move(rogue);
    absl::StatusOr<TlsFiles> server = ca_.IssueLoopback("orchestrator");
    ASSERT_TRUE(server.ok()) << server.status();
    server_files_ = *server;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      (void)testing::RunShell(absl::StrCat("rm -rf '", dir_, "'"));
    }
  }

  TlsFiles Issue(const std::string& cn, const std::vector<std::string>& sans,
                 const TestCa* ca = nullptr) {
    absl::StatusOr<TlsFiles> f = (ca ? *ca : ca_).Issue(cn, sans);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *f : TlsFiles();
  }

  std::string dir_;
  TestCa ca_;
  TestCa rogue_;
  TlsFiles server_files_;
};

TEST_F(TlsTest, NoFilesIsPlaintext) {
  const TlsFiles none;
  EXPECT_FALSE(none.enabled());
  EXPECT_TRUE(none.Validate().ok());
  TlsServer server(none);
  // A plaintext connection carries no identity.
  EXPECT_THAT(Call(server.port(), MakeChannelCredentials(none)),
              testing::IsOkAndHolds(std::string()));
}

TEST_F(TlsTest, PartialFilesNameWhatIsMissing) {
  TlsFiles cert_only;
  cert_only.cert_file = server_files_.cert_file;
  EXPECT_TRUE(cert_only.enabled());
  const absl::Status s = cert_only.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing: --tls-key, --tls-ca"));
  EXPECT_EQ(MakeServerCredentials(cert_only).status().code(),
            absl::StatusCode::kInvalidArgument);

  TlsFiles no_ca = server_files_;
  no_ca.ca_file.clear();
  EXPECT_THAT(no_ca.Validate().message(), HasSubstr("missing: --tls-ca"));
}

TEST_F(TlsTest, UnreadableOrWrongFilesAreErrors) {
  TlsFiles missing = server_files_;
  missing.key_file = dir_ + "/no-such.key";
  absl::Status s = missing.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--tls-key: cannot read"));
  EXPECT_THAT(s.message(), HasSubstr("no-such.key"));

  TlsFiles directory = server_files_;
  directory.ca_file = dir_;
  EXPECT_THAT(directory.Validate().message(), HasSubstr("--tls-ca"));

  TlsFiles swapped = server_files_;
  std::swap(swapped.cert_file, swapped.key_file);
  s = swapped.Validate();
  EXPECT_THAT(s.message(), HasSubstr("--tls-cert"));
  EXPECT_THAT(s.message(), HasSubstr("no PEM certificate"));

  EXPECT_TRUE(server_files_.Validate().ok());
}

TEST_F(TlsTest, InvalidChannelFilesNeverFallBackToPlaintext) {
  TlsServer plaintext{TlsFiles()};
  TlsFiles cert_only;
  cert_only.cert_file = server_files_.cert_file;
  absl::StatusOr<std::string> got =
      Call(plaintext.port(), MakeChannelCredentials(cert_only));
  EXPECT_FALSE(got.ok());
}

TEST_F(TlsTest, PeerIdentityIsTheFirstDnsName) {
  TlsServer server(server_files_);
  const TlsFiles client =
      Issue("gateway-cn", {"IP:10.0.0.1", "DNS:gateway", "DNS:gateway.other"});
  EXPECT_THAT(Call(server.port(), MakeChannelCredentials(client)),
              testing::IsOkAndHolds(std::string("gateway")));
}

TEST_F(TlsTest, PeerIdentityFallsBackToTheCommonName) {
  TlsServer server(server_files_);
  EXPECT_THAT(Call(server.port(), MakeChannelCredentials(Issue("cn-only", {}))),
              testing::IsOkAndHolds(std::string("cn-only")));
  // An IP address is not a name: the CN it is.
  EXPECT_THAT(Call(server.port(),
                   MakeChannelCredentials(Issue("ip-only", {"IP:127.0.0.1"}))),
              testing::IsOkAndHolds(std::string("ip-only")));
}

TEST_F(TlsTest, ServerRefusesClientsWithoutAValidCertificate) {
  TlsServer server(server_files_);
  // TLS that trusts the server but presents no certificate.
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = ReadAll(ca_.ca_file());
  EXPECT_EQ(Call(server.port(), grpc::SslCredentials(no_cert)).status().code(),
            absl::StatusCode::kUnavailable);
  // A certificate the CA did not sign (its own CA as roots, and the test CA
  // too, so that only the client certificate is wrong).
  TlsFiles rogue = Issue("gateway", {"DNS:gateway"}, &rogue_);
  grpc::SslCredentialsOptions rogue_options;
  rogue_options.pem_root_certs = ReadAll(ca_.ca_file());
  rogue_options.pem_private_key = ReadAll(rogue.key_file);
  rogue_options.pem_cert_chain = ReadAll(rogue.cert_file);
  EXPECT_EQ(
      Call(server.port(), grpc::SslCredentials(rogue_options)).status().code(),
      absl::StatusCode::kUnavailable);
  // Plaintext.
  EXPECT_EQ(
      Call(server.port(), grpc::InsecureChannelCredentials()).status().code(),
      absl::StatusCode::kUnavailable);
  // And a valid one is let in.
  EXPECT_TRUE(
      Call(server.port(), MakeChannelCredentials(Issue("ok", {}))).ok());
}

TEST_F(TlsTest, ClientChecksTheServersCaAndName) {
  const TlsFiles client = Issue("gateway", {"DNS:gateway"});
  // Signed by another CA.
  absl::StatusOr<TlsFiles> rogue_server = rogue_.IssueLoopback("orchestrator");
  ASSERT_TRUE(rogue_server.ok());
  {
    TlsFiles files = *rogue_server;
    files.ca_file = ca_.ca_file();  // It accepts our client.
    TlsServer server(files);
    EXPECT_EQ(
        Call(server.port(), MakeChannelCredentials(client)).status().code(),
        absl::StatusCode::kUnavailable);
  }
  // Signed by our CA, but for another name than the target's host.
  TlsServer server(Issue("specialist", {"DNS:specialist"}));
  EXPECT_EQ(Call(server.port(), MakeChannelCredentials(client)).status().code(),
            absl::StatusCode::kUnavailable);
  TlsServer named(server_files_);
  EXPECT_TRUE(Call(named.port(), MakeChannelCredentials(client)).ok());
  EXPECT_TRUE(
      Call(named.port(), MakeChannelCredentials(client), "localhost").ok());
}

// Rotation without a restart: the server's files are replaced (a symlink
// swapped, as Kubernetes does with a mounted Secret) by a set from another
// CA; once they are read again, clients of the new CA are let in and those
// of the old one refused.
TEST_F(TlsTest, ReplacedFilesAreReadAgain) {
  const std::string old_dir = dir_ + "/old";
  const std::string new_dir = dir_ + "/new";
  const std::string current = dir_ + "/current";
  ASSERT_TRUE(
      testing::RunShell(absl::StrCat("mkdir '", old_dir, "' '", new_dir, "'"))
          .ok());
  auto place = [](const TlsFiles& f, const std::string& dir) {
    return testing::RunShell(absl::StrCat(
        "cp '", f.cert_file, "' '", dir, "/tls.crt' && cp '", f.key_file, "' '",
        dir, "/tls.key' && cp '", f.ca_file, "' '", dir, "/ca.crt'"));
  };
  ASSERT_TRUE(place(server_files_, old_dir).ok());
  absl::StatusOr<TlsFiles> rogue_server = rogue_.IssueLoopback("orchestrator");
  ASSERT_TRUE(rogue_server.ok()) << rogue_server.status();
  ASSERT_TRUE(place(*rogue_server, new_dir).ok());
  ASSERT_TRUE(
      testing::RunShell(absl::StrCat("ln -s old '", current, "'")).ok());

  TlsFiles files;
  files.cert_file = current + "/tls.crt";
  files.key_file = current + "/tls.key";
  files.ca_file = current + "/ca.crt";
  files.refresh_interval = absl::Seconds(1);
  TlsServer server(files);
  const TlsFiles old_client = Issue("gateway", {"DNS:gateway"});
  const TlsFiles new_client = Issue("gateway", {"DNS:gateway"}, &rogue_);
  ASSERT_TRUE(Call(server.port(), MakeChannelCredentials(old_client)).ok());
  ASSERT_FALSE(Call(server.port(), MakeChannelCredentials(new_client)).ok());

  ASSERT_TRUE(testing::RunShell(absl::StrCat("ln -s new '", current,
                                             ".next' && mv -T '", current,
                                             ".next' '", current, "'"))
                  .ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  absl::StatusOr<std::string> got;
  do {
    absl::SleepFor(absl::Milliseconds(200));
    got = Call(server.port(), MakeChannelCredentials(new_client));
  } while (!got.ok() && absl::Now() < deadline);
  EXPECT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(
      Call(server.port(), MakeChannelCredentials(old_client)).status().code(),
      absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace agentstream
