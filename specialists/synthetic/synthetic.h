// Synthetic: a load generator for tests and benchmarks. Per request it emits
// `count` partial results of `size` payload bytes at `rate` per second (0:
// as fast as the stream takes them), each preceded by a progress update
// when the whole percentage (i*100/count) changes. Defaults come from flags;
// AnalyzeRequest.options {"count": N, "size": S, "rate": R} override them
// per request. Planned only when named (explicit_only). Pacing uses the
// CancelToken, so cancellation is seen between updates at once.
//
// Thread-safe.
#ifndef AGENTSTREAM_SPECIALISTS_SYNTHETIC_SYNTHETIC_H_
#define AGENTSTREAM_SPECIALISTS_SYNTHETIC_SYNTHETIC_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "specialists/sdk/specialist.h"

namespace agentstream::specialists {

struct SyntheticParams {
  int64_t count = 20;
  int64_t size = 256;
  double rate = 10;  // Partial results per second; 0: unpaced.
};

// Upper bounds that keep one request from exhausting the process.
inline constexpr int64_t kSyntheticMaxCount = 10'000'000;
inline constexpr int64_t kSyntheticMaxSize = 1 << 20;

// `defaults` overridden by request.options; kInvalidArgument for values out
// of range (count 0..10,000,000, size 0..1 MiB, rate >= 0) or of the wrong
// type.
absl::StatusOr<SyntheticParams> ResolveSyntheticParams(
    const SyntheticParams& defaults, const AnalyzeRequest& request);

class Synthetic final : public Specialist {
 public:
  explicit Synthetic(SyntheticParams defaults) : defaults_(defaults) {}

  // Specialist methods
  SpecialistCard Card() const override;
  absl::Status Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                       const CancelToken& cancel) override;

 private:
  const SyntheticParams defaults_;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SYNTHETIC_SYNTHETIC_H_
