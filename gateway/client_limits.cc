#include "gateway/client_limits.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash_table_shrink.h"

namespace agentstream::gateway {

namespace {

// Bounds on how often idle clients are looked for: a table walk is cheap
// next to a second, and a minute bounds how long a burst's entries stay.
constexpr absl::Duration kMinForgetPeriod = absl::Seconds(1);
constexpr absl::Duration kMaxForgetPeriod = absl::Seconds(60);
absl::Duration ForgetPeriod(const ClientLimitOptions& o) {
  if (o.run_starts_per_second <= 0) return kMinForgetPeriod;
  const absl::Duration refill = absl::Seconds(
      static_cast<double>(o.run_start_burst) / o.run_starts_per_second);
  return std::clamp(refill, kMinForgetPeriod, kMaxForgetPeriod);
}

}  // namespace

ClientLimiter::ClientLimiter(ClientLimitOptions options, const Clock* clock)
    : options_(options), clock_(clock), forget_period_(ForgetPeriod(options)) {}

ClientLimiter::StreamSlot::~StreamSlot() { limiter_->Release(client_); }

void ClientLimiter::RefillLocked(Entry& e, absl::Time now) const {
  if (options_.run_starts_per_second <= 0) return;
  const double elapsed = absl::ToDoubleSeconds(now - e.refilled);
  if (elapsed > 0) {
    e.tokens =
        std::min<double>(static_cast<double>(options_.run_start_burst),
                         e.tokens + elapsed * options_.run_starts_per_second);
    e.refilled = now;
  }
}

bool ClientLimiter::ForgettableLocked(Entry& e, absl::Time now) const {
  if (e.open_streams > 0) return false;
  RefillLocked(e, now);
  return options_.run_starts_per_second <= 0 ||
         e.tokens >= static_cast<double>(options_.run_start_burst);
}

void ClientLimiter::ForgetIdleLocked(absl::Time now) {
  if (now < next_forget_) return;
  next_forget_ = now + forget_period_;
  absl::erase_if(clients_, [this, now](auto& kv) {
    return ForgettableLocked(kv.second, now);
  });
  ShrinkIfSparse(clients_);
}

void ClientLimiter::MakeRoomLocked(absl::Time now) {
  // Forget every client that holds nothing (it would start that way
  // anyway); if that is not enough, the longest idle ones.
  next_forget_ = absl::InfinitePast();
  ForgetIdleLocked(now);
  if (clients_.size() < options_.max_clients) return;
  std::vector<std::pair<absl::Time, std::string>> idle;
  for (const auto& [client, e] : clients_) {
    if (e.open_streams == 0) idle.emplace_back(e.last_seen, client);
  }
  const size_t excess = clients_.size() - options_.max_clients + 1;
  const size_t n = std::min(excess + options_.max_clients / 16, idle.size());
  std::partial_sort(idle.begin(), idle.begin() + static_cast<ptrdiff_t>(n),
                    idle.end());
  for (size_t i = 0; i < n; ++i) clients_.erase(idle[i].second);
}

ClientLimiter::Entry& ClientLimiter::EntryLocked(const std::string& client,
                                                 absl::Time now) {
  ForgetIdleLocked(now);
  auto it = clients_.find(client);
  if (it == clients_.end()) {
    if (clients_.size() >= options_.max_clients) MakeRoomLocked(now);
    Entry e;
    e.tokens = static_cast<double>(options_.run_start_burst);
    e.refilled = now;
    it = clients_.emplace(client, e).first;
  }
  it->second.last_seen = now;
  return it->second;
}

ClientLimiter::StreamResult ClientLimiter::AcquireStream(
    const std::string& client) {
  StreamResult result;
  if (options_.max_streams_per_client <= 0) {
    // Still counted, so that open_streams() tells the truth.
    absl::MutexLock lock(&mu_);
    ++EntryLocked(client, clock_->Now()).open_streams;
    result.slot.reset(new StreamSlot(this, client));
    return result;
  }
  absl::MutexLock lock(&mu_);
  Entry& e = EntryLocked(client, clock_->Now());
  if (e.open_streams >= options_.max_streams_per_client) {
    result.refusal.status = absl::ResourceExhaustedError(absl::StrCat(
        "too many open streams from this client (at most ",
        options_.max_streams_per_client, "); close one or retry later"));
    result.refusal.retry_after_seconds =
        std::max(1, options_.stream_retry_after_seconds);
    return result;
  }
  ++e.open_streams;
  result.slot.reset(new StreamSlot(this, client));
  return result;
}

void ClientLimiter::Release(const std::string& client) {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  const absl::Time now = clock_->Now();
  if (it->second.open_streams > 0) --it->second.open_streams;
  it->second.last_seen = now;
  if (ForgettableLocked(it->second, now)) {
    clients_.erase(it);
    ShrinkIfSparse(clients_);
  }
}

ClientLimiter::Refusal ClientLimiter::TakeRunStart(const std::string& client) {
  Refusal refusal;
  if (options_.run_starts_per_second <= 0) return refusal;
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Entry& e = EntryLocked(client, now);
  RefillLocked(e, now);
  if (e.tokens >= 1.0) {
    e.tokens -= 1.0;
    return refusal;
  }
  const double wait = (1.0 - e.tokens) / options_.run_starts_per_second;
  refusal.retry_after_seconds = std::max(1, static_cast<int>(std::ceil(wait)));
  refusal.status = absl::ResourceExhaustedError(absl::StrCat(
      "too many runs started by this client (", options_.run_starts_per_second,
      " a second, bursts of ", options_.run_start_burst, "); retry in ",
      refusal.retry_after_seconds, " s"));
  return refusal;
}

size_t ClientLimiter::tracked_clients() const {
  absl::MutexLock lock(&mu_);
  return clients_.size();
}

int64_t ClientLimiter::open_streams(const std::string& client) const {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client);
  return it == clients_.end() ? 0 : it->second.open_streams;
}

}  // namespace agentstream::gateway
