#include "gateway/chat_stream.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/update_json.h"
#include "gateway/gzip.h"
#include "gateway/http_status.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;

using OrderedJson = nlohmann::ordered_json;

std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

CallEnding ClassifyCallEnding(const absl::Status& status, bool resumed) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return CallEnding::kFinal;
    case absl::StatusCode::kResourceExhausted:
      if (absl::StartsWith(status.message(), "slow_consumer")) {
        return CallEnding::kSlowConsumer;
      }
      return CallEnding::kFailed;
    case absl::StatusCode::kOutOfRange:
      return CallEnding::kGap;
    case absl::StatusCode::kNotFound:
      return resumed ? CallEnding::kGap : CallEnding::kFailed;
    case absl::StatusCode::kCancelled:
      return CallEnding::kCancelled;
    default:
      return IsRetryable(status.code()) ? CallEnding::kUpstreamLost
                                        : CallEnding::kFailed;
  }
}

ChatStreamEncoder::ChatStreamEncoder(std::string request_id,
                                     StreamFormat format, int64_t retry_ms,
                                     std::optional<uint64_t> resumed_after)
    : StreamEncoder(std::move(request_id), resumed_after.has_value(),
                    resumed_after.value_or(0)),
      format_(std::move(format)),
      retry_ms_(retry_ms),
      resumed_after_(resumed_after) {}

std::string ChatStreamEncoder::Open() {
  OrderedJson data = {{"type", "connected"},
                      {"status", resumed_after_ ? "resumed" : "connected"},
                      {"request_id", request_id()}};
  if (resumed_after_) data["after_seq"] = *resumed_after_;
  if (!correlation_id_.empty()) data["correlation_id"] = correlation_id_;
  return absl::StrCat(
      EncodeRetry(retry_ms_),
      EncodeEvent(absl::StrCat(request_id(), ":", resumed_after_.value_or(0)),
                  "connected", Dump(data)));
}

int ChatStreamEncoder::AppendUpdate(const Update& update, std::string* out) {
  // How the run ends is read from every update, sent or not.
  Observe(update);
  if (!format_.types.Sends(update)) return 0;
  // Every payload names the stream's request id, whatever the producer set.
  // Encoded once, without a JSON document (docs/BENCHMARKS.md).
  data_.clear();
  AppendUpdateJson(update, request_id(), &data_);
  if (format_.compress && data_.size() > format_.compress_min_bytes) {
    CompressData(update);
  }
  if (format_.batch.on()) {
    if (batch_count_ > 0) batch_json_.push_back(',');
    batch_json_.append(data_);
    ++batch_count_;
    batch_last_seq_ = update.seq();
    switch (update.kind_case()) {
      case Update::kError:
        AppendEvent("", "error", data_, &batch_copies_);
        ++batch_copy_events_;
        batch_due_ = true;
        break;
      case Update::kTimeout:
        AppendEvent("", "timeout", data_, &batch_copies_);
        ++batch_copy_events_;
        batch_due_ = true;
        break;
      case Update::kComplete:
        batch_due_ = true;
        break;
      default:
        break;
    }
    if (batch_count_ >= format_.batch.max_updates) batch_due_ = true;
    return 0;
  }
  id_.clear();
  absl::StrAppend(&id_, request_id(), ":", update.seq());
  AppendEvent(id_, "message", data_, out);
  switch (update.kind_case()) {
    case Update::kError:
      AppendEvent("", "error", data_, out);
      return 2;
    case Update::kTimeout:
      AppendEvent("", "timeout", data_, out);
      return 2;
    default:
      return 1;
  }
}

void ChatStreamEncoder::CompressData(const Update& update) {
  const std::string gzipped = GzipOnce(data_);
  if (gzipped.empty()) return;  // zlib failed: sent as it is.
  // The envelope stays readable: a client routes and dedupes by it without
  // decompressing (docs/GATEWAY.md, "Compression").
  OrderedJson envelope = {{"type", UpdateType(update)},
                          {"request_id", request_id()},
                          {"seq", update.seq()}};
  if (!update.specialist().empty())
    envelope["specialist"] = update.specialist();
  envelope["compressed"] = true;
  envelope["encoding"] = "gzip";
  envelope["data"] = absl::Base64Escape(gzipped);
  data_ = Dump(envelope);
}

int ChatStreamEncoder::FlushBatch(std::string* out) {
  if (batch_count_ == 0) return 0;
  data_.clear();
  absl::StrAppend(&data_, R"({"type":"batch","request_id":)",
                  nlohmann::json(request_id()).dump(), R"(,"updates":[)",
                  batch_json_, "]}");
  id_.clear();
  absl::StrAppend(&id_, request_id(), ":", batch_last_seq_);
  AppendEvent(id_, "batch", data_, out);
  out->append(batch_copies_);
  const int events = 1 + batch_copy_events_;
  batch_json_.clear();
  batch_copies_.clear();
  batch_count_ = 0;
  batch_copy_events_ = 0;
  batch_due_ = false;
  return events;
}

std::string ChatStreamEncoder::Error(std::string_view code,
                                     std::string_view message, bool retryable,
                                     bool /*final*/) const {
  const OrderedJson data = {
      {"type", "error"},    {"request_id", request_id()}, {"code", code},
      {"message", message}, {"retryable", retryable},     {"source", "gateway"},
  };
  return EncodeEvent("", "error", Dump(data));
}

std::string ChatStreamEncoder::Heartbeat() const {
  return EncodeHeartbeat(
      format_.heartbeat,
      Dump(OrderedJson{{"type", "heartbeat"}, {"request_id", request_id()}}));
}

std::string ChatStreamEncoder::Done(DoneStatus status) {
  const OrderedJson data = {{"type", "done"},
                            {"status", DoneStatusName(status)},
                            {"request_id", request_id()}};
  return EncodeEvent("", "done", Dump(data));
}

namespace {

// The bytes that end a stream whose call ended with `status` (after every
// update was sent), and how it ends. Returns the events appended.
StreamEnd AppendEnding(const absl::Status& status, StreamEncoder& encoder,
                       ChatStreamResult& result, int64_t* events,
                       std::string* buffer) {
  const CallEnding ending = ClassifyCallEnding(status, encoder.resumed());
  result.ending = ending;
  const std::string resume_hint =
      absl::StrCat("reconnect with Last-Event-ID: ", encoder.request_id(), ":",
                   encoder.last_seq(), " to resume");
  switch (ending) {
    case CallEnding::kFinal:
      result.done = encoder.FinalStatusFromUpdates();
      break;
    case CallEnding::kSlowConsumer:
      buffer->append(encoder.Error(
          "slow_consumer",
          absl::StrCat("this stream fell too far behind the run and was cut "
                       "off; ",
                       resume_hint),
          true, /*final=*/false));
      *events += 1;
      return StreamEnd::kReconnect;
    case CallEnding::kUpstreamLost:
      buffer->append(encoder.Error(
          "unavailable",
          absl::StrCat("lost the orchestrator (", std::string(status.message()),
                       "); ", resume_hint),
          true, /*final=*/false));
      *events += 1;
      return StreamEnd::kReconnect;
    case CallEnding::kGap:
      buffer->append(encoder.Gap(status));
      *events += 1;
      result.done = DoneStatus::kFailed;
      break;
    case CallEnding::kCancelled:
      buffer->append(encoder.Failure(status));
      *events += 1;
      result.done = DoneStatus::kCancelled;
      break;
    case CallEnding::kFailed:
      buffer->append(encoder.Failure(status));
      *events += 1;
      result.done = DoneStatus::kFailed;
      break;
  }
  buffer->append(encoder.Done(result.done));
  *events += 1;
  return StreamEnd::kDone;
}

}  // namespace

ChatStreamPump::ChatStreamPump(RunStream& run, StreamEncoder& encoder,
                               const ChatStreamOptions& options,
                               const Clock& clock)
    : run_(run),
      encoder_(encoder),
      clock_(clock),
      options_(options),
      heartbeat_(std::max(options.heartbeat_interval, absl::Milliseconds(1))),
      next_heartbeat_(clock.Now() + heartbeat_) {}

absl::Time ChatStreamPump::next_wake() const {
  if (!encoder_.batch_pending()) return next_heartbeat_;
  return std::min(next_heartbeat_, batch_since_ + encoder_.batch_max_wait());
}

int64_t ChatStreamPump::Flush(std::string* out) {
  batch_since_ = absl::InfiniteFuture();
  return encoder_.FlushBatch(out);
}

void ChatStreamPump::Count(int64_t events) {
  result_.events_sent += events;
  if (options_.metrics != nullptr) {
    options_.metrics->events_sent_total.fetch_add(events);
  }
}

void ChatStreamPump::End(StreamEnd end) {
  ended_ = true;
  result_.end = end;
  if (options_.metrics == nullptr) return;
  switch (result_.ending) {
    case CallEnding::kGap:
      options_.metrics->gaps_total.fetch_add(1);
      break;
    case CallEnding::kSlowConsumer:
      options_.metrics->slow_consumer_cutoffs_total.fetch_add(1);
      break;
    case CallEnding::kUpstreamLost:
      options_.metrics->upstream_failures_total.fetch_add(1);
      break;
    default:
      break;
  }
}

void ChatStreamPump::Open(std::vector<Update> first, std::string* out) {
  out->append(encoder_.Open());
  Count(1);
  Take(RunStream::Next::kUpdates, &first, out);
}

void ChatStreamPump::Take(RunStream::Next next, std::vector<Update>* batch,
                          std::string* out) {
  if (ended_) return;
  switch (next) {
    case RunStream::Next::kTimeout:
      return;
    case RunStream::Next::kUpdates: {
      int64_t events = 0;
      for (const Update& update : *batch) {
        const bool was_empty = !encoder_.batch_pending();
        events += encoder_.AppendUpdate(update, out);
        if (encoder_.batch_due()) {
          events += Flush(out);
        } else if (was_empty && encoder_.batch_pending()) {
          batch_since_ = clock_.Now();
        }
        if (encoder_.saw_complete()) break;  // Nothing follows the final one.
      }
      batch->clear();
      if (encoder_.saw_complete()) {
        result_.done = encoder_.FinalStatusFromUpdates();
        out->append(encoder_.Done(result_.done));
        events += 1;
        ended_on_complete_ = true;
        Count(events);
        End(StreamEnd::kDone);
        return;
      }
      Count(events);
      return;
    }
    case RunStream::Next::kFinished: {
      int64_t events = Flush(out);
      const StreamEnd end =
          AppendEnding(run_.status(), encoder_, result_, &events, out);
      Count(events);
      End(end);
      return;
    }
  }
}

void ChatStreamPump::Tick(absl::Time now, bool stop, std::string* out) {
  if (ended_) return;
  if (stop) {
    // Only this call ends: the run goes on in the orchestrator, and the
    // client resumes it through another gateway.
    run_.Cancel();
    Count(Flush(out));
    out->append(encoder_.Error(
        "unavailable",
        absl::StrCat("the gateway is shutting down; reconnect (Last-Event-ID: ",
                     encoder_.request_id(), ":", encoder_.last_seq(),
                     ") to resume"),
        true, /*final=*/false));
    Count(1);
    End(StreamEnd::kStopped);
    return;
  }
  if (encoder_.batch_pending() &&
      now >= batch_since_ + encoder_.batch_max_wait()) {
    Count(Flush(out));
  }
  if (now < next_heartbeat_) return;
  out->append(encoder_.Heartbeat());
  ++result_.heartbeats_sent;
  if (options_.metrics != nullptr) {
    options_.metrics->heartbeats_sent_total.fetch_add(1);
  }
  next_heartbeat_ = now + heartbeat_;
}

void ChatStreamPump::ClientGone() {
  if (ended_ && result_.end == StreamEnd::kClientGone) return;
  run_.Cancel();
  ended_ = true;
  ended_on_complete_ = false;
  result_.end = StreamEnd::kClientGone;
  result_.done = DoneStatus::kCancelled;
}

ChatStreamResult RunChatStream(RunStream& run, StreamEncoder& encoder,
                               std::vector<Update> first, EventSink& sink,
                               const Clock& clock,
                               const ChatStreamOptions& options,
                               const std::atomic<bool>& stop) {
  ChatStreamPump pump(run, encoder, options, clock);
  std::string buffer;
  pump.Open(std::move(first), &buffer);
  std::vector<Update> batch;
  absl::Time next_peer_check = clock.Now() + options.poll_interval;
  while (true) {
    if (!buffer.empty()) {
      // Everything queued goes out in one write.
      if (!sink.Write(buffer)) {
        pump.ClientGone();
        return pump.result();
      }
      buffer.clear();
    }
    if (pump.ended()) {
      if (pump.ended_on_complete() && !run.WaitFinished(options.finish_grace)) {
        run.Cancel();
      }
      return pump.result();
    }
    // A busy stream checks for a gone client too, not only an idle one.
    if (const absl::Time now = clock.Now(); now >= next_peer_check) {
      if (sink.PeerGone()) {
        pump.ClientGone();
        return pump.result();
      }
      next_peer_check = now + options.poll_interval;
    }
    const absl::Time now = clock.Now();
    pump.Tick(now, stop.load(std::memory_order_relaxed), &buffer);
    if (!buffer.empty()) continue;
    const absl::Duration wait =
        std::min(options.poll_interval, pump.next_wake() - now);
    const RunStream::Next next = run.Wait(wait, &batch);
    if (next == RunStream::Next::kTimeout) {
      if (sink.PeerGone()) {
        pump.ClientGone();
        return pump.result();
      }
      next_peer_check = clock.Now() + options.poll_interval;
    }
    pump.Take(next, &batch, &buffer);
  }
}

}  // namespace agentstream::gateway
