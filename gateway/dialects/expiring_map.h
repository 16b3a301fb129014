// A bounded, expiring map for what a gateway remembers of the dialects'
// own names (the AI SDK's chats, chat_index.h; A2A's contextIds,
// a2a_contexts.h): at most `max_entries` (the one written longest ago goes
// first), each kept for `ttl` after it was last written. One definition of
// that bound for both. Thread-safe; time from the injected clock.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_EXPIRING_MAP_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_EXPIRING_MAP_H_

#include <cstddef>
#include <functional>
#include <iterator>
#include <list>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace agentstream::gateway::dialects {

struct ExpiringMapOptions {
  size_t max_entries = 10000;
  absl::Duration ttl = absl::Minutes(30);
};

template <typename V>
class ExpiringMap {
 public:
  ExpiringMap(ExpiringMapOptions options, const Clock* clock)
      : options_(options), clock_(clock) {}

  // Sets `key` to `value` (written now).
  void Put(std::string key, V value) {
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&mu_);
    if (auto it = items_.find(key); it != items_.end()) {
      ages_.erase(it->second.age);
      items_.erase(it);
    }
    ages_.push_back(key);
    items_.emplace(std::move(key),
                   Item{std::move(value), now, std::prev(ages_.end())});
    Trim(now);
  }

  // Changes the value of `key` in place when present and `change` says so
  // (returns true); the entry is then written now. False when absent.
  bool Update(const std::string& key, const std::function<bool(V&)>& change) {
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&mu_);
    Trim(now);
    auto it = items_.find(key);
    if (it == items_.end() || !change(it->second.value)) return false;
    it->second.written = now;
    ages_.splice(ages_.end(), ages_, it->second.age);
    return true;
  }

  // The value of `key`; nullopt when unknown, expired or evicted.
  std::optional<V> Find(const std::string& key) {
    absl::MutexLock lock(&mu_);
    Trim(clock_->Now());
    auto it = items_.find(key);
    if (it == items_.end()) return std::nullopt;
    return it->second.value;
  }

  // The entries held (expired ones until the next write or look-up).
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }

 private:
  struct Item {
    V value;
    absl::Time written;
    std::list<std::string>::iterator age;  // In ages_.
  };

  bool Expired(const Item& item, absl::Time now) const {
    return now - item.written >= options_.ttl;
  }
  // Drops the entries past their TTL and, beyond the bound, the oldest.
  void Trim(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!ages_.empty()) {
      auto it = items_.find(ages_.front());
      if (!Expired(it->second, now) && items_.size() <= options_.max_entries) {
        break;
      }
      items_.erase(it);
      ages_.pop_front();
    }
  }

  const ExpiringMapOptions options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Item> items_ ABSL_GUARDED_BY(mu_);
  // Keys, the one written longest ago first.
  std::list<std::string> ages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_EXPIRING_MAP_H_
