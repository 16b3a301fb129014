// Service-to-service TLS with client certificates (mTLS) for every gRPC
// server and channel of agentstream: gateway -> orchestrator -> specialists
// (docs/SECURITY.md, "Service-to-service TLS").
//
// One place for the decision: every binary registers the same three flags
// (RegisterTlsFlags), validates them at start (TlsFiles::Validate) and makes
// its credentials here. Without the flags everything stays plaintext (the
// loopback default of ./run.sh); with them:
//  - servers require a client certificate signed by the CA and refuse the
//    handshake otherwise (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_
//    AND_VERIFY);
//  - channels verify the server's certificate against the same CA and its
//    name against the target's host (a DNS or IP subject alternative name),
//    and present our certificate.
//
// Rotation: the files are re-read every TlsFiles::refresh_interval
// (kTlsRefreshInterval; gRPC's FileWatcherCertificateProvider), so replacing
// them (atomically: the key and certificate must match whenever they are read)
// takes effect without a restart for new connections; connections already open
// keep the certificate they were made with.
#ifndef AGENTSTREAM_COMMON_TLS_H_
#define AGENTSTREAM_COMMON_TLS_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/flags.h"

namespace agentstream {

// How often the certificate files are read again (rotation, above).
inline constexpr absl::Duration kTlsRefreshInterval = absl::Seconds(60);

struct TlsFiles {
  std::string cert_file;  // PEM: this service's certificate (chain).
  std::string key_file;   // PEM: its private key.
  std::string ca_file;    // PEM: the CA that signs every peer's certificate.
  // How often the files are read again (rotation); whole seconds, at least
  // one. Not a flag: tests shorten it.
  absl::Duration refresh_interval = kTlsRefreshInterval;

  // Whether TLS is asked for: any of the three is set. A partial set is
  // enabled and fails Validate(), so it never silently means plaintext.
  bool enabled() const;
  // OK when none is set, or all three are set and each names a readable file
  // holding the PEM it should (a certificate, a private key). Otherwise
  // kInvalidArgument naming the flags that are missing or the file that
  // cannot be read.
  absl::Status Validate() const;
};

// Registers --tls-cert, --tls-key and --tls-ca (environment
// AGENTSTREAM_TLS_CERT, AGENTSTREAM_TLS_KEY, AGENTSTREAM_TLS_CA) on `flags`.
void RegisterTlsFlags(FlagSet& flags, TlsFiles* tls);

// For mains, after ParseFlagsOrExit: logs Validate()'s error and exits 2.
void ValidateTlsOrExit(const TlsFiles& tls);

// Insecure credentials when !tls.enabled(); else TLS requiring and verifying
// a client certificate signed by the CA. kInvalidArgument when !Validate().
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& tls);

// Insecure credentials when !tls.enabled(); else TLS with the CA as the only
// roots, the target's host checked against the server's certificate, and our
// certificate presented. `tls` must have passed Validate(); if it did not,
// the credentials returned fail every handshake (logged), never plaintext.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const TlsFiles& tls);

// The verified client certificate's identity: its first DNS subject
// alternative name, else its subject's common name. Empty for a plaintext
// connection or one without a certificate. "Verified" holds for servers made
// by MakeServerCredentials, which refuse every connection whose certificate
// the CA did not sign.
std::string PeerIdentity(const grpc::AuthContext& auth);
std::string PeerIdentity(const grpc::ServerContextBase& context);

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_TLS_H_
