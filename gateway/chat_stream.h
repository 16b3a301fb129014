// One chat stream on the SSE wire (docs/GATEWAY.md, "The wire"), without
// sockets: ChatStreamEncoder turns a run's updates into SSE text, and
// RunChatStream drives a RunStream (Run or Attach) into an EventSink until the
// run ends, the call ends, the client goes away or the server stops.
//
//   retry: <ms>
//   id: <rid>:0      event: connected   data: {"type":"connected",
//                                        "status":"connected",...}
//   id: <rid>:<N>    event: connected   data: {...,"status":"resumed",
//                                        "after_seq":N}  (a resumed stream)
//   id: <rid>:<seq>  event: message     data: UpdateToJson(update)
//   (no id)          event: error|timeout  (the same data, for `error` and
//                                        `timeout` updates, right after)
//   (no id)          event: error       data: {"type":"error","code":...,
//                                        "retryable":..,"source":"gateway"}
//   (no id)          : heartbeat  or  event: heartbeat
//   (no id)          event: done        data: {"type":"done","status":...}
//
// With batching (StreamFormat::batch), the updates go as
//   id: <rid>:<last seq inside>  event: batch
//                     data: {"type":"batch","request_id":...,"updates":[...]}
// followed by the named copies of the error/timeout updates inside; a
// batch goes once it holds batch_max updates, its oldest waited batch_ms,
// or it holds an error, timeout or complete, and before any ending.
//
// Named copies, heartbeats, errors and `done` carry no id so that they never
// move the client's resume point (EventSource keeps the last id it saw).
//
// `done` is sent only for a final outcome. EventSource reconnects whenever a
// response ends, so a stream that the client should resume (cut off as a
// slow consumer, orchestrator lost, gateway stopping) ends after its `error`
// event without `done`, and the reconnect (Last-Event-ID) resumes it.
#ifndef AGENTSTREAM_GATEWAY_CHAT_STREAM_H_
#define AGENTSTREAM_GATEWAY_CHAT_STREAM_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agentstream/v1/update.pb.h"
#include "common/clock.h"
#include "gateway/metrics.h"
#include "gateway/orchestrator_client.h"
#include "gateway/sse_encoder.h"
#include "gateway/stream_encoder.h"
#include "gateway/stream_format.h"

namespace agentstream::gateway {

// How the gRPC call's final status ends the SSE stream.
enum class CallEnding {
  kFinal,         // OK: `done` from the updates.
  kSlowConsumer,  // RESOURCE_EXHAUSTED "slow_consumer:...": error, no done.
  kGap,           // OUT_OF_RANGE (or NOT_FOUND on a resume): error gap +
                  // done failed.
  kUpstreamLost,  // UNAVAILABLE, DEADLINE_EXCEEDED: error unavailable, no
                  // done.
  kCancelled,     // CANCELLED: error + done cancelled.
  kFailed,        // Anything else: error + done failed.
};
// `resumed`: the stream was asked to resume from a point (an unknown run is
// then a gap).
CallEnding ClassifyCallEnding(const absl::Status& status, bool resumed);

// Our own wire (the comment above). Not thread-safe; one per stream.
class ChatStreamEncoder final : public StreamEncoder {
 public:
  // `resumed_after`: the stream resumes a run after that seq; its
  // `connected` event then carries that id, so the resume point never moves
  // back.
  // `format`: heartbeats, the update types sent (the others are read, for
  // how the run ends, but not sent) and batching (stream_format.h).
  ChatStreamEncoder(std::string request_id, StreamFormat format,
                    int64_t retry_ms,
                    std::optional<uint64_t> resumed_after = std::nullopt);

  // `retry:` and the `connected` event (with the client's correlation id,
  // when set).
  std::string Open() override;
  void set_correlation_id(std::string id) { correlation_id_ = std::move(id); }
  // One update (and its named copy for error/timeout).
  int AppendUpdate(const agentstream::v1::Update& update,
                   std::string* out) override;
  bool batch_pending() const override { return batch_count_ > 0; }
  bool batch_due() const override { return batch_due_; }
  absl::Duration batch_max_wait() const override {
    return format_.batch.max_wait;
  }
  int FlushBatch(std::string* out) override;
  const StreamFormat& format() const { return format_; }
  // An `error` event from the gateway (no id), final or not.
  std::string Error(std::string_view code, std::string_view message,
                    bool retryable, bool final = true) const override;
  std::string Heartbeat() const override;
  std::string Done(DoneStatus status) override;

 private:
  // Replaces data_ (the update's JSON) by its compressed envelope.
  void CompressData(const agentstream::v1::Update& update);

  std::string correlation_id_;
  const StreamFormat format_;
  const int64_t retry_ms_;
  const std::optional<uint64_t> resumed_after_;
  // The pending batch: its updates' JSON, comma-separated; the named copies
  // that follow it; the seq of its last update.
  std::string batch_json_;
  std::string batch_copies_;
  int batch_count_ = 0;
  int batch_copy_events_ = 0;
  uint64_t batch_last_seq_ = 0;
  bool batch_due_ = false;
  // Scratch space of AppendUpdate, kept between updates.
  std::string data_;
  std::string id_;
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
  // How often RunChatStream (the thread-driven form, for tests and tools)
  // checks for a gone client and for `stop`; the gateway's live streams
  // are told by events instead.
  absl::Duration poll_interval = absl::Milliseconds(200);
  // After `complete`, how long to let the call end by itself before it is
  // cancelled.
  absl::Duration finish_grace = absl::Milliseconds(500);
  // Counted live when set: events_sent_total, heartbeats_sent_total,
  // gaps_total, slow_consumer_cutoffs_total, upstream_failures_total.
  GatewayMetrics* metrics = nullptr;
};

enum class StreamEnd {
  kDone,        // `done` was sent.
  kReconnect,   // Ended after an error, without `done`: the client resumes.
  kClientGone,  // The client went away; the call was cancelled.
  kStopped,     // The gateway is stopping: error, no `done`.
};

struct ChatStreamResult {
  StreamEnd end = StreamEnd::kDone;
  DoneStatus done = DoneStatus::kFailed;  // Meaningful for kDone.
  CallEnding ending = CallEnding::kFinal;
  int64_t events_sent = 0;
  int64_t heartbeats_sent = 0;
};

// The stream's logic without waiting: its driver takes what the run has
// (RunStream::Wait), passes it in with the time, writes what the pump
// appended to `out`, and tells it when the client is gone. RunChatStream
// below drives one on a thread; the gateway drives one from events
// (gateway/live_stream.h), so that a stream holds no thread while it waits.
// Not thread-safe; one driver at a time.
class ChatStreamPump final {
 public:
  // `clock` times heartbeats and batches.
  ChatStreamPump(RunStream& run, StreamEncoder& encoder,
                 const ChatStreamOptions& options, const Clock& clock);

  // `retry`, `connected` and `first` (updates already received). Once,
  // before anything else.
  void Open(std::vector<agentstream::v1::Update> first, std::string* out);
  // What the driver took from the run: kUpdates with `batch` (consumed), or
  // kFinished (the pump reads run.status()); kTimeout adds nothing.
  void Take(RunStream::Next next, std::vector<agentstream::v1::Update>* batch,
            std::string* out);
  // A heartbeat when one is due at `now`, and the pending batch when its
  // wait is over; with `stop`, the gateway's shutdown ending (the call is
  // cancelled, the run is not).
  void Tick(absl::Time now, bool stop, std::string* out);
  // The client is gone: the call (not the run) is cancelled at once.
  void ClientGone();

  bool ended() const { return ended_; }
  // Ended on the run's `complete` update: the call may still be open; give
  // it `finish_grace` to end by itself, then cancel it.
  bool ended_on_complete() const { return ended_on_complete_; }
  absl::Time next_heartbeat() const { return next_heartbeat_; }
  // When Tick has something to do next: a heartbeat, or a batch's wait.
  absl::Time next_wake() const;
  const ChatStreamResult& result() const { return result_; }

 private:
  void Count(int64_t events);
  void End(StreamEnd end);
  // Sends the pending batch, if any.
  int64_t Flush(std::string* out);

  RunStream& run_;
  StreamEncoder& encoder_;
  const Clock& clock_;
  absl::Time batch_since_ = absl::InfiniteFuture();  // Its oldest update.
  const ChatStreamOptions& options_;
  const absl::Duration heartbeat_;
  absl::Time next_heartbeat_;
  ChatStreamResult result_;
  bool ended_ = false;
  bool ended_on_complete_ = false;
};

// Writes Open(), then `first` (updates already received), then follows `run`
// until it ends. Heartbeats are timed by `clock` from the stream's start.
// When the client goes away, the call (not the run) is cancelled at once.
// When `stop` becomes true, the stream ends with an `error` (unavailable,
// retryable) and no `done`; the call is cancelled, the run is not.
ChatStreamResult RunChatStream(RunStream& run, StreamEncoder& encoder,
                               std::vector<agentstream::v1::Update> first,
                               EventSink& sink, const Clock& clock,
                               const ChatStreamOptions& options,
                               const std::atomic<bool>& stop);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_CHAT_STREAM_H_
