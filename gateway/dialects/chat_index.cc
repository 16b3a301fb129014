#include "gateway/dialects/chat_index.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace agentstream::gateway::dialects {

ChatIndex::ChatIndex(ChatIndexOptions options, const Clock* clock)
    : options_(options), clock_(clock) {}

std::string ChatIndex::Key(std::string_view principal,
                           std::string_view chat_id) {
  // Length-prefixed: no principal and chat id pair can spell another.
  std::string key = absl::StrCat(principal.size(), ":");
  key.append(principal);
  key.append(chat_id);
  return key;
}

void ChatIndex::Trim(absl::Time now) {
  while (!ages_.empty()) {
    auto it = items_.find(ages_.front());
    const bool expired = now - it->second.written >= options_.ttl;
    if (!expired && items_.size() <= options_.max_entries) break;
    items_.erase(it);
    ages_.pop_front();
  }
}

void ChatIndex::Started(std::string_view principal, std::string_view chat_id,
                        std::string_view run_id) {
  const absl::Time now = clock_->Now();
  std::string key = Key(principal, chat_id);
  absl::MutexLock lock(&mu_);
  auto it = items_.find(key);
  if (it != items_.end()) {
    ages_.erase(it->second.age);
    items_.erase(it);
  }
  ages_.push_back(key);
  items_.emplace(std::move(key), Item{Entry{std::string(run_id), false, 0}, now,
                                      std::prev(ages_.end())});
  Trim(now);
}

void ChatIndex::Finished(std::string_view principal, std::string_view chat_id,
                         std::string_view run_id, uint64_t final_seq) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Trim(now);
  auto it = items_.find(Key(principal, chat_id));
  if (it == items_.end() || it->second.entry.run_id != run_id) return;
  Item& item = it->second;
  item.entry.finished = true;
  item.entry.final_seq = std::max(item.entry.final_seq, final_seq);
  item.written = now;
  ages_.splice(ages_.end(), ages_, item.age);
}

std::optional<ChatIndex::Entry> ChatIndex::Find(std::string_view principal,
                                                std::string_view chat_id) {
  absl::MutexLock lock(&mu_);
  Trim(clock_->Now());
  auto it = items_.find(Key(principal, chat_id));
  if (it == items_.end()) return std::nullopt;
  return it->second.entry;
}

size_t ChatIndex::size() const {
  absl::MutexLock lock(&mu_);
  return items_.size();
}

}  // namespace agentstream::gateway::dialects
