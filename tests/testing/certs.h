// Test certificates made with the `openssl` command-line tool: a CA and
// certificates it signs, for the mTLS tests (common/tls.h). EC P-256 keys,
// valid for two days. A missing `openssl` is an error (never a skip).
#ifndef AGENTSTREAM_TESTS_TESTING_CERTS_H_
#define AGENTSTREAM_TESTS_TESTING_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace agentstream::testing {

class TestCa final {
 public:
  // Makes a CA named `name` (its subject's CN) under `dir`.
  static absl::StatusOr<TestCa> Create(const std::string& dir,
                                       const std::string& name);

  const std::string& ca_file() const { return ca_file_; }

  // A certificate for `common_name`, signed by this CA, usable as a TLS
  // server and client certificate. `sans` are subjectAltName entries in
  // openssl's form ("DNS:orchestrator", "IP:127.0.0.1"); empty: none.
  // Returns its files with this CA as ca_file.
  absl::StatusOr<TlsFiles> Issue(const std::string& common_name,
                                 const std::vector<std::string>& sans) const;

  // The usual loopback test identity: CN and first DNS SAN `name`, plus
  // DNS:localhost and IP:127.0.0.1.
  absl::StatusOr<TlsFiles> IssueLoopback(const std::string& name) const;

 private:
  std::string dir_;
  std::string ca_file_;
  std::string ca_key_;
};

// Runs `/bin/sh -c command`; its output on failure.
absl::Status RunShell(const std::string& command);

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_CERTS_H_
