// SpecialistClient over gRPC: Describe is a unary call, Analyze a callback-
// API server stream (ClientReadReactor), so a pending call holds no thread.
//
// Analyze calls the specialist's AnalyzeBatched first (several updates per
// message, docs/CONTRACT.md, "Batched streams"); when that answers
// UNIMPLEMENTED before any message (a specialist that only implements
// Analyze: a third-party or older one), the same request goes to Analyze at
// once, and every later call to this endpoint goes straight to Analyze. Both
// streams are read raw: the updates reach the observer serialized
// (AnalyzeObserver::OnSerializedUpdates), a message's updates at once.
//
// With GrpcSpecialistClientOptions::sessions, Analyze opens each analysis
// as a stream of Specialist.AnalyzeSession (specialist_session.h) and uses
// the above only when the specialist answers that with UNIMPLEMENTED.
//
// Addresses: "host:port" or any gRPC target ("dns:///name:port"); the
// channel's service config selects round_robin, so a DNS name with several
// replicas spreads calls over all of them. Thread-safe.
#ifndef AGENTSTREAM_ORCHESTRATOR_GRPC_SPECIALIST_CLIENT_H_
#define AGENTSTREAM_ORCHESTRATOR_GRPC_SPECIALIST_CLIENT_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <string>

#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/clock.h"
#include "common/tls.h"
#include "orchestrator/specialist_client.h"

namespace agentstream::orchestrator {

class SpecialistSessions;

struct GrpcSpecialistClientOptions {
  // Analyses as streams of AnalyzeSession calls (docs/CONTRACT.md,
  // "Specialist sessions"); a specialist without AnalyzeSession gets a
  // call per analysis. Off by default: it halves the memory of an open
  // stream but lengthens the tail of a 10,000-client burst past its 5 s
  // (docs/BENCHMARKS.md, "Specialist sessions").
  bool sessions = false;
  // Decides the sessions' rotation. Never null.
  Clock* clock = Clock::Real();
  // mTLS to the specialists (common/tls.h); none of the files: plaintext.
  TlsFiles tls;
};

class GrpcSpecialistClient final : public SpecialistClient {
 public:
  explicit GrpcSpecialistClient(std::string address,
                                GrpcSpecialistClientOptions options = {});
  ~GrpcSpecialistClient() override;

  // SpecialistClient methods
  absl::StatusOr<agentstream::v1::SpecialistCard> Describe(
      absl::Duration timeout) override;
  std::unique_ptr<AnalyzeCall> Analyze(
      const agentstream::v1::AnalyzeRequest& request,
      std::shared_ptr<AnalyzeObserver> observer) override;
  std::string address() const override { return address_; }

  // Whether the endpoint answered AnalyzeBatched with UNIMPLEMENTED, so that
  // calls now go to Analyze (tests).
  bool uses_analyze() const;
  // Whether analyses go to AnalyzeSession: it is on, and the endpoint has
  // not answered it with UNIMPLEMENTED (tests).
  bool uses_sessions() const;
  // AnalyzeSession calls started so far (tests).
  uint64_t session_calls_started() const;

  // What the calls of one endpoint share (the methods and what was learnt
  // about the endpoint).
  struct Endpoint;

 private:
  const std::string address_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<agentstream::v1::Specialist::Stub> stub_;
  const std::shared_ptr<Endpoint> endpoint_;
  // Null unless GrpcSpecialistClientOptions::sessions.
  std::unique_ptr<SpecialistSessions> sessions_;
};

// Creates the channel used above: round_robin, keepalive, unlimited receive
// size, credentials from `tls`. Exposed for tests.
std::shared_ptr<grpc::Channel> CreateSpecialistChannel(
    const std::string& address, const TlsFiles& tls = {});

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_GRPC_SPECIALIST_CLIENT_H_
