#include "specialists/sdk/async_specialist.h"

#include "absl/time/clock.h"

namespace agentstream::specialists {

absl::Status AsyncSpecialist::Analyze(const AnalyzeRequest& request,
                                      UpdateSink& sink,
                                      const CancelToken& cancel) {
  absl::StatusOr<std::unique_ptr<AsyncAnalysis>> analysis = Start(request);
  if (!analysis.ok()) return analysis.status();
  while (!cancel.cancelled()) {
    const NextStep next = (*analysis)->Step(sink, cancel);
    switch (next.kind()) {
      case NextStep::Kind::kDone:
        return next.status();
      case NextStep::Kind::kContinue:
        break;
      case NextStep::Kind::kAt:
        if (cancel.WaitFor(next.when() - absl::Now())) {
          return absl::CancelledError("cancelled");
        }
        break;
      case NextStep::Kind::kUntilCancelled:
        while (!cancel.WaitFor(absl::Hours(1))) {
        }
        return absl::CancelledError("cancelled");
    }
  }
  return absl::CancelledError("cancelled");
}

}  // namespace agentstream::specialists
