// What is kept of an ended run once its log is gone (RunManager, "Expiry"
// in run_manager.h; docs/ORCHESTRATOR.md): its request id and last seq, for
// a fixed TTL, at most a fixed number of them, the oldest going first.
//
// Stored compactly, without a heap allocation per tombstone: tombstones are
// created as the runs' large memory is freed (after a burst, tens of
// thousands of them), and one small live chunk each, scattered over the
// freed pages, keeps the allocator from giving those pages back to the
// system. Here every tombstone is a packed record
//   {last_seq: 8 bytes, expires: 8, owner key: 8, id length: 1, live: 1,
//    id bytes}
// appended to one byte buffer in creation order (all share one TTL, so that
// is expiry order too: expiry and the count bound pop from its front), and
// one flat hash set holds the records' offsets, hashed and compared by the id
// they point at, so the id is stored once. Records of replaced or erased
// tombstones are marked dead in place; when dead bytes outweigh live ones
// the buffer is rewritten into a fresh one of the live records' size and the
// set rebuilt at that size, so memory comes back after a mass expiry. Every
// record is copied at most once per rewrite and a rewrite needs as many dead
// bytes as it copies, so each operation costs amortised O(1).
//
// Not thread-safe (the owner locks). Ids are at most kMaxIdBytes bytes (the
// orchestrator's request ids are at most 128: ValidRequestId).
#ifndef AGENTSTREAM_ORCHESTRATOR_TOMBSTONES_H_
#define AGENTSTREAM_ORCHESTRATOR_TOMBSTONES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"

namespace agentstream::orchestrator {

class TombstoneTable final {
 public:
  static constexpr size_t kMaxIdBytes = 255;

  // Tombstones live `ttl` from their Add; at most `max_count` are kept (0:
  // none at all: Add does nothing).
  TombstoneTable(size_t max_count, absl::Duration ttl);

  // The set's functors point back at the table.
  TombstoneTable(const TombstoneTable&) = delete;
  TombstoneTable& operator=(const TombstoneTable&) = delete;

  // Records that run `id` ended at `last_seq`; replaces an earlier
  // tombstone of the same id (which then expires with this one). Beyond
  // max_count, the oldest goes. An id longer than kMaxIdBytes is not kept.
  // `now` must not go backwards between calls.
  // `owner_key` identifies the run's owner (OwnerKey in caller.h), so that
  // an ended run stays invisible to others.
  void Add(std::string_view id, uint64_t last_seq, absl::Time now,
           uint64_t owner_key = 0);
  struct Found {
    uint64_t last_seq = 0;
    uint64_t owner_key = 0;
  };
  // `id`'s tombstone, unless there is none or it has expired at `now`.
  std::optional<Found> Lookup(std::string_view id, absl::Time now) const;
  // The last seq of `id`'s tombstone, unless there is none or it has expired
  // at `now` (whether or not Prune has removed it yet).
  std::optional<uint64_t> Find(std::string_view id, absl::Time now) const;
  // Removes `id`'s tombstone (a new run took the id); false if there was none.
  bool Erase(std::string_view id);
  // Removes the tombstones expired at `now`, oldest first, and gives memory
  // back when most of it is no longer used.
  void Prune(absl::Time now);

  // Tombstones held (expired ones count until pruned).
  size_t size() const { return set_.size(); }
  // Bytes the table has allocated (its buffer and hash set, by capacity;
  // the set's per-slot control bytes included), for tests and figures.
  size_t AllocatedBytes() const;

 private:
  // Record layout (byte offsets; fields are memcpy'd, records are packed).
  static constexpr size_t kSeqAt = 0;
  static constexpr size_t kExpiresAt = 8;
  static constexpr size_t kOwnerAt = 16;
  static constexpr size_t kLengthAt = 24;
  static constexpr size_t kLiveAt = 25;
  static constexpr size_t kIdAt = 26;
  // Dead bytes below this are never worth a rewrite.
  static constexpr size_t kMinRewriteBytes = 4096;

  // Hashes and compares record offsets by the id stored there, and ids
  // themselves (heterogeneous lookup by string_view).
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const;
    size_t operator()(uint64_t at) const;
    const TombstoneTable* table;
  };
  struct IdEq {
    using is_transparent = void;
    bool operator()(uint64_t a, uint64_t b) const;
    bool operator()(uint64_t a, std::string_view b) const;
    bool operator()(std::string_view a, uint64_t b) const;
    const TombstoneTable* table;
  };
  using OffsetSet = absl::flat_hash_set<uint64_t, IdHash, IdEq>;

  static size_t RecordBytes(size_t id_bytes) { return kIdAt + id_bytes; }
  std::string_view IdAt(uint64_t at) const;
  uint64_t U64At(uint64_t at) const;
  bool LiveAt(uint64_t at) const;
  size_t RecordBytesAt(uint64_t at) const;
  // Marks the record at `at` dead and removes it from the set.
  void Kill(OffsetSet::iterator it);
  // Pops dead records off the front; then, while `pop_live(record)` says
  // so, live ones too.
  template <typename Pred>
  void PopFront(Pred pop_live);
  // Rewrites the buffer and set when dead bytes outweigh live ones.
  void MaybeRewrite();

  const size_t max_count_;
  const absl::Duration ttl_;
  // The records, oldest first from `head_` (all before it are popped).
  std::vector<unsigned char> buffer_;
  size_t head_ = 0;
  // Bytes of the records in set_.
  size_t live_bytes_ = 0;
  // Offsets of the live records.
  OffsetSet set_;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_TOMBSTONES_H_
