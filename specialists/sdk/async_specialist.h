// The asynchronous form of a specialist, for analyses that mostly wait
// (timers, pacing): an analysis is an object that the SDK steps, not a
// thread. Between steps it holds no thread: the SDK keeps one timer thread
// for the whole process (timer_thread.h) and runs steps on it, or on the
// gRPC thread that saw the reader take updates.
//
//   class Ticker final : public AsyncSpecialist {
//    public:
//     SpecialistCard Card() const override { ... }
//     absl::StatusOr<std::unique_ptr<AsyncAnalysis>> Start(
//         const AnalyzeRequest& request) override {
//       return std::make_unique<Ticks>();
//     }
//   };
//   class Ticks final : public AsyncAnalysis {
//     NextStep Step(UpdateSink& sink, const CancelToken& cancel) override {
//       if (++n_ > 10) return NextStep::Done(absl::OkStatus());
//       sink.Progress(n_ * 10, "tick");
//       return NextStep::At(absl::Now() + absl::Seconds(1));
//     }
//     int n_ = 0;
//   };
//
// Contract of Step(): it must not block (it runs on shared threads). It
// emits through `sink`, whose methods never block in this form: an update is
// queued. It may keep emitting while sink.HasRoom(); once that is false it
// returns NextStep::Continue(), and the SDK steps it again when the reader
// has taken some (that is how a fast analysis is held back by a slow
// reader). Steps of one analysis never run concurrently. When the analysis is
// cancelled (client cancel, broken stream, shutdown) while it waits, the SDK
// ends it without another step; `cancel` is also tripped during a step.
// A Done status is handled as Specialist::Analyze's return value is.
//
// AsyncSpecialist also implements the blocking Specialist::Analyze by running
// the steps on the calling thread (waiting on the CancelToken between them),
// so tests can drive it with any UpdateSink.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_ASYNC_SPECIALIST_H_
#define AGENTSTREAM_SPECIALISTS_SDK_ASYNC_SPECIALIST_H_

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "specialists/sdk/specialist.h"

namespace agentstream::specialists {

// What an asynchronous analysis asks for after a step.
class NextStep final {
 public:
  enum class Kind {
    kContinue,        // Step again as soon as the stream has room.
    kAt,              // Step again at when() (absl::Now()'s time base).
    kUntilCancelled,  // No more steps: wait until cancelled (a stall).
    kDone,            // Finished with status().
  };
  static NextStep Continue() { return NextStep(Kind::kContinue); }
  static NextStep At(absl::Time when) {
    NextStep next(Kind::kAt);
    next.when_ = when;
    return next;
  }
  static NextStep UntilCancelled() { return NextStep(Kind::kUntilCancelled); }
  static NextStep Done(absl::Status status) {
    NextStep next(Kind::kDone);
    next.status_ = std::move(status);
    return next;
  }

  Kind kind() const { return kind_; }
  absl::Time when() const { return when_; }
  const absl::Status& status() const { return status_; }

 private:
  explicit NextStep(Kind kind) : kind_(kind) {}
  Kind kind_;
  absl::Time when_ = absl::InfinitePast();
  absl::Status status_;
};

class AsyncAnalysis {
 public:
  virtual ~AsyncAnalysis() = default;
  // See the contract above.
  virtual NextStep Step(UpdateSink& sink, const CancelToken& cancel) = 0;
};

class AsyncSpecialist : public Specialist {
 public:
  // Begins one analysis of a validated request (see Specialist::Analyze);
  // an error status ends the call with it, nothing sent. Must not block.
  // `request` is valid during Start() only: the analysis copies what it
  // needs (the SDK frees the request's contents once the analysis has
  // started, so that a run that lasts does not hold them).
  virtual absl::StatusOr<std::unique_ptr<AsyncAnalysis>> Start(
      const AnalyzeRequest& request) = 0;

  // Specialist method: Start(), then the steps on this thread.
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) final;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_ASYNC_SPECIALIST_H_
