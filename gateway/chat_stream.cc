#include "gateway/chat_stream.h"

#include <algorithm>

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
                                     HeartbeatStyle heartbeat, int64_t retry_ms)
    : request_id_(std::move(request_id)),
      heartbeat_(heartbeat),
      retry_ms_(retry_ms) {}

std::string ChatStreamEncoder::Open() const {
  const OrderedJson data = {{"type", "connected"},
                            {"status", "connected"},
                            {"request_id", request_id_}};
  return absl::StrCat(
      EncodeRetry(retry_ms_),
      EncodeEvent(absl::StrCat(request_id_, ":0"), "connected", Dump(data)));
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

std::string ChatStreamEncoder::Failure(const absl::Status& status) const {
  const OrderedJson data = {
      {"type", "error"},
      {"request_id", request_id_},
      {"code", ErrorCodeName(status.code())},
      {"message", std::string(status.message())},
      {"retryable", IsRetryable(status.code())},
      {"source", "gateway"},
  };
  return EncodeEvent("", "error", Dump(data));
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

ChatStreamResult RunChatStream(RunStream& run, ChatStreamEncoder& encoder,
                               std::vector<Update> first, EventSink& sink,
                               const Clock& clock,
                               const ChatStreamOptions& options,
                               const std::atomic<bool>& stop) {
  ChatStreamResult result;
  std::string buffer = encoder.Open();
  result.events_sent = 1;
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
      result.events_sent += encoder.AppendUpdate(update, &buffer);
      if (encoder.saw_complete()) break;  // Nothing follows the final update.
    }
    batch.clear();
    if (encoder.saw_complete()) {
      result.done = encoder.FinalStatusFromUpdates();
      buffer.append(encoder.Done(result.done));
      ++result.events_sent;
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
      run.Cancel();
      buffer = absl::StrCat(encoder.Failure(absl::UnavailableError(
                                "the gateway is shutting down")),
                            encoder.Done(DoneStatus::kCancelled));
      result.events_sent += 2;
      sink.Write(buffer);
      result.end = StreamEnd::kStopped;
      result.done = DoneStatus::kCancelled;
      return result;
    }

    const absl::Time now = clock.Now();
    if (now >= next_heartbeat) {
      buffer = encoder.Heartbeat();
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
        const absl::Status status = run.status();
        if (!status.ok()) {
          buffer.append(encoder.Failure(status));
          ++result.events_sent;
          result.done = status.code() == absl::StatusCode::kCancelled
                            ? DoneStatus::kCancelled
                            : DoneStatus::kFailed;
        } else {
          result.done = encoder.FinalStatusFromUpdates();
        }
        buffer.append(encoder.Done(result.done));
        ++result.events_sent;
        if (!sink.Write(buffer)) return client_gone();
        return result;
      }
    }
  }
}

}  // namespace agentstream::gateway
