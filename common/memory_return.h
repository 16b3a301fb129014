// Gives the heap a burst has freed back to the system.
//
// glibc keeps freed memory in its arenas: after 10,000 streams ended, a
// gateway that idled at 16 MiB stayed at 130 MiB (docs/BENCHMARKS.md,
// "Issue 11"). malloc_trim(0) returns the free pages of every arena, but it
// walks them under their locks (tens of milliseconds for a large, busy heap:
// a stall for every thread that allocates meanwhile). So it is called only
// when the resident size is `min_growth_bytes` above the lowest it has been,
// and then at most once per interval: `min_interval` while trims give back
// at least `min_growth_bytes`, doubling up to `max_interval` while they give
// back less (a busy process whose memory is in use is not walked again and
// again; one whose load has just dropped is trimmed within `max_interval`).
// Whether free pages are still resident cannot be told without a walk of
// its own (mallinfo2 takes the same locks), so the resident size is all it
// reads between trims (/proc/self/statm: no lock taken).
//
// One per process (StartMemoryReturner), on its own thread with every signal
// blocked, living until the process exits.
#ifndef AGENTSTREAM_COMMON_MEMORY_RETURN_H_
#define AGENTSTREAM_COMMON_MEMORY_RETURN_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace agentstream {

struct MemoryReturnOptions {
  // How often the resident size is read.
  absl::Duration period = absl::Seconds(1);
  // Growth of the resident size over its lowest that makes a trim worth
  // it, and what a trim must give back for the next to come soon.
  int64_t min_growth_bytes = 8 << 20;
  // The time between two trims: from `min_interval`, doubling while trims
  // give back little, up to `max_interval`.
  absl::Duration min_interval = absl::Seconds(5);
  absl::Duration max_interval = absl::Seconds(20);
};

// The decision, without the system calls (unit-tested): fed the resident
// size every period, and what each trim left.
class TrimPolicy final {
 public:
  TrimPolicy(const MemoryReturnOptions& options, int64_t rss_at_start)
      : options_(options),
        floor_(rss_at_start),
        interval_(options.min_interval) {}
  // True to trim now.
  bool ShouldTrim(int64_t rss, absl::Time now);
  // After a trim that ShouldTrim asked for at `rss_before`: the resident
  // size it left.
  void Trimmed(int64_t rss_before, int64_t rss_after, absl::Time now);

 private:
  const MemoryReturnOptions options_;
  int64_t floor_;  // The lowest resident size seen.
  absl::Duration interval_;
  absl::Time next_trim_ = absl::InfinitePast();
};

// This process's resident size in bytes, or nullopt when unreadable.
std::optional<int64_t> ResidentBytes();

// Starts the process's returner thread (once; later calls do nothing).
void StartMemoryReturner(const MemoryReturnOptions& options = {});

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_MEMORY_RETURN_H_
