// A DNS server on loopback for tests of what a name's answer changing does
// (replicas added behind one name, as Docker's and Kubernetes' DNS answer):
// UDP on 127.0.0.1, an ephemeral port, one thread, stopped in the
// destructor. gRPC's c-ares resolver asks it when the target names it as
// the authority: `dns://127.0.0.1:PORT/NAME:GRPC_PORT`.
//
// It answers A queries for the names it was given with their IPv4
// addresses (TTL 0), an empty answer (NOERROR) for any other type of those
// names, and NXDOMAIN for any other name. Names compare case-insensitively.
//
// Thread-safe.
#ifndef AGENTSTREAM_TESTS_TESTING_DNS_SERVER_H_
#define AGENTSTREAM_TESTS_TESTING_DNS_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::testing {

class DnsServer final {
 public:
  static absl::StatusOr<std::unique_ptr<DnsServer>> Start();
  ~DnsServer();

  int port() const { return port_; }
  // What A queries for `name` answer from now on (dotted IPv4 addresses;
  // empty: no address, NOERROR).
  void Set(const std::string& name, std::vector<std::string> ipv4);
  // A queries for `name` answered so far.
  int64_t Queries(const std::string& name) const;

 private:
  DnsServer() = default;
  void Loop();
  // The answer to `query` (empty: nothing to send, the query is malformed).
  std::string Answer(const std::string& query);

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::vector<uint32_t>> names_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> queries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_DNS_SERVER_H_
