// A session's answers read as they are on the wire (docs/CONTRACT.md,
// "Specialist sessions"): a serialized SessionMessage
// (proto/agentstream/v1/session.proto) split into its frames without
// building protobuf objects, so that the updates in a frame's batch reach
// the run as the specialist encoded them (AnalyzeObserver::
// OnSerializedUpdates), as they do from an AnalyzeBatched call.
//
// What a parser would make of the message is what the walker reports:
// fields it does not know (or of an unexpected wire type) are skipped, a
// field that repeats inside a frame is merged (a scalar's last value wins;
// `batch` and `end` merge as messages do: the batch's pieces are kept in
// order, and `end`'s fields are read in turn).
#ifndef AGENTSTREAM_ORCHESTRATOR_SESSION_WIRE_H_
#define AGENTSTREAM_ORCHESTRATOR_SESSION_WIRE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "orchestrator/update_wire.h"

namespace agentstream::orchestrator {

// One SessionFrame; the views point into the walked message.
struct SessionFrameView {
  uint64_t stream = 0;
  bool accepted = false;
  std::string_view request_id;
  // The encoded UpdateBatch, usually one piece (several when the frame
  // carried `batch` more than once: their concatenation is the batch).
  absl::InlinedVector<std::string_view, 1> batch;
  bool has_end = false;
  int32_t end_code = 0;  // google.rpc.Code.
  std::string_view end_message;

  // The batch's encoded size (what counts against the stream's window).
  uint64_t batch_bytes() const {
    uint64_t n = 0;
    for (std::string_view piece : batch) n += piece.size();
    return n;
  }
};

// Replaces `*frames` with the frames of the SessionMessage `message`, in
// order. False when `message` is malformed (`*frames` is then unspecified).
bool WalkSessionMessage(std::string_view message,
                        std::vector<SessionFrameView>* frames);

// Calls `each` with the bytes of every update of the UpdateBatch `batch`, in
// order, until it returns false; false if the batch is malformed (or `each`
// refused an update).
template <typename Fn>
bool ForEachBatchedUpdate(std::string_view batch, Fn each) {
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(batch.data()),
      static_cast<int>(batch.size()));
  while (true) {
    const int at = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    // 0: the end of the input, else a zero or cut-off tag (which ReadTag
    // consumes: hence the position before it).
    if (tag == 0) return at == static_cast<int>(batch.size());
    if (tag != kBatchUpdatesTag) {
      // A field this version does not know: skipped, as a parser would.
      if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
        return false;
      }
      continue;
    }
    uint32_t size = 0;
    if (!in.ReadVarint32(&size)) return false;
    const int from = in.CurrentPosition();
    if (size > batch.size() - static_cast<size_t>(from)) return false;
    if (!each(batch.substr(static_cast<size_t>(from), size))) return false;
    if (!in.Skip(static_cast<int>(size))) return false;
  }
}

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_SESSION_WIRE_H_
