// health_probe: the HEALTHCHECK of the agentstream image. Asks a process in
// the same container whether it is healthy and answers with its exit status
// (0 healthy, 1 not, 2 bad usage), as Docker's HEALTHCHECK expects.
//
// Targets:
//   grpc://HOST:PORT          grpc.health.v1.Health/Check for service ""
//                             (SERVING is healthy).
//   http://HOST:PORT/PATH     GET; a 2xx answer is healthy.
// gRPC targets are asked over mTLS when --tls-cert, --tls-key and --tls-ca
// (AGENTSTREAM_TLS_*, the service's own) are set.
// The target comes from the argument, else --target /
// AGENTSTREAM_HEALTH_TARGET, else the file the image's entry script writes for
// the process it starts
// (/tmp/agentstream-health-target), so one image serves every kind.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/grpc_health.h"
#include "common/tls.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "httplib.h"

namespace {

constexpr char kTargetFile[] = "/tmp/agentstream-health-target";

// grpc.health.v1.Health/Check for service "" (common/grpc_health.h):
// SERVING is healthy.
bool CheckGrpc(const std::string& address, const agentstream::TlsFiles& tls,
               int64_t timeout_ms, std::string* why) {
  const absl::Status status = agentstream::GrpcHealthCheck(
      grpc::CreateChannel(address, agentstream::MakeChannelCredentials(tls)),
      absl::Milliseconds(timeout_ms));
  if (!status.ok()) *why = status.ToString();
  return status.ok();
}

bool CheckHttp(const std::string& host_port, const std::string& path,
               int64_t timeout_ms, std::string* why) {
  const size_t colon = host_port.rfind(':');
  int port = 80;
  std::string host = host_port;
  if (colon != std::string::npos) {
    host = host_port.substr(0, colon);
    if (!absl::SimpleAtoi(host_port.substr(colon + 1), &port)) {
      *why = "bad port in " + host_port;
      return false;
    }
  }
  httplib::Client client(host, port);
  const time_t sec = static_cast<time_t>(timeout_ms / 1000);
  const time_t usec = static_cast<time_t>((timeout_ms % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  httplib::Result result = client.Get(path.c_str());
  if (!result) {
    *why = "HTTP request failed: " + httplib::to_string(result.error());
    return false;
  }
  if (result->status < 200 || result->status >= 300) {
    *why = "HTTP status " + std::to_string(result->status);
    return false;
  }
  return true;
}

std::string ReadTargetFile() {
  std::ifstream in(kTargetFile);
  std::string target;
  std::getline(in, target);
  return std::string(absl::StripAsciiWhitespace(target));
}

}  // namespace

int main(int argc, char** argv) {
  std::string target;
  int64_t timeout_ms = 2000;
  agentstream::FlagSet flags(
      "health_probe",
      "Asks one agentstream process whether it is healthy: exit 0 when it "
      "is, 1 when not (Docker HEALTHCHECK). Usage: health_probe [TARGET], "
      "TARGET grpc://HOST:PORT (grpc.health.v1 Check) or "
      "http://HOST:PORT/PATH (2xx). Without one: --target, then the file "
      "/tmp/agentstream-health-target written by the image's entry script.");
  flags.String("target", &target, "What to ask (see above).",
               "AGENTSTREAM_HEALTH_TARGET");
  flags.Int("timeout-ms", &timeout_ms, "How long to wait for the answer.");
  // The process's own TLS files (the same environment in its container):
  // a gRPC service with mTLS on answers only a client with a certificate.
  agentstream::TlsFiles tls;
  agentstream::RegisterTlsFlags(flags, &tls);
  agentstream::ParseFlagsOrExit(flags, argc, argv);
  agentstream::ValidateTlsOrExit(tls);
  if (!flags.positional().empty()) target = flags.positional().front();
  if (target.empty()) target = ReadTargetFile();
  if (target.empty()) {
    std::cerr << "health_probe: no target (argument, --target, "
                 "AGENTSTREAM_HEALTH_TARGET or "
              << kTargetFile << ")\n";
    return 2;
  }

  std::string why;
  bool healthy = false;
  absl::string_view rest(target);
  if (absl::ConsumePrefix(&rest, "grpc://")) {
    healthy = CheckGrpc(std::string(rest), tls, timeout_ms, &why);
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    const size_t slash = rest.find('/');
    const std::string host_port(rest.substr(0, slash));
    const std::string path = slash == absl::string_view::npos
                                 ? std::string("/")
                                 : std::string(rest.substr(slash));
    healthy = CheckHttp(host_port, path, timeout_ms, &why);
  } else {
    std::cerr << "health_probe: target must start with grpc:// or http://: "
              << target << "\n";
    return 2;
  }
  if (!healthy) {
    std::cerr << "health_probe: " << target << " unhealthy: " << why << "\n";
    return 1;
  }
  std::cout << "health_probe: " << target << " healthy\n";
  return 0;
}
