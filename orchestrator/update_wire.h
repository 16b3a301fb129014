// An Update kept as its emitter encoded it, with the envelope fields the
// orchestrator owns rewritten (docs/ORCHESTRATOR.md, "A run": a specialist's
// update gets the run's request_id, its seq and the specialist's configured
// name; its emitted_at is kept, or stamped when it has none). The rest of
// the bytes (instance, the kind and its payload, fields this version does
// not know) is copied as it is: a specialist's update is never encoded
// again, which for a google.protobuf.Struct payload (partial_result,
// tool_call) is most of what it would cost.
//
// UpdateBatch's wire form is the concatenation of each update's encoding as
// field 1 (docs/CONTRACT.md, "Batched streams"); WriteFramed writes that
// element, ready to be a RunLog entry (see LogEntry::framed).
#ifndef AGENTSTREAM_ORCHESTRATOR_UPDATE_WIRE_H_
#define AGENTSTREAM_ORCHESTRATOR_UPDATE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/inlined_vector.h"

namespace agentstream::orchestrator {

// UpdateBatch's field 1 (`updates`), length-delimited.
inline constexpr uint8_t kBatchUpdatesTag = (1 << 3) | 2;

// The envelope fields the orchestrator writes (Update's fields 1 to 4).
struct Envelope {
  std::string_view request_id;
  uint64_t seq = 0;
  int64_t emitted_at = 0;
  std::string_view specialist;
};

class EncodedUpdate {
 public:
  // Splits `bytes`, an Update's encoding, into its envelope fields 1 to 4
  // (dropped: the Envelope replaces them) and the rest (kept, in order).
  // False when the top level is not well-formed. `bytes` must outlive this.
  bool Init(std::string_view bytes);

  // The emitted_at the emitter set (0: none).
  int64_t emitted_at() const { return emitted_at_; }

  // The update with `envelope` and the kept bytes (its size, and written to
  // `out`, which must have room for it); returns the end of what it wrote.
  size_t EncodedSize(const Envelope& envelope) const;
  uint8_t* Write(const Envelope& envelope, uint8_t* out) const;

  // Replaces `*out` with UpdateBatch field 1's tag and length, then the
  // update; returns the size of the tag and length.
  uint8_t WriteFramed(const Envelope& envelope, std::string* out) const;

 private:
  // Usually one range: an encoder writes fields in number order, so the
  // envelope comes first.
  absl::InlinedVector<std::string_view, 2> kept_;
  size_t kept_size_ = 0;
  int64_t emitted_at_ = 0;
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_UPDATE_WIRE_H_
