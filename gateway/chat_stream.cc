#include "gateway/chat_stream.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/update_json.h"
#include "gateway/http_status.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;

using OrderedJson = nlohmann::ordered_json;

std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The update's wire JSON, naming the stream's request id whatever the
// producer set (UpdateToJson keeps the key's place).
OrderedJson WireJson(const Update& update, const std::string& request_id) {
  OrderedJson out = UpdateToJson(update);
  out["request_id"] = request_id;
  return out;
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

std::string DoneStatusName(DoneStatus status) {
  switch (status) {
    case DoneStatus::kComplete:
      return "complete";
    case DoneStatus::kCancelled:
      return "cancelled";
    case DoneStatus::kFailed:
      return "failed";
  }
  return "failed";
}

ChatStreamEncoder::ChatStreamEncoder(std::string request_id,
                                     HeartbeatStyle heartbeat, int64_t retry_ms,
                                     std::optional<uint64_t> resumed_after)
    : request_id_(std::move(request_id)),
      heartbeat_(heartbeat),
      retry_ms_(retry_ms),
      resumed_after_(resumed_after),
      last_seq_(resumed_after.value_or(0)) {}

std::string ChatStreamEncoder::Open() const {
  OrderedJson data = {{"type", "connected"},
                      {"status", resumed_after_ ? "resumed" : "connected"},
                      {"request_id", request_id_}};
  if (resumed_after_) data["after_seq"] = *resumed_after_;
  return absl::StrCat(
      EncodeRetry(retry_ms_),
      EncodeEvent(absl::StrCat(request_id_, ":", resumed_after_.value_or(0)),
                  "connected", Dump(data)));
}

int ChatStreamEncoder::AppendUpdate(const Update& update, std::string* out) {
  // Every payload names the stream's request id, whatever the producer set.
  const std::string data = Dump(WireJson(update, request_id_));
  last_seq_ = std::max<uint64_t>(last_seq_, update.seq());
  out->append(EncodeEvent(absl::StrCat(request_id_, ":", update.seq()),
                          "message", data));
  switch (update.kind_case()) {
    case Update::kError:
      out->append(EncodeEvent("", "error", data));
      return 2;
    case Update::kTimeout:
      out->append(EncodeEvent("", "timeout", data));
      return 2;
    case Update::kComplete:
      saw_complete_ = true;
      if (update.complete().outcome() == agentstream::v1::OUTCOME_CANCELLED) {
        saw_cancelled_ = true;
      }
      return 1;
    case Update::kStatus:
      if (update.status().status() == agentstream::v1::RUN_STATUS_CANCELLED) {
        saw_cancelled_ = true;
      }
      return 1;
    default:
      return 1;
  }
}

std::string ChatStreamEncoder::Error(std::string_view code,
                                     std::string_view message,
                                     bool retryable) const {
  const OrderedJson data = {
      {"type", "error"},    {"request_id", request_id_}, {"code", code},
      {"message", message}, {"retryable", retryable},    {"source", "gateway"},
  };
  return EncodeEvent("", "error", Dump(data));
}

std::string ChatStreamEncoder::Failure(const absl::Status& status) const {
  return Error(ErrorCodeName(status.code()), std::string(status.message()),
               IsRetryable(status.code()));
}

std::string ChatStreamEncoder::Gap(const absl::Status& status) const {
  const std::string point = absl::StrCat(request_id_, ":", last_seq_);
  std::string message;
  if (status.code() == absl::StatusCode::kNotFound) {
    message = absl::StrCat(
        "run ", request_id_,
        " is no longer known to the orchestrator (it ended too long ago, or "
        "the orchestrator restarted): the updates after ",
        point, " cannot be replayed; start the question again");
  } else {
    message =
        absl::StrCat("the run's log no longer holds the updates after ", point,
                     " (", std::string(status.message()),
                     "): they cannot be replayed; start the question again");
  }
  return Error("gap", message, false);
}

std::string ChatStreamEncoder::Heartbeat() const {
  return EncodeHeartbeat(
      heartbeat_,
      Dump(OrderedJson{{"type", "heartbeat"}, {"request_id", request_id_}}));
}

std::string ChatStreamEncoder::Done(DoneStatus status) const {
  const OrderedJson data = {{"type", "done"},
                            {"status", DoneStatusName(status)},
                            {"request_id", request_id_}};
  return EncodeEvent("", "done", Dump(data));
}

DoneStatus ChatStreamEncoder::FinalStatusFromUpdates() const {
  if (saw_cancelled_) return DoneStatus::kCancelled;
  return saw_complete_ ? DoneStatus::kComplete : DoneStatus::kFailed;
}

std::string GapStream(const ChatStreamEncoder& encoder,
                      const absl::Status& status) {
  return absl::StrCat(encoder.Open(), encoder.Gap(status),
                      encoder.Done(DoneStatus::kFailed));
}

namespace {

// Counts into the result and, live, into the gateway's metrics.
class StreamCounter {
 public:
  StreamCounter(ChatStreamResult& result, GatewayMetrics* metrics)
      : result_(result), metrics_(metrics) {}
  void Events(int64_t n) {
    result_.events_sent += n;
    if (metrics_ != nullptr) metrics_->events_sent_total.fetch_add(n);
  }
  void Heartbeat() {
    ++result_.heartbeats_sent;
    if (metrics_ != nullptr) metrics_->heartbeats_sent_total.fetch_add(1);
  }
  void Ending(CallEnding ending) {
    result_.ending = ending;
    if (metrics_ == nullptr) return;
    switch (ending) {
      case CallEnding::kGap:
        metrics_->gaps_total.fetch_add(1);
        break;
      case CallEnding::kSlowConsumer:
        metrics_->slow_consumer_cutoffs_total.fetch_add(1);
        break;
      case CallEnding::kUpstreamLost:
        metrics_->upstream_failures_total.fetch_add(1);
        break;
      default:
        break;
    }
  }

 private:
  ChatStreamResult& result_;
  GatewayMetrics* const metrics_;
};

// The bytes that end a stream whose call ended with `status` (after every
// update was sent), and how it ends.
StreamEnd AppendEnding(const absl::Status& status, ChatStreamEncoder& encoder,
                       StreamCounter& counter, ChatStreamResult& result,
                       std::string* buffer) {
  const CallEnding ending = ClassifyCallEnding(status, encoder.resumed());
  counter.Ending(ending);
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
          true));
      counter.Events(1);
      return StreamEnd::kReconnect;
    case CallEnding::kUpstreamLost:
      buffer->append(encoder.Error(
          "unavailable",
          absl::StrCat("lost the orchestrator (", std::string(status.message()),
                       "); ", resume_hint),
          true));
      counter.Events(1);
      return StreamEnd::kReconnect;
    case CallEnding::kGap:
      buffer->append(encoder.Gap(status));
      counter.Events(1);
      result.done = DoneStatus::kFailed;
      break;
    case CallEnding::kCancelled:
      buffer->append(encoder.Failure(status));
      counter.Events(1);
      result.done = DoneStatus::kCancelled;
      break;
    case CallEnding::kFailed:
      buffer->append(encoder.Failure(status));
      counter.Events(1);
      result.done = DoneStatus::kFailed;
      break;
  }
  buffer->append(encoder.Done(result.done));
  counter.Events(1);
  return StreamEnd::kDone;
}

}  // namespace

ChatStreamResult RunChatStream(RunStream& run, ChatStreamEncoder& encoder,
                               std::vector<Update> first, EventSink& sink,
                               const Clock& clock,
                               const ChatStreamOptions& options,
                               const std::atomic<bool>& stop) {
  ChatStreamResult result;
  StreamCounter counter(result, options.metrics);
  std::string buffer = encoder.Open();
  counter.Events(1);
  std::vector<Update> batch = std::move(first);
  const absl::Duration heartbeat =
      std::max(options.heartbeat_interval, absl::Milliseconds(1));
  absl::Time next_heartbeat = clock.Now() + heartbeat;
  absl::Time next_peer_check = clock.Now() + options.poll_interval;

  auto client_gone = [&]() {
    run.Cancel();
    result.end = StreamEnd::kClientGone;
    result.done = DoneStatus::kCancelled;
    return result;
  };

  while (true) {
    bool finished = false;
    for (const Update& update : batch) {
      counter.Events(encoder.AppendUpdate(update, &buffer));
      if (encoder.saw_complete()) break;  // Nothing follows the final update.
    }
    batch.clear();
    if (encoder.saw_complete()) {
      result.done = encoder.FinalStatusFromUpdates();
      buffer.append(encoder.Done(result.done));
      counter.Events(1);
      finished = true;
    }
    if (!buffer.empty()) {
      // Everything queued goes out in one write.
      if (!sink.Write(buffer)) return client_gone();
      buffer.clear();
    }
    if (finished) {
      if (!run.WaitFinished(options.finish_grace)) run.Cancel();
      return result;
    }
    // A busy stream checks for a gone client too, not only an idle one.
    if (const absl::Time now = clock.Now(); now >= next_peer_check) {
      if (sink.PeerGone()) return client_gone();
      next_peer_check = now + options.poll_interval;
    }

    if (stop.load(std::memory_order_relaxed)) {
      // Only this call ends: the run goes on in the orchestrator, and the
      // client resumes it through another gateway.
      run.Cancel();
      buffer = encoder.Error(
          "unavailable",
          absl::StrCat(
              "the gateway is shutting down; reconnect (Last-Event-ID: ",
              encoder.request_id(), ":", encoder.last_seq(), ") to resume"),
          true);
      counter.Events(1);
      sink.Write(buffer);
      result.end = StreamEnd::kStopped;
      return result;
    }

    const absl::Time now = clock.Now();
    if (now >= next_heartbeat) {
      buffer = encoder.Heartbeat();
      counter.Heartbeat();
      next_heartbeat = now + heartbeat;
      continue;
    }
    const absl::Duration wait =
        std::min(options.poll_interval, next_heartbeat - now);
    switch (run.Wait(wait, &batch)) {
      case RunStream::Next::kUpdates:
        break;
      case RunStream::Next::kTimeout:
        if (sink.PeerGone()) return client_gone();
        next_peer_check = clock.Now() + options.poll_interval;
        break;
      case RunStream::Next::kFinished: {
        result.end =
            AppendEnding(run.status(), encoder, counter, result, &buffer);
        if (!sink.Write(buffer)) return client_gone();
        return result;
      }
    }
  }
}

}  // namespace agentstream::gateway
