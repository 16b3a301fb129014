// One chat stream on the SSE wire (DESIGN section 3), without sockets:
// ChatStreamEncoder turns a run's updates into SSE text, and RunChatStream
// drives a RunStream into an EventSink until the run ends, the client goes
// away or the server stops.
//
//   retry: <ms>
//   id: <rid>:0      event: connected   data: {"type":"connected",...}
//   id: <rid>:<seq>  event: message     data: UpdateToJson(update)
//   (no id)          event: error|timeout  (the same data, for `error` and
//                                        `timeout` updates, right after)
//   (no id)          event: error       data: {"type":"error","code":...}
//                                        (the gRPC call failed mid-stream)
//   (no id)          : heartbeat  or  event: heartbeat
//   (no id)          event: done        data: {"type":"done","status":...}
//
// Named copies, heartbeats and `done` carry no id so that they never move
// the client's resume point (EventSource keeps the last id it saw).
#ifndef AGENTSTREAM_GATEWAY_CHAT_STREAM_H_
#define AGENTSTREAM_GATEWAY_CHAT_STREAM_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agentstream/v1/update.pb.h"
#include "common/clock.h"
#include "gateway/orchestrator_client.h"
#include "gateway/sse_encoder.h"

namespace agentstream::gateway {

// How a stream ended, as sent in `done`.
enum class DoneStatus { kComplete, kCancelled, kFailed };
std::string DoneStatusName(DoneStatus status);

// Not thread-safe; one per stream.
class ChatStreamEncoder final {
 public:
  ChatStreamEncoder(std::string request_id, HeartbeatStyle heartbeat,
                    int64_t retry_ms);

  // `retry:` and the `connected` event.
  std::string Open() const;
  // One update (and its named copy for error/timeout). Appends to `out`;
  // returns the number of events appended.
  int AppendUpdate(const agentstream::v1::Update& update, std::string* out);
  // The gRPC call failed after the stream started.
  std::string Failure(const absl::Status& status) const;
  std::string Heartbeat() const;
  std::string Done(DoneStatus status) const;

  // Whether a `complete` update was seen, and how the run ended by it.
  bool saw_complete() const { return saw_complete_; }
  DoneStatus FinalStatusFromUpdates() const;
  uint64_t last_seq() const { return last_seq_; }

 private:
  const std::string request_id_;
  const HeartbeatStyle heartbeat_;
  const int64_t retry_ms_;
  uint64_t last_seq_ = 0;
  bool saw_complete_ = false;
  bool saw_cancelled_ = false;
};

// Where the bytes go. Called from the stream's thread only.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Writes and flushes `bytes`; false when the client is gone.
  virtual bool Write(std::string_view bytes) = 0;
  // True once the client has closed its end (checked while idle).
  virtual bool PeerGone() = 0;
};

struct ChatStreamOptions {
  absl::Duration heartbeat_interval = absl::Seconds(15);
  // How often an idle stream checks for a gone client and for `stop`.
  absl::Duration poll_interval = absl::Milliseconds(200);
  // After `complete`, how long to let the call end by itself before it is
  // cancelled.
  absl::Duration finish_grace = absl::Milliseconds(500);
};

enum class StreamEnd { kDone, kClientGone, kStopped };

struct ChatStreamResult {
  StreamEnd end = StreamEnd::kDone;
  DoneStatus done = DoneStatus::kFailed;
  int64_t events_sent = 0;
};

// Writes Open(), then `first` (updates already received), then follows `run`
// until it ends. Heartbeats are timed by `clock` from the stream's start.
// When the client goes away, `run` is cancelled at once. When `stop` becomes
// true, the stream ends with an `error` (unavailable) and `done` cancelled.
ChatStreamResult RunChatStream(RunStream& run, ChatStreamEncoder& encoder,
                               std::vector<agentstream::v1::Update> first,
                               EventSink& sink, const Clock& clock,
                               const ChatStreamOptions& options,
                               const std::atomic<bool>& stop);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_CHAT_STREAM_H_
