#include "orchestrator/tombstones.h"

#include <cstring>
#include <utility>

#include "absl/hash/hash.h"

namespace agentstream::orchestrator {

TombstoneTable::TombstoneTable(size_t max_count, absl::Duration ttl)
    : max_count_(max_count), ttl_(ttl), set_(0, IdHash{this}, IdEq{this}) {}

size_t TombstoneTable::IdHash::operator()(std::string_view id) const {
  return absl::Hash<std::string_view>{}(id);
}

size_t TombstoneTable::IdHash::operator()(uint64_t at) const {
  return (*this)(table->IdAt(at));
}

bool TombstoneTable::IdEq::operator()(uint64_t a, uint64_t b) const {
  return a == b || table->IdAt(a) == table->IdAt(b);
}

bool TombstoneTable::IdEq::operator()(uint64_t a, std::string_view b) const {
  return table->IdAt(a) == b;
}

bool TombstoneTable::IdEq::operator()(std::string_view a, uint64_t b) const {
  return a == table->IdAt(b);
}

std::string_view TombstoneTable::IdAt(uint64_t at) const {
  return std::string_view(
      reinterpret_cast<const char*>(buffer_.data() + at + kIdAt),
      buffer_[at + kLengthAt]);
}

uint64_t TombstoneTable::U64At(uint64_t at) const {
  uint64_t value;
  std::memcpy(&value, buffer_.data() + at, sizeof(value));
  return value;
}

bool TombstoneTable::LiveAt(uint64_t at) const {
  return buffer_[at + kLiveAt] != 0;
}

size_t TombstoneTable::RecordBytesAt(uint64_t at) const {
  return RecordBytes(buffer_[at + kLengthAt]);
}

void TombstoneTable::Add(std::string_view id, uint64_t last_seq, absl::Time now,
                         uint64_t owner_key) {
  if (max_count_ == 0 || id.size() > kMaxIdBytes) return;
  if (auto it = set_.find(id); it != set_.end()) Kill(it);
  const uint64_t at = buffer_.size();
  const size_t bytes = RecordBytes(id.size());
  buffer_.resize(at + bytes);
  unsigned char* record = buffer_.data() + at;
  // Saturates: an infinite TTL never expires.
  const int64_t expires = absl::ToUnixNanos(now + ttl_);
  std::memcpy(record + kSeqAt, &last_seq, sizeof(last_seq));
  std::memcpy(record + kExpiresAt, &expires, sizeof(expires));
  std::memcpy(record + kOwnerAt, &owner_key, sizeof(owner_key));
  record[kLengthAt] = static_cast<unsigned char>(id.size());
  record[kLiveAt] = 1;
  std::memcpy(record + kIdAt, id.data(), id.size());
  set_.insert(at);
  live_bytes_ += bytes;
  if (set_.size() > max_count_) {
    PopFront([this](uint64_t) { return set_.size() > max_count_; });
  }
  MaybeRewrite();
}

std::optional<TombstoneTable::Found> TombstoneTable::Lookup(
    std::string_view id, absl::Time now) const {
  auto it = set_.find(id);
  if (it == set_.end()) return std::nullopt;
  if (absl::ToUnixNanos(now) >= static_cast<int64_t>(U64At(*it + kExpiresAt))) {
    return std::nullopt;
  }
  return Found{.last_seq = U64At(*it + kSeqAt),
               .owner_key = U64At(*it + kOwnerAt)};
}

std::optional<uint64_t> TombstoneTable::Find(std::string_view id,
                                             absl::Time now) const {
  std::optional<Found> found = Lookup(id, now);
  if (!found.has_value()) return std::nullopt;
  return found->last_seq;
}

bool TombstoneTable::Erase(std::string_view id) {
  auto it = set_.find(id);
  if (it == set_.end()) return false;
  Kill(it);
  MaybeRewrite();
  return true;
}

void TombstoneTable::Prune(absl::Time now) {
  const int64_t now_nanos = absl::ToUnixNanos(now);
  PopFront([this, now_nanos](uint64_t at) {
    return set_.size() > max_count_ ||
           static_cast<int64_t>(U64At(at + kExpiresAt)) <= now_nanos;
  });
  MaybeRewrite();
}

void TombstoneTable::Kill(OffsetSet::iterator it) {
  const uint64_t at = *it;
  buffer_[at + kLiveAt] = 0;
  live_bytes_ -= RecordBytesAt(at);
  set_.erase(it);
}

template <typename Pred>
void TombstoneTable::PopFront(Pred pop_live) {
  while (head_ < buffer_.size()) {
    if (LiveAt(head_)) {
      if (!pop_live(head_)) break;
      Kill(set_.find(head_));
    }
    head_ += RecordBytesAt(head_);
  }
}

void TombstoneTable::MaybeRewrite() {
  if (set_.empty()) {
    // Nothing left: hand everything back; the next Add allocates anew.
    if (buffer_.capacity() > 0 || set_.capacity() > 0) {
      std::vector<unsigned char>().swap(buffer_);
      set_ = OffsetSet(0, IdHash{this}, IdEq{this});
    }
    head_ = 0;
    return;
  }
  const size_t dead = buffer_.size() - live_bytes_;
  if (dead <= live_bytes_ || dead < kMinRewriteBytes) return;
  std::vector<unsigned char> fresh;
  fresh.reserve(live_bytes_);
  for (size_t at = head_; at < buffer_.size(); at += RecordBytesAt(at)) {
    if (!LiveAt(at)) continue;
    fresh.insert(fresh.end(), buffer_.begin() + at,
                 buffer_.begin() + at + RecordBytesAt(at));
  }
  const size_t count = set_.size();
  buffer_.swap(fresh);
  head_ = 0;
  // The old set's offsets point into the old buffer: only the new one is
  // ever hashed from here on.
  OffsetSet set(0, IdHash{this}, IdEq{this});
  set.reserve(count);
  for (size_t at = 0; at < buffer_.size(); at += RecordBytesAt(at)) {
    set.insert(at);
  }
  set_ = std::move(set);
}

size_t TombstoneTable::AllocatedBytes() const {
  return buffer_.capacity() + set_.capacity() * (sizeof(uint64_t) + 1);
}

}  // namespace agentstream::orchestrator
