#include "orchestrator/update_wire.h"

#include <cstring>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace agentstream::orchestrator {
namespace {

using google::protobuf::internal::WireFormatLite;

// Update's envelope fields (update.proto).
constexpr int kRequestIdField = 1;
constexpr int kSeqField = 2;
constexpr int kEmittedAtField = 3;
constexpr int kSpecialistField = 4;

size_t EnvelopeSize(const Envelope& e) {
  size_t n = 0;
  // Each tag is one byte (fields 1 to 4); proto3 leaves zero values out.
  if (!e.request_id.empty())
    n += 1 + WireFormatLite::LengthDelimitedSize(e.request_id.size());
  if (e.seq != 0) n += 1 + WireFormatLite::UInt64Size(e.seq);
  if (e.emitted_at != 0) n += 1 + WireFormatLite::Int64Size(e.emitted_at);
  if (!e.specialist.empty())
    n += 1 + WireFormatLite::LengthDelimitedSize(e.specialist.size());
  return n;
}

uint8_t* WriteString(int field, std::string_view s, uint8_t* out) {
  out = WireFormatLite::WriteTagToArray(
      field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, out);
  out = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(s.size()), out);
  std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

}  // namespace

bool EncodedUpdate::Init(std::string_view bytes) {
  kept_.clear();
  kept_size_ = 0;
  emitted_at_ = 0;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  int kept_from = -1;  // Start of the current kept range.
  while (true) {
    const int at = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      if (at != static_cast<int>(bytes.size())) return false;
      break;
    }
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field >= kRequestIdField && field <= kSpecialistField) {
      if (kept_from >= 0) {
        kept_.push_back(bytes.substr(kept_from, at - kept_from));
        kept_from = -1;
      }
      if (field == kEmittedAtField && WireFormatLite::GetTagWireType(tag) ==
                                          WireFormatLite::WIRETYPE_VARINT) {
        uint64_t v = 0;
        if (!in.ReadVarint64(&v)) return false;
        emitted_at_ = static_cast<int64_t>(v);
        continue;
      }
    } else if (kept_from < 0) {
      kept_from = at;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return false;
  }
  if (kept_from >= 0) kept_.push_back(bytes.substr(kept_from));
  for (std::string_view r : kept_) kept_size_ += r.size();
  return true;
}

size_t EncodedUpdate::EncodedSize(const Envelope& envelope) const {
  return EnvelopeSize(envelope) + kept_size_;
}

uint8_t* EncodedUpdate::Write(const Envelope& e, uint8_t* out) const {
  if (!e.request_id.empty())
    out = WriteString(kRequestIdField, e.request_id, out);
  if (e.seq != 0)
    out = WireFormatLite::WriteUInt64ToArray(kSeqField, e.seq, out);
  if (e.emitted_at != 0) {
    out = WireFormatLite::WriteInt64ToArray(kEmittedAtField, e.emitted_at, out);
  }
  if (!e.specialist.empty()) {
    out = WriteString(kSpecialistField, e.specialist, out);
  }
  for (std::string_view r : kept_) {
    std::memcpy(out, r.data(), r.size());
    out += r.size();
  }
  return out;
}

uint8_t EncodedUpdate::WriteFramed(const Envelope& envelope,
                                   std::string* out) const {
  const uint32_t size = static_cast<uint32_t>(EncodedSize(envelope));
  const size_t header =
      1 + google::protobuf::io::CodedOutputStream::VarintSize32(size);
  out->resize(header + size);
  auto* p = reinterpret_cast<uint8_t*>(out->data());
  *p++ = kBatchUpdatesTag;
  p = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(size, p);
  Write(envelope, p);
  return static_cast<uint8_t>(header);
}

}  // namespace agentstream::orchestrator
