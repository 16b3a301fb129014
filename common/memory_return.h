// Gives the heap a burst has freed back to the system.
//
// glibc keeps freed memory in its arenas: after 10,000 streams ended, a
// gateway that idled at 16 MiB stayed at 130 MiB (docs/BENCHMARKS.md,
// "Issue 11"). malloc_trim(0) returns the free pages of every arena, but it
// walks them under their locks, and so does mallinfo2, which tells how much
// is free. So both are called only when it can pay, and at most once per
// `min_interval`:
//  - the free heap is asked for only while the resident size is
//    `min_growth_bytes` above the lowest it has been;
//  - a trim follows when at least `min_growth_bytes` of the heap are free.
// Whether free pages are still resident cannot be told (a burst reuses
// trimmed pages and frees them again), so a process that keeps that much
// free is trimmed once per interval: the pages it reuses are faulted back
// in, a cost bounded by the interval.
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
  // How often the resident size is read (/proc/self/statm: no lock taken).
  absl::Duration period = absl::Seconds(1);
  // Growth of the resident size, and free heap, that make a trim worth it.
  int64_t min_growth_bytes = 8 << 20;
  // The least time between two looks at the free heap (and trims).
  absl::Duration min_interval = absl::Seconds(5);
};

// The decision, without the system calls (unit-tested): fed the resident
// size every period, and the free heap when it asks for it.
class TrimPolicy final {
 public:
  TrimPolicy(const MemoryReturnOptions& options, int64_t rss_at_start)
      : options_(options), floor_(rss_at_start) {}
  // True when the free heap is worth reading now (then not again before
  // `min_interval` has passed).
  bool WantsFreeHeap(int64_t rss, absl::Time now);
  // With the free heap read after WantsFreeHeap: true to trim now.
  bool ShouldTrim(int64_t free_heap) const;
  // After a trim: the resident size it left.
  void Trimmed(int64_t rss_after);

 private:
  const MemoryReturnOptions options_;
  int64_t floor_;  // The lowest resident size seen.
  absl::Time next_look_ = absl::InfinitePast();
};

// This process's resident size in bytes, or nullopt when unreadable.
std::optional<int64_t> ResidentBytes();

// Starts the process's returner thread (once; later calls do nothing).
void StartMemoryReturner(const MemoryReturnOptions& options = {});

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_MEMORY_RETURN_H_
