#include "common/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace agentstream {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

// Reads `path` whole; kInvalidArgument naming `flag` when it cannot.
absl::StatusOr<std::string> ReadPem(const std::string& flag,
                                    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path));
  }
  return text.str();
}

absl::Status CheckPem(const std::string& flag, const std::string& path,
                      const std::string& marker, const std::string& what) {
  absl::StatusOr<std::string> text = ReadPem(flag, path);
  if (!text.ok()) return text.status();
  if (!absl::StrContains(*text, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM ", what));
  }
  return absl::OkStatus();
}

// One provider (and its refresh thread) per set of files in the process:
// the orchestrator's server and all its specialist channels share one.
std::shared_ptr<FileWatcherCertificateProvider> ProviderFor(
    const TlsFiles& tls) {
  static absl::Mutex mu(absl::kConstInit);
  using Key = std::tuple<std::string, std::string, std::string, int64_t>;
  static auto* providers ABSL_GUARDED_BY(mu) =
      new std::map<Key, std::shared_ptr<FileWatcherCertificateProvider>>();
  const int64_t refresh_s =
      std::max<int64_t>(1, absl::ToInt64Seconds(tls.refresh_interval));
  absl::MutexLock lock(&mu);
  std::shared_ptr<FileWatcherCertificateProvider>& p =
      (*providers)[Key(tls.cert_file, tls.key_file, tls.ca_file, refresh_s)];
  if (p == nullptr) {
    p = std::make_shared<FileWatcherCertificateProvider>(
        tls.key_file, tls.cert_file, tls.ca_file,
        static_cast<unsigned int>(refresh_s));
  }
  return p;
}

}  // namespace

bool TlsFiles::enabled() const {
  return !cert_file.empty() || !key_file.empty() || !ca_file.empty();
}

absl::Status TlsFiles::Validate() const {
  if (!enabled()) return absl::OkStatus();
  std::vector<std::string> missing;
  if (cert_file.empty()) missing.push_back("--tls-cert");
  if (key_file.empty()) missing.push_back("--tls-key");
  if (ca_file.empty()) missing.push_back("--tls-ca");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS needs --tls-cert, --tls-key and --tls-ca together; missing: ",
        absl::StrJoin(missing, ", ")));
  }
  if (absl::Status s = CheckPem("--tls-cert", cert_file,
                                "-----BEGIN CERTIFICATE-----", "certificate");
      !s.ok()) {
    return s;
  }
  // PKCS#8 ("BEGIN PRIVATE KEY") and the older RSA/EC forms.
  if (absl::Status s =
          CheckPem("--tls-key", key_file, "PRIVATE KEY-----", "private key");
      !s.ok()) {
    return s;
  }
  return CheckPem("--tls-ca", ca_file, "-----BEGIN CERTIFICATE-----",
                  "certificate");
}

void RegisterTlsFlags(FlagSet& flags, TlsFiles* tls) {
  flags.String("tls-cert", &tls->cert_file,
               "PEM certificate of this service for gRPC TLS with client "
               "certificates (mTLS); with --tls-key and --tls-ca, or none of "
               "the three for plaintext (docs/SECURITY.md).",
               "AGENTSTREAM_TLS_CERT");
  flags.String("tls-key", &tls->key_file, "PEM private key of --tls-cert.",
               "AGENTSTREAM_TLS_KEY");
  flags.String("tls-ca", &tls->ca_file,
               "PEM CA certificate every gRPC peer's certificate must be "
               "signed by (clients to this service, and the servers it "
               "calls).",
               "AGENTSTREAM_TLS_CA");
}

void ValidateTlsOrExit(const TlsFiles& tls) {
  if (absl::Status s = tls.Validate(); !s.ok()) {
    std::cerr << s.message() << "\n";
    std::exit(2);
  }
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (absl::Status s = tls.Validate(); !s.ok()) return s;
  grpc::experimental::TlsServerCredentialsOptions options(ProviderFor(tls));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError("gRPC refused the TLS server options");
  }
  return credentials;
}

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  if (absl::Status s = tls.Validate(); !s.ok()) {
    // Null credentials make gRPC create a lame channel: every call fails
    // with "Invalid credentials", and nothing goes out in plaintext.
    AS_LOG(ERROR) << "gRPC channel without credentials: " << s.message();
    return nullptr;
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(ProviderFor(tls));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // The server's certificate is verified against the CA and, without a
  // verifier of our own, its name against the target's host (gRPC's
  // default HostNameCertificateVerifier).
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

std::string PeerIdentity(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return "";
  const std::vector<grpc::string_ref> type =
      auth.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  // "tls" from our credentials (TlsServerCredentials), "ssl" from gRPC's
  // older SslServerCredentials: both only with a verified certificate here.
  if (type.empty() || (type.front() != GRPC_TLS_TRANSPORT_SECURITY_TYPE &&
                       type.front() != GRPC_SSL_TRANSPORT_SECURITY_TYPE)) {
    return "";
  }
  for (const char* property :
       {GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    const std::vector<grpc::string_ref> values =
        auth.FindPropertyValues(property);
    if (!values.empty()) {
      return std::string(values.front().data(), values.front().size());
    }
  }
  return "";
}

std::string PeerIdentity(const grpc::ServerContextBase& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return auth == nullptr ? "" : PeerIdentity(*auth);
}

}  // namespace agentstream
