// Synthetic: a load generator for tests and benchmarks. Per request it emits
// `count` partial results of `size` payload bytes at `rate` per second (0:
// as fast as the stream takes them). Progress updates: by default one
// before a partial result whenever the whole percentage (i*100/count)
// changes; with `progress_every` k >= 1, one before every k-th partial
// result instead (before results 1, k+1, 2k+1, ...).
//
// Fault injection (for resume, deadline and failure tests):
//  - `start_delay_ms`: waits that long (cancellably) before the first update.
//  - `stall_after` n: once n partial results are out, emits nothing more and
//    waits until cancelled (n == count: all results, then never finishes).
//  - `fail_after` n: once n partial results are out, fails with INTERNAL
//    (checked before stall_after when both are n).
//
// Defaults come from flags; AnalyzeRequest.options {"count", "size", "rate",
// "progress_every", "start_delay_ms", "stall_after", "fail_after"} override
// them per request (numbers, or strings holding numbers). Planned only when
// named (explicit_only).
//
// An AsyncSpecialist (specialists/sdk/async_specialist.h): served by the
// SDK, a waiting run (pacing, start delay, stall) holds no thread, only a
// timer, and ends at once when cancelled; unpaced, it emits while the
// stream's queue has room and goes on when the reader has taken some.
// Analyze() (blocking, from the base class) runs the same steps on the
// caller's thread, waiting on the CancelToken.
//
// Thread-safe.
#ifndef AGENTSTREAM_SPECIALISTS_SYNTHETIC_SYNTHETIC_H_
#define AGENTSTREAM_SPECIALISTS_SYNTHETIC_SYNTHETIC_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "specialists/sdk/async_specialist.h"

namespace agentstream::specialists {

struct SyntheticParams {
  int64_t count = 20;
  int64_t size = 256;
  double rate = 10;  // Partial results per second; 0: unpaced.
  // 0: a progress update whenever the whole percentage changes.
  int64_t progress_every = 0;
  int64_t start_delay_ms = 0;
  int64_t stall_after = -1;  // -1: off.
  int64_t fail_after = -1;   // -1: off.
};

// Upper bounds that keep one request from exhausting the process.
inline constexpr int64_t kSyntheticMaxCount = 10'000'000;
inline constexpr int64_t kSyntheticMaxSize = 1 << 20;
inline constexpr int64_t kSyntheticMaxStartDelayMs = 3'600'000;  // 1 h.

// `defaults` overridden by request.options. kInvalidArgument, naming the
// option, for a value of the wrong type or out of range: count
// 0..10,000,000, size 0..1 MiB, rate >= 0; integers: progress_every
// 0..10,000,000 (0: per whole percent), start_delay_ms 0..3,600,000,
// stall_after and fail_after -1..10,000,000 (-1: off).
absl::StatusOr<SyntheticParams> ResolveSyntheticParams(
    const SyntheticParams& defaults, const AnalyzeRequest& request);

class Synthetic final : public AsyncSpecialist {
 public:
  explicit Synthetic(SyntheticParams defaults) : defaults_(defaults) {}

  // Specialist methods
  SpecialistCard Card() const override;
  // AsyncSpecialist methods
  absl::StatusOr<std::unique_ptr<AsyncAnalysis>> Start(
      const AnalyzeRequest& request) override;

 private:
  const SyntheticParams defaults_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SYNTHETIC_SYNTHETIC_H_
