#include "specialists/sdk/stream_queue.h"

#include <limits>
#include <utility>

#include "google/protobuf/io/coded_stream.h"

namespace agentstream::specialists {
namespace {

// An update of `bytes` inside an UpdateBatch: field 1's tag, its length,
// the update.
int64_t FramedBytes(int64_t bytes) {
  return 1 +
         static_cast<int64_t>(
             google::protobuf::io::CodedOutputStream::VarintSize64(
                 static_cast<uint64_t>(bytes))) +
         bytes;
}

}  // namespace

void StreamQueue::Push(agentstream::v1::Update update) {
  const int64_t bytes = static_cast<int64_t>(update.ByteSizeLong());
  pending_.push_back(Entry{std::move(update), bytes});
  queued_bytes_ += bytes;
  ++queued_updates_;
}

bool StreamQueue::TakeNext(agentstream::v1::Update* out) {
  if (writing_ || head_ == pending_.size()) return false;
  Entry& entry = pending_[head_++];
  *out = std::move(entry.update);
  in_flight_bytes_ = entry.bytes;
  in_flight_framed_bytes_ = FramedBytes(entry.bytes);
  in_flight_updates_ = 1;
  if (head_ == pending_.size()) {
    pending_.clear();  // Capacity kept for the next ones; see Shrink().
    head_ = 0;
  } else if (head_ >= 64 && head_ * 2 >= pending_.size()) {
    // Taken from the front while the producer appends: compact, so the
    // vector stays within the queue's bound.
    pending_.erase(pending_.begin(),
                   pending_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  writing_ = true;
  return true;
}

bool StreamQueue::TakeNext(agentstream::v1::UpdateBatch* out) {
  return TakeNext(out, std::numeric_limits<int64_t>::max());
}

bool StreamQueue::TakeNext(agentstream::v1::UpdateBatch* out,
                           int64_t max_framed_bytes) {
  if (writing_ || head_ == pending_.size()) return false;
  out->Clear();
  in_flight_bytes_ = 0;
  in_flight_framed_bytes_ = 0;
  in_flight_updates_ = 0;
  // Everything queued, up to the byte bounds (at least one update).
  while (head_ < pending_.size()) {
    const int64_t bytes = pending_[head_].bytes;
    const int64_t framed = FramedBytes(bytes);
    if (in_flight_updates_ > 0 &&
        (in_flight_bytes_ + bytes > limits_.max_bytes ||
         in_flight_framed_bytes_ + framed > max_framed_bytes)) {
      break;
    }
    *out->add_updates() = std::move(pending_[head_].update);
    in_flight_bytes_ += bytes;
    in_flight_framed_bytes_ += framed;
    ++in_flight_updates_;
    ++head_;
  }
  if (head_ == pending_.size()) {
    // Capacity kept: a busy stream refills it at once (Shrink() frees it
    // once the stream is idle).
    pending_.clear();
    head_ = 0;
  } else {
    pending_.erase(pending_.begin(),
                   pending_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  writing_ = true;
  return true;
}

void StreamQueue::WriteDone() {
  if (!writing_) return;
  writing_ = false;
  queued_bytes_ -= in_flight_bytes_;
  queued_updates_ -= in_flight_updates_;
  in_flight_bytes_ = 0;
  in_flight_framed_bytes_ = 0;
  in_flight_updates_ = 0;
}

void StreamQueue::Shrink() {
  if (head_ == pending_.size()) std::vector<Entry>().swap(pending_);
  head_ = 0;
}

void StreamQueue::Clear() {
  std::vector<Entry>().swap(pending_);
  head_ = 0;
  queued_bytes_ = in_flight_bytes_;
  queued_updates_ = in_flight_updates_;
}

}  // namespace agentstream::specialists
