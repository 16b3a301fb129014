// A chat stream that holds no thread while it waits (docs/GATEWAY.md,
// "Threads"). Its ChatStreamPump is driven by events: the gRPC call's
// listener (updates arrived, the call ended), the HTTP exchange's (the
// client read what was queued, or went away), the timer queue (a heartbeat
// is due) and the gateway's stop. Whichever thread brings the news runs the
// pump; news that arrives meanwhile makes that thread run it again, so the
// pump has one driver at a time and no news is lost.
//
// Flow control end to end: a stream takes the call's queued updates only
// when the client's connection has room (Exchange::Write does not say
// kFull); while it does not, the call's queue fills, the call stops reading,
// and gRPC's flow control holds the orchestrator back, which cuts the
// follower off as a slow consumer if it falls too far behind.
#ifndef AGENTSTREAM_GATEWAY_LIVE_STREAM_H_
#define AGENTSTREAM_GATEWAY_LIVE_STREAM_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/http/server.h"
#include "gateway/chat_stream.h"
#include "gateway/client_limits.h"
#include "gateway/gzip.h"
#include "gateway/metrics.h"
#include "gateway/orchestrator_client.h"
#include "gateway/timer_queue.h"

namespace agentstream::gateway {

// Everything a streaming response needs. It holds one of the --max-streams
// slots and one of its client's stream slots until destroyed.
struct StreamState {
  StreamState(GatewayMetrics& m, std::unique_ptr<ClientLimiter::StreamSlot> c,
              std::unique_ptr<RunStream> r, std::unique_ptr<StreamEncoder> e)
      : metrics(m),
        client_slot(std::move(c)),
        run(std::move(r)),
        encoder(std::move(e)) {}
  ~StreamState() { metrics.streams_open.fetch_sub(1); }
  GatewayMetrics& metrics;
  std::unique_ptr<ClientLimiter::StreamSlot> client_slot;
  std::unique_ptr<RunStream> run;
  // Our wire or a dialect's (stream_encoder.h).
  std::unique_ptr<StreamEncoder> encoder;
  std::vector<agentstream::v1::Update> first;
  // Set when the response is gzip-encoded (gzip.h): every write goes
  // through it.
  std::unique_ptr<GzipStream> gzip;
};

// What every live stream of a gateway shares.
struct LiveStreamContext {
  GatewayMetrics* metrics = nullptr;
  TimerQueue* timers = nullptr;
  const Clock* clock = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  ChatStreamOptions options;
};

// How a stream's response starts, decided without waiting: the opener
// looks at what the call has (RunStream::Wait or WaitOpening with a zero
// timeout) and either answers the exchange (an error, 204, a gap stream),
// or starts the SSE response (Exchange::StartStream) and leaves the updates
// it took in `state.first`, or waits for more news. `timed_out`: the
// opening deadline has passed, so it must decide now.
enum class OpenResult { kWaiting, kStreaming, kAnswered };
using StreamOpener =
    std::function<OpenResult(StreamState& state, bool timed_out)>;

// Thread-safe.
class LiveStream final : public std::enable_shared_from_this<LiveStream> {
 public:
  // Follows `state` on `exchange`, whose stream (200 and headers) has
  // started, once Begin() is called. `on_end` is called once when the stream
  // has ended (from whichever thread ended it; the stream is still alive
  // then).
  // Until `opener` says kStreaming (or answers), the stream is opening; it
  // must decide by `opening_deadline`.
  LiveStream(std::shared_ptr<http::Exchange> exchange,
             std::shared_ptr<StreamState> state,
             const LiveStreamContext& context, StreamOpener opener,
             absl::Time opening_deadline,
             std::function<void(LiveStream*)> on_end);

  // Starts listening to the call and the exchange, and runs the opener.
  void Begin();
  // Runs the pump with whatever news there is. Never blocks.
  void Kick();

 private:
  std::function<void()> Kicker();
  // Runs the pump until it waits for news; called by one thread at a time.
  void Drive();
  void ArmTimer(absl::Time at);
  void Finish();
  // The hop histogram (docs/METRICS.md): the emitted_at of updates whose
  // events are in pending_, observed once pending_ is handed to the write.
  void NoteEmitted(const std::vector<agentstream::v1::Update>& updates);
  void Written();

  const LiveStreamContext& context_;
  std::shared_ptr<http::Exchange> exchange_;
  std::shared_ptr<StreamState> state_;
  ChatStreamPump pump_;
  StreamOpener opener_;  // Null once the response started.
  const absl::Time opening_deadline_;
  std::function<void(LiveStream*)> on_end_;

  absl::Mutex mu_;
  bool driving_ ABSL_GUARDED_BY(mu_) = false;
  bool again_ ABSL_GUARDED_BY(mu_) = false;

  // Drive()'s own (one driver at a time).
  std::string pending_;
  bool pending_encoded_ = false;  // pending_ went through state_->gzip.
  std::string scratch_;           // The compressor's output.
  std::vector<agentstream::v1::Update> batch_;
  std::vector<int64_t> pending_emitted_;  // Of the updates in pending_.
  absl::Time timer_at_ = absl::InfinitePast();
  bool finished_ = false;
  bool answered_ = false;  // The opener answered: no stream was started.
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_LIVE_STREAM_H_
