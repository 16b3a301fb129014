#include "gateway/replay/replay_plan.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/resume.h"
#include "gateway/stream_format.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::replay {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// The stream format parameters of every endpoint (types, heartbeat, speed),
// and the gateway's ones a recording cannot honour.
absl::Status ParseFormat(const QueryParams& params,
                         const ReplayOptions& options, ReplayRequest* out) {
  for (const char* name : {"batch_max", "batch_ms", "compress"}) {
    auto it = params.find(name);
    // compress=0 asks for nothing a recording lacks.
    if (it != params.end() && !(std::string_view(name) == "compress" &&
                                (it->second == "0" || it->second == "false"))) {
      return absl::InvalidArgumentError(
          absl::StrCat(name,
                       " is not supported by the replay server: a recording is "
                       "replayed as it was recorded (record it with ",
                       name, " instead)"));
    }
  }
  auto types = ParseTypesQuery(params);
  if (!types.ok()) return types.status();
  auto heartbeat = ParseHeartbeatQuery(params);
  if (!heartbeat.ok()) return heartbeat.status();
  auto speed = ParseSpeed(params, options.speed);
  if (!speed.ok()) return speed.status();
  out->types = *std::move(types);
  out->heartbeat = *heartbeat;
  out->speed = *speed;
  return absl::OkStatus();
}

// Whether a stream with `types` sends an update of wire type `type`.
class TypeFilter {
 public:
  explicit TypeFilter(const UpdateTypeSet& types) : all_(types.all()) {
    for (std::string& n : types.Names()) names_.insert(std::move(n));
  }
  bool Sends(std::string_view type) const {
    return all_ || type == "error" || type == "timeout" ||
           names_.count(std::string(type)) > 0;
  }

 private:
  bool all_;
  std::set<std::string> names_;
};

std::string Connected(std::string_view rid, std::optional<uint64_t> after) {
  OrderedJson data = {{"type", "connected"},
                      {"status", after ? "resumed" : "connected"},
                      {"request_id", rid}};
  if (after) data["after_seq"] = *after;
  return EncodeEvent(absl::StrCat(std::string(rid), ":", after.value_or(0)),
                     "connected", Dump(data));
}

// An id'd event as the request gets it: its bytes, or nothing (filtered
// out). A batch keeps the updates after `after` of the types asked for, and
// its id becomes its last one's seq.
std::optional<std::string> IdEvent(const Recording& rec,
                                   const RecordedEvent& ev, uint64_t after,
                                   const TypeFilter& filter) {
  if (ev.type != "batch") {
    if (!filter.Sends(ev.type)) return std::nullopt;
    return EncodeEvent(absl::StrCat(rec.request_id, ":", ev.seq), ev.event,
                       ev.data);
  }
  OrderedJson batch = OrderedJson::parse(ev.data, nullptr, false);
  if (!batch.is_object() || !batch.contains("updates") ||
      !batch["updates"].is_array()) {
    return EncodeEvent(absl::StrCat(rec.request_id, ":", ev.seq), ev.event,
                       ev.data);
  }
  OrderedJson kept = OrderedJson::array();
  uint64_t last = 0;
  bool changed = false;
  for (OrderedJson& u : batch["updates"]) {
    const uint64_t seq =
        u.is_object() && u.contains("seq") && u["seq"].is_number_unsigned()
            ? u["seq"].get<uint64_t>()
            : ev.seq;
    const std::string type =
        u.is_object() && u.contains("type") && u["type"].is_string()
            ? u["type"].get<std::string>()
            : "";
    if (seq <= after || !filter.Sends(type)) {
      changed = true;
      continue;
    }
    last = std::max(last, seq);
    kept.push_back(std::move(u));
  }
  if (kept.empty()) return std::nullopt;
  if (!changed) {
    return EncodeEvent(absl::StrCat(rec.request_id, ":", ev.seq), ev.event,
                       ev.data);
  }
  batch["updates"] = std::move(kept);
  return EncodeEvent(absl::StrCat(rec.request_id, ":", last), ev.event,
                     Dump(batch));
}

}  // namespace

absl::StatusOr<double> ParseSpeed(const QueryParams& params, double fallback) {
  auto it = params.find("speed");
  if (it == params.end()) return fallback;
  double speed = 0;
  if (!absl::SimpleAtod(it->second, &speed) || !std::isfinite(speed) ||
      speed < kMinSpeed || speed > kMaxSpeed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "speed must be a number from ", kMinSpeed, " to ", kMaxSpeed,
        " (1: the recorded timing; 10: ten times "
        "faster)"));
  }
  return speed;
}

absl::StatusOr<ReplayRequest> ParseChatRequest(std::string_view header,
                                               const QueryParams& params,
                                               const ReplayOptions& options) {
  ReplayRequest r;
  if (absl::Status s = ParseFormat(params, options, &r); !s.ok()) return s;
  auto point = ChatResumePoint(header, params);
  if (!point.ok()) return point.status();
  if (point->has_value()) {
    r.run_id = (*point)->request_id;
    r.after_seq = (*point)->after_seq;
    return r;
  }
  auto message = params.find("message");
  if (message == params.end() || message->second.empty()) {
    return absl::InvalidArgumentError("message is required");
  }
  r.message = message->second;
  if (auto run = params.find("run"); run != params.end()) {
    r.run_id = run->second;
  }
  return r;
}

absl::StatusOr<QueryParams> ChatBodyParams(std::string_view body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  QueryParams params;
  for (const char* name : {"message", "run", "last_event_id", "heartbeat"}) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be a string"));
    }
    params.emplace(name, it->get<std::string>());
  }
  if (auto it = j.find("types"); it != j.end() && !it->is_null()) {
    std::string list;
    if (it->is_string()) {
      list = it->get<std::string>();
    } else if (it->is_array()) {
      for (const nlohmann::json& name : *it) {
        if (!name.is_string()) {
          return absl::InvalidArgumentError("types must be names");
        }
        absl::StrAppend(&list, list.empty() ? "" : ",",
                        name.get<std::string>());
      }
    } else {
      return absl::InvalidArgumentError(
          "types must be an array of names or a string");
    }
    params.emplace("types", list);
  }
  if (auto it = j.find("speed"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) {
      return absl::InvalidArgumentError("speed must be a number");
    }
    params.emplace("speed", absl::StrCat(it->get<double>()));
  }
  for (const char* name : {"batch_max", "batch_ms"}) {
    if (auto it = j.find(name); it != j.end() && !it->is_null()) {
      params.emplace(name, it->dump());
    }
  }
  if (auto it = j.find("compress");
      it != j.end() && !it->is_null() && *it != false && *it != 0) {
    params.emplace("compress", it->dump());
  }
  return params;
}

absl::StatusOr<ReplayRequest> ParseRunStreamRequest(
    std::string_view path_id, std::string_view header,
    const QueryParams& params, const ReplayOptions& options) {
  ReplayRequest r;
  if (absl::Status s = ParseFormat(params, options, &r); !s.ok()) return s;
  auto target = RunStreamTarget(path_id, header, params);
  if (!target.ok()) return target.status();
  r.run_id = target->request_id;
  if (target->has_resume_point) r.after_seq = target->after_seq;
  return r;
}

absl::StatusOr<ReplayPlan> PlanReplay(const Recording* recording,
                                      const ReplayRequest& request,
                                      const ReplayOptions& options) {
  ReplayPlan plan;
  const std::string retry = EncodeRetry(options.retry_ms);
  if (recording == nullptr) {
    if (!request.after_seq.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("no recording of run ", request.run_id));
    }
    // The gateway's answer to a resume of a run its orchestrator no longer
    // knows (docs/GATEWAY.md, "Resume").
    plan.opening = Opening::kGapStream;
    plan.request_id = request.run_id;
    const std::string point =
        absl::StrCat(request.run_id, ":", *request.after_seq);
    plan.events.push_back(
        {absl::ZeroDuration(),
         absl::StrCat(
             retry, Connected(request.run_id, request.after_seq),
             GatewayErrorBytes(
                 request.run_id, "gap",
                 absl::StrCat("run ", request.run_id,
                              " is no longer known to the orchestrator (it "
                              "ended too long ago, or the orchestrator "
                              "restarted): the updates after ",
                              point,
                              " cannot be replayed; start the question again"),
                 false),
             EncodeEvent("", "done",
                         Dump(OrderedJson{{"type", "done"},
                                          {"status", "failed"},
                                          {"request_id", request.run_id}})))});
    return plan;
  }
  plan.request_id = recording->request_id;
  const uint64_t after = request.after_seq.value_or(0);
  if (after > recording->last_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("the resume point ", after, " is past the run's last seq ",
                     recording->last_seq));
  }
  const TypeFilter filter(request.types);
  plan.events.push_back({absl::ZeroDuration(),
                         absl::StrCat(retry, Connected(recording->request_id,
                                                       request.after_seq))});
  const double speed = request.speed > 0 ? request.speed : 1;
  absl::Duration at = absl::ZeroDuration();
  std::optional<int64_t> last_ns;
  bool any = false;
  for (const RecordedEvent& ev : recording->events) {
    // Events without an id go with the update before them: a resume after
    // it leaves them out too.
    if (after > 0 && ev.seq <= after) continue;
    std::optional<std::string> bytes;
    if (ev.has_id) {
      bytes = IdEvent(*recording, ev, after, filter);
      // Time passes for filtered updates too: the next one keeps its place.
      if (ev.emitted_at_ns.has_value()) {
        if (last_ns.has_value() && *ev.emitted_at_ns > *last_ns) {
          const absl::Duration gap =
              absl::Nanoseconds(*ev.emitted_at_ns - *last_ns) / speed;
          at += std::min(gap, options.max_gap);
        }
        if (!last_ns.has_value() || *ev.emitted_at_ns > *last_ns) {
          last_ns = ev.emitted_at_ns;
        }
      }
    } else {
      bytes = EncodeEvent("", ev.event, ev.data);
    }
    if (!bytes.has_value()) continue;
    any = true;
    plan.events.push_back({at, *std::move(bytes)});
  }
  if (!any && request.after_seq.has_value()) {
    // The gateway's 204: the run ended and nothing follows the point.
    plan.opening = Opening::kNoContent;
    plan.events.clear();
  }
  return plan;
}

std::string HeartbeatBytes(HeartbeatStyle style, std::string_view request_id) {
  return EncodeHeartbeat(style, Dump(OrderedJson{{"type", "heartbeat"},
                                                 {"request_id", request_id}}));
}

std::string GatewayErrorBytes(std::string_view request_id,
                              std::string_view code, std::string_view message,
                              bool retryable) {
  const OrderedJson data = {
      {"type", "error"},    {"request_id", request_id}, {"code", code},
      {"message", message}, {"retryable", retryable},   {"source", "gateway"},
  };
  return EncodeEvent("", "error", Dump(data));
}

ReplayPacer::ReplayPacer(std::vector<PlannedEvent> events, absl::Time start,
                         absl::Duration heartbeat_interval,
                         std::string heartbeat)
    : events_(std::move(events)),
      start_(start),
      heartbeat_interval_(heartbeat_interval),
      heartbeat_(std::move(heartbeat)),
      next_heartbeat_(start + heartbeat_interval) {}

ReplayPacer::Step ReplayPacer::Next(absl::Time now) {
  Step step;
  // A heartbeat first: it stands for the silence before what is now due.
  if (heartbeat_interval_ > absl::ZeroDuration() && now >= next_heartbeat_ &&
      next_event_ < events_.size()) {
    step.bytes.append(heartbeat_);
    // The next one after `now` on the grid of `start`, however late we are.
    absl::Duration rem;
    next_heartbeat_ +=
        heartbeat_interval_ *
        (absl::IDivDuration(now - next_heartbeat_, heartbeat_interval_, &rem) +
         1);
  }
  while (next_event_ < events_.size() &&
         start_ + events_[next_event_].at <= now) {
    step.bytes.append(events_[next_event_].bytes);
    ++next_event_;
    ++step.events;
  }
  if (next_event_ == events_.size()) {
    step.finished = true;
    step.next = now;
    return step;
  }
  step.next = start_ + events_[next_event_].at;
  if (heartbeat_interval_ > absl::ZeroDuration()) {
    step.next = std::min(step.next, next_heartbeat_);
  }
  return step;
}

}  // namespace agentstream::gateway::replay
