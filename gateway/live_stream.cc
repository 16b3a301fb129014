#include "gateway/live_stream.h"

#include <utility>

#include "common/log.h"

namespace agentstream::gateway {

void LiveStream::Begin() {
  {
    // News that comes while the listeners are set (they may run at once)
    // waits for the Kick below: nothing is driven until both are set.
    absl::MutexLock lock(&mu_);
    driving_ = true;
  }
  exchange_->OnClose(Kicker());
  state_->run->SetListener(Kicker());
  {
    absl::MutexLock lock(&mu_);
    driving_ = false;
    again_ = false;
  }
  Kick();
}

LiveStream::LiveStream(std::shared_ptr<http::Exchange> exchange,
                       std::shared_ptr<StreamState> state,
                       const LiveStreamContext& context, StreamOpener opener,
                       absl::Time opening_deadline,
                       std::function<void(LiveStream*)> on_end)
    : context_(context),
      exchange_(std::move(exchange)),
      state_(std::move(state)),
      pump_(*state_->run, *state_->encoder, context_.options, *context_.clock),
      opener_(std::move(opener)),
      opening_deadline_(opening_deadline),
      on_end_(std::move(on_end)) {}

std::function<void()> LiveStream::Kicker() {
  return [weak = weak_from_this()]() {
    if (auto self = weak.lock()) self->Kick();
  };
}

void LiveStream::Kick() {
  // Whoever ends the stream may drop the last other reference.
  const std::shared_ptr<LiveStream> self = shared_from_this();
  {
    absl::MutexLock lock(&mu_);
    if (driving_) {
      again_ = true;
      return;
    }
    driving_ = true;
  }
  while (true) {
    Drive();
    absl::MutexLock lock(&mu_);
    if (!again_) {
      driving_ = false;
      return;
    }
    again_ = false;
  }
}

void LiveStream::Drive() {
  if (finished_) return;
  if (opener_) {
    if (exchange_->closed()) {
      pump_.ClientGone();
      return Finish();
    }
    const bool timed_out = context_.clock->Now() >= opening_deadline_;
    switch (opener_(*state_, timed_out)) {
      case OpenResult::kWaiting:
        ArmTimer(opening_deadline_);
        return;
      case OpenResult::kAnswered:
        opener_ = nullptr;
        answered_ = true;
        return Finish();
      case OpenResult::kStreaming:
        opener_ = nullptr;
        NoteEmitted(state_->first);
        pump_.Open(std::move(state_->first), &pending_);
        break;
    }
  }
  while (!finished_) {
    if (!pending_.empty()) {
      if (state_->gzip != nullptr && !pending_encoded_) {
        // Sync-flushed: the client can decode all of it at once. The last
        // write carries the gzip trailer.
        scratch_.clear();
        if (!state_->gzip->Compress(pending_, pump_.ended(), &scratch_)) {
          pump_.ClientGone();  // Cannot go on encoding: end it as a cut.
          return Finish();
        }
        pending_.swap(scratch_);
        pending_encoded_ = true;
      }
      switch (exchange_->Write(pending_)) {
        case http::Exchange::WriteResult::kOk:
          Written();
          pending_.clear();
          pending_encoded_ = false;
          break;
        case http::Exchange::WriteResult::kFull:
          // Nothing more is taken from the call until the client reads.
          exchange_->NotifyWritable(Kicker());
          return;
        case http::Exchange::WriteResult::kClosed:
          pump_.ClientGone();
          return Finish();
      }
    }
    if (pump_.ended()) return Finish();
    if (exchange_->closed()) {
      pump_.ClientGone();
      return Finish();
    }
    pump_.Tick(context_.clock->Now(), context_.stopping->load(), &pending_);
    if (!pending_.empty() || pump_.ended()) continue;
    const RunStream::Next next =
        state_->run->Wait(absl::ZeroDuration(), &batch_);
    if (next == RunStream::Next::kTimeout) {
      // Idle: the listener, the exchange or the timer brings the next news.
      ArmTimer(pump_.next_wake());
      return;
    }
    NoteEmitted(batch_);
    pump_.Take(next, &batch_, &pending_);
  }
}

void LiveStream::NoteEmitted(
    const std::vector<agentstream::v1::Update>& updates) {
  for (const agentstream::v1::Update& u : updates) {
    pending_emitted_.push_back(u.emitted_at());
  }
}

void LiveStream::Written() {
  GatewayMetrics* m = context_.metrics;
  if (m == nullptr) return;
  m->sse_bytes_sent_total.fetch_add(static_cast<int64_t>(pending_.size()),
                                    std::memory_order_relaxed);
  if (pending_emitted_.empty()) return;
  // One clock read for the whole write.
  metrics::HopBatch hop(m->hop_to_write(), metrics::WallNanos());
  for (int64_t emitted_at : pending_emitted_) hop.Add(emitted_at);
  pending_emitted_.clear();
}

void LiveStream::ArmTimer(absl::Time at) {
  // One entry per stream at a time: a timer due earlier than the one armed
  // (or the first) is scheduled; a later one waits for the armed to fire.
  const absl::Time now = context_.clock->Now();
  if (timer_at_ > now && timer_at_ <= at) return;
  timer_at_ = at;
  context_.timers->Schedule(at, Kicker());
}

void LiveStream::Finish() {
  finished_ = true;
  const ChatStreamResult& result = pump_.result();
  const std::string& rid = state_->encoder->request_id();
  switch (answered_ ? StreamEnd::kDone : result.end) {
    case StreamEnd::kClientGone:
      context_.metrics->client_disconnects_total.fetch_add(1);
      AS_LOG(INFO) << "client of " << rid << " went away after seq "
                   << state_->encoder->last_seq() << "; call cancelled";
      break;
    case StreamEnd::kReconnect:
      AS_LOG(INFO) << "stream of " << rid << " ended after seq "
                   << state_->encoder->last_seq()
                   << " for the client to resume ("
                   << (result.ending == CallEnding::kSlowConsumer
                           ? "slow_consumer"
                           : "orchestrator lost")
                   << ")";
      break;
    default:
      break;
  }
  if (!answered_ && result.end != StreamEnd::kClientGone) exchange_->End();
  if (!answered_ && pump_.ended_on_complete()) {
    // The call usually ends by itself right after `complete`; a lingering
    // one is cancelled after the grace. Only the call waits: the stream's
    // slots are released now.
    std::shared_ptr<RunStream> run(std::move(state_->run));
    if (!run->WaitFinished(absl::ZeroDuration())) {
      context_.timers->Schedule(
          context_.clock->Now() + context_.options.finish_grace,
          [run] { run->Cancel(); });
    }
  }
  // The pump is not used again: what it refers to may go.
  exchange_.reset();
  state_.reset();
  if (on_end_) {
    auto on_end = std::move(on_end_);
    on_end_ = nullptr;
    on_end(this);
  }
}

}  // namespace agentstream::gateway
