// Raw loopback sockets for HTTP tests: byte-exact requests and a
// client that can vanish at a chosen moment. Every read has a deadline.
#ifndef AGENTSTREAM_TESTS_TESTING_LOOPBACK_H_
#define AGENTSTREAM_TESTS_TESTING_LOOPBACK_H_

#include <string>

#include "absl/time/time.h"

namespace agentstream::testing {

// A connected socket to 127.0.0.1:port, or -1.
int ConnectLoopback(int port);
// The same from source address `source_ip` (any of 127.0.0.0/8; "": the
// system's choice), as another client on this machine would be.
int ConnectLoopbackFrom(int port, const std::string& source_ip);
bool SendAll(int fd, const std::string& bytes);
// Sends "GET `target` HTTP/1.1" with "Host: x" and no body.
bool SendGet(int fd, const std::string& target);
// Reads until `needle` has been received (returns everything read, which
// ends with it), the peer closes, or `timeout` passes.
std::string ReadUntil(int fd, const std::string& needle,
                      absl::Duration timeout);
// Sends `bytes` while reading what comes back, as a client that streams a
// huge request would: sending stops once a response head has arrived (the
// server refused early) or the peer stops taking bytes. Then reads until
// the peer closes or `timeout` passes; returns everything read.
std::string SendAndRead(int fd, const std::string& bytes,
                        absl::Duration timeout);
// Reads until the peer closes (*closed = true) or `timeout` passes.
std::string ReadUntilClosed(int fd, absl::Duration timeout, bool* closed);

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_LOOPBACK_H_
