// What a specialist author implements: a card and an Analyze() that streams
// its work through an UpdateSink and honours a CancelToken. The SDK
// (specialist_server.h) hosts it as a gRPC `agentstream.v1.Specialist`
// service.
//
//   class Echo final : public Specialist {
//    public:
//     SpecialistCard Card() const override { ... }
//     absl::Status Analyze(const AnalyzeRequest& req, UpdateSink& sink,
//                          const CancelToken& cancel) override {
//       sink.Progress(50, "Thinking");
//       if (cancel.cancelled()) return absl::CancelledError();
//       sink.PartialResult({{"echo", req.task()}});
//       return absl::OkStatus();
//     }
//   };
#ifndef AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_H_
#define AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_H_

#include "absl/status/status.h"
#include "agentstream/v1/specialist.pb.h"
#include "specialists/sdk/cancel_token.h"
#include "specialists/sdk/update_sink.h"

namespace agentstream::specialists {

using agentstream::v1::AnalyzeRequest;
using agentstream::v1::SpecialistCard;

class Specialist {
 public:
  virtual ~Specialist() = default;

  // Constant for the life of the process; `instance` is filled in by the SDK.
  virtual SpecialistCard Card() const = 0;

  // Does the work for one request, streaming it through `sink`. Called
  // concurrently on the SDK's worker threads (one per running request, at
  // most --worker-threads): must be thread-safe. The sink may block while
  // the client is behind (docs/SPECIALISTS.md, "Streams and back-pressure").
  // A specialist that mostly waits implements AsyncSpecialist instead
  // (async_specialist.h), and holds no thread while it waits. Must return soon
  // (well under 100 ms) after `cancel` trips; the returned status is then
  // ignored and the call counts as cancelled. A non-OK status ends the RPC with
  // that status (outcome "failed"). The request has been validated (non-empty,
  // at most 16 KiB).
  virtual absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                               const CancelToken& cancel) = 0;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_SPECIALIST_H_
