#include "gateway/dialects/chat_index.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace agentstream::gateway::dialects {

ChatIndex::ChatIndex(ChatIndexOptions options, const Clock* clock)
    : entries_({.max_entries = options.max_entries, .ttl = options.ttl},
               clock) {}

std::string ChatIndex::Key(std::string_view principal,
                           std::string_view chat_id) {
  // Length-prefixed: no principal and chat id pair can spell another.
  std::string key = absl::StrCat(principal.size(), ":");
  key.append(principal);
  key.append(chat_id);
  return key;
}

void ChatIndex::Started(std::string_view principal, std::string_view chat_id,
                        std::string_view run_id) {
  entries_.Put(Key(principal, chat_id), Entry{std::string(run_id), false, 0});
}

void ChatIndex::Finished(std::string_view principal, std::string_view chat_id,
                         std::string_view run_id, uint64_t final_seq) {
  entries_.Update(Key(principal, chat_id), [&](Entry& entry) {
    if (entry.run_id != run_id) return false;  // The chat moved on.
    entry.finished = true;
    entry.final_seq = std::max(entry.final_seq, final_seq);
    return true;
  });
}

std::optional<ChatIndex::Entry> ChatIndex::Find(std::string_view principal,
                                                std::string_view chat_id) {
  return entries_.Find(Key(principal, chat_id));
}

size_t ChatIndex::size() const { return entries_.size(); }

}  // namespace agentstream::gateway::dialects
