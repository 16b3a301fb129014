// What the orchestrator needs from a specialist, independent of transport.
//
// The run engine depends on this interface, not on the generated gRPC stub:
// production uses GrpcSpecialistClient (grpc_specialist_client.h), unit tests
// hand in in-memory fakes (tests/unit/orchestrator/fake_specialist.h), and
// fault tests can wrap a real client in a forwarding wrapper.
#ifndef AGENTSTREAM_ORCHESTRATOR_SPECIALIST_CLIENT_H_
#define AGENTSTREAM_ORCHESTRATOR_SPECIALIST_CLIENT_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agentstream/v1/specialist.pb.h"
#include "agentstream/v1/update.pb.h"

namespace agentstream::orchestrator {

// Receives the stream of one Analyze call.
//
// OnUpdate is called for each update in stream order, never concurrently for
// one call (but on any thread); the update is passed by value so that a
// transport can move its buffer in. OnDone is called exactly once, after the
// last OnUpdate, with the call's final status (CANCELLED after Cancel()).
// Implementations must not block: they run on the transport's threads.
//
// A transport that receives updates serialized (the gRPC client does) calls
// OnSerializedUpdates instead of OnUpdate, with the same ordering rules, once
// per message it received (several updates when batched); its default parses
// each and calls OnUpdate, and an observer that can use the bytes as they
// are (the Run: it keeps the specialist's encoding and only rewrites the
// envelope, and takes a whole batch under one lock) overrides it. It returns
// false when some bytes are not an Update (none of them is then taken): the
// transport ends the call with kInternal.
class AnalyzeObserver {
 public:
  virtual ~AnalyzeObserver() = default;
  virtual void OnUpdate(agentstream::v1::Update update) = 0;
  virtual bool OnSerializedUpdates(absl::Span<const std::string_view> updates) {
    std::vector<agentstream::v1::Update> parsed(updates.size());
    for (size_t i = 0; i < updates.size(); ++i) {
      if (!parsed[i].ParseFromArray(updates[i].data(),
                                    static_cast<int>(updates[i].size()))) {
        return false;
      }
    }
    for (agentstream::v1::Update& update : parsed) OnUpdate(std::move(update));
    return true;
  }
  virtual void OnDone(const absl::Status& status) = 0;
};

// A handle on one running Analyze call. Thread-safe. Cancel() is best-effort,
// idempotent and safe at any time, also after OnDone. Destroying the handle
// does NOT cancel the call.
class AnalyzeCall {
 public:
  virtual ~AnalyzeCall() = default;
  virtual void Cancel() = 0;
};

// A connection to one specialist kind (possibly many replicas behind one
// address). Thread-safe.
class SpecialistClient {
 public:
  virtual ~SpecialistClient() = default;

  // Blocks up to `timeout`. Errors are the transport's (e.g. kUnavailable,
  // kDeadlineExceeded).
  virtual absl::StatusOr<agentstream::v1::SpecialistCard> Describe(
      absl::Duration timeout) = 0;

  // Starts the call and returns at once; the observer is kept alive by the
  // call until its OnDone returns. Never returns null.
  virtual std::unique_ptr<AnalyzeCall> Analyze(
      const agentstream::v1::AnalyzeRequest& request,
      std::shared_ptr<AnalyzeObserver> observer) = 0;

  // Where the specialist lives ("dns:///risk-analyst:50051"), for display.
  virtual std::string address() const = 0;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_SPECIALIST_CLIENT_H_
