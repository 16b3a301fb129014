// Gives a hash table's memory back once it is mostly empty.
//
// absl's flat tables (and std::unordered_map's bucket array) keep their
// capacity when elements are erased: a table that once held a burst's
// 10,000 streams keeps that array for good, pinning the pages around it
// (docs/BENCHMARKS.md, "After the burst"). Called after an erase, this
// shrinks the table to fit once it is under a quarter full; with growth at
// seven eighths that leaves a factor of 3.5 between the two, so a table
// that breathes around a size is not rebuilt again and again (amortised
// O(1) per erase).
#ifndef AGENTSTREAM_COMMON_HASH_TABLE_SHRINK_H_
#define AGENTSTREAM_COMMON_HASH_TABLE_SHRINK_H_

#include <cstddef>

namespace agentstream {

// Tables of at most this capacity are left as they are.
inline constexpr size_t kMinShrinkCapacity = 64;

template <typename Table>
void ShrinkIfSparse(Table& table) {
  if (table.capacity() > kMinShrinkCapacity &&
      table.size() * 4 < table.capacity()) {
    table.rehash(0);
  }
}

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_HASH_TABLE_SHRINK_H_
