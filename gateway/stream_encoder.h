// What a stream's bytes look like: the interface between the stream's driver
// (ChatStreamPump, chat_stream.h), which decides *when* something is sent,
// and the wire dialect, which decides *how* it is written.
//
// Our own wire (ChatStreamEncoder, chat_stream.h; docs/GATEWAY.md, "The
// wire") is one implementation; the agent ecosystem's dialects (AG-UI, the
// AI SDK's UI message stream, A2A; gateway/dialects/, docs/PROTOCOLS.md) are
// the others. They all render the same updates of the same run, so the
// driver's logic (heartbeats, the run's ending, slow consumers, the client
// going away, the gateway stopping) is decided once, in the pump.
//
// Every implementation keeps the resume point in its `id:` fields as
// `<run id>:<seq>` (the seq of the last update whose events are all written
// before that id), so a reconnect with Last-Event-ID resumes on any
// endpoint. Not thread-safe; one per stream.
#ifndef AGENTSTREAM_GATEWAY_STREAM_ENCODER_H_
#define AGENTSTREAM_GATEWAY_STREAM_ENCODER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agentstream/v1/update.pb.h"
#include "common/http/server.h"

namespace agentstream::gateway {

// How a stream ended, as sent in `done` (or its dialect's equivalent).
enum class DoneStatus { kComplete, kCancelled, kFailed };
std::string DoneStatusName(DoneStatus status);

class StreamEncoder {
 public:
  virtual ~StreamEncoder() = default;

  // The response's headers beyond the status line: Content-Type and what the
  // dialect needs (the gateway adds X-Request-Id, caching and gzip).
  virtual void AddHeaders(http::HttpHeaders* headers) const;

  // What opens the stream (our `retry:` + `connected`; a dialect's start).
  // Once, before anything else.
  virtual std::string Open() = 0;
  // One update: appends its events to `out` and returns how many were
  // appended (0 for one not sent, or one held back: a pending batch, or a
  // resume's replay up to its point).
  virtual int AppendUpdate(const agentstream::v1::Update& update,
                           std::string* out) = 0;

  // Batching (our wire only): whether updates wait, whether they must go
  // now, how long the oldest may wait, and the batch's events (returns the
  // events appended; 0 when none wait).
  virtual bool batch_pending() const { return false; }
  virtual bool batch_due() const { return false; }
  virtual absl::Duration batch_max_wait() const {
    return absl::InfiniteDuration();
  }
  virtual int FlushBatch(std::string* /*out*/) { return 0; }

  // An error from the gateway. `final`: nothing but the ending follows (the
  // run failed, was cancelled, or its log lost the resume point); otherwise
  // the stream ends after it for the client to resume (slow consumer,
  // orchestrator lost, gateway stopping), so a dialect whose error event
  // ends its run must not send one then.
  virtual std::string Error(std::string_view code, std::string_view message,
                            bool retryable, bool final) const = 0;
  // The `gap` error: `status` is what the orchestrator answered
  // (OUT_OF_RANGE or NOT_FOUND); the message says what happened and what to
  // do. Final.
  std::string Gap(const absl::Status& status) const;
  // The gRPC call failed after the stream started (code from the status).
  // Final.
  std::string Failure(const absl::Status& status) const;
  virtual std::string Heartbeat() const = 0;
  // The ending of a stream whose run has a final outcome.
  virtual std::string Done(DoneStatus status) = 0;

  // Whether a `complete` update was read, and how the run ended by what was
  // read.
  bool saw_complete() const { return saw_complete_; }
  DoneStatus FinalStatusFromUpdates() const;
  // The seq of the last update read, sent or not (the resume point when
  // none was sent).
  uint64_t last_seq() const { return last_seq_; }
  // The stream resumes a run after a point (an unknown run is then a gap).
  bool resumed() const { return resumed_; }
  const std::string& request_id() const { return request_id_; }
  // "<run id>:<seq>".
  std::string EventId(uint64_t seq) const;

 protected:
  StreamEncoder(std::string request_id, bool resumed, uint64_t last_seq)
      : request_id_(std::move(request_id)),
        resumed_(resumed),
        last_seq_(last_seq) {}
  // Reads how the run ends and moves last_seq(); every AppendUpdate calls
  // it first.
  void Observe(const agentstream::v1::Update& update);

 private:
  const std::string request_id_;
  const bool resumed_;
  uint64_t last_seq_ = 0;
  bool saw_complete_ = false;
  bool saw_cancelled_ = false;
};

// The whole body of a stream that resumes from a point the log no longer
// holds: the opening, the `gap` error and the failed ending.
std::string GapStream(StreamEncoder& encoder, const absl::Status& status);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_STREAM_ENCODER_H_
