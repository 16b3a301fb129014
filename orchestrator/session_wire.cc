#include "orchestrator/session_wire.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace agentstream::orchestrator {
namespace {

using google::protobuf::internal::WireFormatLite;
using Input = google::protobuf::io::CodedInputStream;

// session.proto's field numbers.
constexpr int kMessageFramesField = 1;
constexpr int kFrameStreamField = 1;
constexpr int kFrameAcceptedField = 2;
constexpr int kFrameRequestIdField = 3;
constexpr int kFrameBatchField = 4;
constexpr int kFrameEndField = 5;
constexpr int kEndCodeField = 1;
constexpr int kEndMessageField = 2;

bool IsVarint(uint32_t tag) {
  return WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT;
}
bool IsDelimited(uint32_t tag) {
  return WireFormatLite::GetTagWireType(tag) ==
         WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
}

// Reads a length-delimited field's bytes out of `in`, which walks `whole`.
bool ReadDelimited(Input& in, std::string_view whole, std::string_view* out) {
  uint32_t size = 0;
  if (!in.ReadVarint32(&size)) return false;
  const int at = in.CurrentPosition();
  if (size > whole.size() - static_cast<size_t>(at)) return false;
  *out = whole.substr(static_cast<size_t>(at), size);
  return in.Skip(static_cast<int>(size));
}

Input InputOver(std::string_view bytes) {
  return Input(reinterpret_cast<const uint8_t*>(bytes.data()),
               static_cast<int>(bytes.size()));
}

// Reads the next tag; 0 at the end of `bytes`, and `*malformed` when the
// input holds no tag there (a zero or cut-off tag: CodedInputStream reads
// either as 0 too, having consumed it).
uint32_t NextTag(Input& in, std::string_view bytes, bool* malformed) {
  const int at = in.CurrentPosition();
  const uint32_t tag = in.ReadTag();
  *malformed = tag == 0 && at != static_cast<int>(bytes.size());
  return tag;
}

bool WalkEnd(std::string_view bytes, SessionFrameView* frame) {
  Input in = InputOver(bytes);
  while (true) {
    bool malformed;
    const uint32_t tag = NextTag(in, bytes, &malformed);
    if (tag == 0) return !malformed;
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field == kEndCodeField && IsVarint(tag)) {
      uint32_t code = 0;  // An int32 is a 64-bit varint; the low bits count.
      if (!in.ReadVarint32(&code)) return false;
      frame->end_code = static_cast<int32_t>(code);
    } else if (field == kEndMessageField && IsDelimited(tag)) {
      if (!ReadDelimited(in, bytes, &frame->end_message)) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

bool WalkFrame(std::string_view bytes, SessionFrameView* frame) {
  Input in = InputOver(bytes);
  while (true) {
    bool malformed;
    const uint32_t tag = NextTag(in, bytes, &malformed);
    if (tag == 0) return !malformed;
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field == kFrameStreamField && IsVarint(tag)) {
      if (!in.ReadVarint64(&frame->stream)) return false;
    } else if (field == kFrameAcceptedField && IsVarint(tag)) {
      uint64_t v = 0;
      if (!in.ReadVarint64(&v)) return false;
      frame->accepted = v != 0;
    } else if (field == kFrameRequestIdField && IsDelimited(tag)) {
      if (!ReadDelimited(in, bytes, &frame->request_id)) return false;
    } else if (field == kFrameBatchField && IsDelimited(tag)) {
      std::string_view piece;
      if (!ReadDelimited(in, bytes, &piece)) return false;
      frame->batch.push_back(piece);
    } else if (field == kFrameEndField && IsDelimited(tag)) {
      std::string_view end;
      if (!ReadDelimited(in, bytes, &end)) return false;
      frame->has_end = true;
      if (!WalkEnd(end, frame)) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

}  // namespace

bool WalkSessionMessage(std::string_view message,
                        std::vector<SessionFrameView>* frames) {
  frames->clear();
  Input in = InputOver(message);
  while (true) {
    bool malformed;
    const uint32_t tag = NextTag(in, message, &malformed);
    if (tag == 0) return !malformed;
    if (WireFormatLite::GetTagFieldNumber(tag) == kMessageFramesField &&
        IsDelimited(tag)) {
      std::string_view frame;
      if (!ReadDelimited(in, message, &frame)) return false;
      frames->emplace_back();
      if (!WalkFrame(frame, &frames->back())) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

}  // namespace agentstream::orchestrator
