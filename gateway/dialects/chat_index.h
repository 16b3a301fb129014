// The AI SDK's chats and our runs (docs/PROTOCOLS.md, "AI SDK UI message
// stream"): which run a chat of a principal has last started, and whether
// its stream has been sent to the end, so that `reconnectToStream` (GET
// /api/ai-sdk/chat/{chatId}/stream, which names the chat, not the run)
// finds the run to continue, or answers 204 when there is none.
//
// The key is (principal, chatId): a chat id is the client's name, never a
// key to another principal's run. With authentication off every client is
// the same (anonymous) principal. Bounded: at most `max_entries` chats (the
// one written longest ago goes first), each kept for `ttl` after it was last
// written (the run started, or its stream was sent to the end). In memory,
// per gateway: replicas behind a load balancer do not share it (sticky
// routing by chat, or one gateway).
//
// Thread-safe. Time from the injected clock (common/clock.h).
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_CHAT_INDEX_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_CHAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gateway/dialects/expiring_map.h"

namespace agentstream::gateway::dialects {

struct ChatIndexOptions {
  // A chat per user tab: far more than a gateway's open streams
  // (--max-streams), small in memory (some 200 bytes an entry).
  size_t max_entries = 10000;
  // Longer than a run usually lasts plus the orchestrator's --log-ttl-ms
  // (5 minutes, how long an ended run stays attachable): past it, a chat's
  // run could not be replayed anyway.
  absl::Duration ttl = absl::Minutes(30);
};

class ChatIndex {
 public:
  struct Entry {
    std::string run_id;
    // The run's stream was sent to its end (`finish` or `abort`), up to
    // `final_seq`.
    bool finished = false;
    uint64_t final_seq = 0;
  };

  ChatIndex(ChatIndexOptions options, const Clock* clock);

  // `run_id` is now the chat's run (a new message, a regenerate).
  void Started(std::string_view principal, std::string_view chat_id,
               std::string_view run_id);
  // A stream of `run_id` was sent to its end, up to `final_seq`. Ignored
  // when the chat has moved on to another run, or is unknown.
  void Finished(std::string_view principal, std::string_view chat_id,
                std::string_view run_id, uint64_t final_seq);
  // The chat's entry; nullopt when unknown, expired or evicted.
  std::optional<Entry> Find(std::string_view principal,
                            std::string_view chat_id);
  // The entries held (expired ones until the next write or look-up).
  size_t size() const;

 private:
  static std::string Key(std::string_view principal, std::string_view chat_id);

  ExpiringMap<Entry> entries_;
};

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_CHAT_INDEX_H_
