// What the replay server sends, and when, without sockets (docs/CLIENT.md,
// "Mock server"): a request parsed like the gateway's (the same endpoints,
// the same resume rules of docs/GATEWAY.md, "The wire"), turned into a plan
// of SSE bytes at offsets from the stream's start, and a pacer that says at
// any instant what is due (events, heartbeats) and until when to wait.
//
// Timing is the recording's: each event goes at its update's
// `emitted_at_ns` minus the first sent update's, divided by `speed`; events
// without a time (`done`, the `error` copies) follow the one before at once;
// a pause longer than `max_gap` (after `speed`) is shortened to it, and a
// time that goes back counts as no pause, so every wait is bounded.
//
// Pure functions and a value type; thread-compatible.
#ifndef AGENTSTREAM_GATEWAY_REPLAY_REPLAY_PLAN_H_
#define AGENTSTREAM_GATEWAY_REPLAY_REPLAY_PLAN_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/replay/recording.h"
#include "gateway/sse_encoder.h"
#include "gateway/update_types.h"

namespace agentstream::gateway::replay {

using QueryParams = std::multimap<std::string, std::string>;

// `speed=` bounds: 100 times slower to 1000 times faster.
inline constexpr double kMinSpeed = 0.01;
inline constexpr double kMaxSpeed = 1000;

// The server's defaults; the binary's flags read and set them.
struct ReplayOptions {
  double speed = 1;  // When the request names none.
  absl::Duration heartbeat_interval = absl::Seconds(15);
  int64_t retry_ms = 2000;
  absl::Duration max_gap = absl::Seconds(60);
};

struct ReplayRequest {
  // The run asked for (a resume, /api/runs/{id}/stream, `run=`); empty: the
  // recording is chosen by `message`.
  std::string run_id;
  std::string message;
  // The resume point: updates after it. Absent: from the start, with a
  // fresh `connected`.
  std::optional<uint64_t> after_seq;
  UpdateTypeSet types = UpdateTypeSet::All();
  HeartbeatStyle heartbeat = HeartbeatStyle::kComment;
  double speed = 1;
};

// `speed=`: absent -> `fallback`; else a decimal number in
// [kMinSpeed, kMaxSpeed]. kInvalidArgument naming `speed` otherwise.
absl::StatusOr<double> ParseSpeed(const QueryParams& params, double fallback);

// GET /api/chat/stream. `Last-Event-ID` (`header`) or `last_event_id=`: a
// resume of that run (no message needed); else `message` is required and
// `run=<id>` picks the recording. Also `types`, `heartbeat`, `speed`.
// `batch_max`, `batch_ms` and `compress` (but `compress=0`) are refused
// (kInvalidArgument): a recording is replayed as it was recorded.
absl::StatusOr<ReplayRequest> ParseChatRequest(std::string_view header,
                                               const QueryParams& params,
                                               const ReplayOptions& options);

// POST /api/chat/stream's JSON body as the parameters of ParseChatRequest:
// `message`, `run`, `last_event_id` and `heartbeat` (strings), `types` (an
// array of names or "a,b"), `speed` (a number); `batch_max`, `batch_ms`
// and a true `compress` are passed on to be refused; other fields (the
// gateway's `specialists`, `options`, `on_disconnect`) are ignored: a
// recording already ran. kInvalidArgument for malformed JSON or a field of
// the wrong type.
absl::StatusOr<QueryParams> ChatBodyParams(std::string_view body);

// GET /api/runs/{id}/stream[?after=N]: `Last-Event-ID` wins over `after`
// and must name the same run (the gateway's rules, gateway/resume.h).
absl::StatusOr<ReplayRequest> ParseRunStreamRequest(
    std::string_view path_id, std::string_view header,
    const QueryParams& params, const ReplayOptions& options);

struct PlannedEvent {
  absl::Duration at;  // From the stream's start.
  std::string bytes;  // Complete SSE blocks.
};

enum class Opening {
  kStream,     // 200 and play `events`.
  kNoContent,  // 204: nothing follows the resume point.
  kGapStream,  // 200 with `events` = connected, error `gap`, done failed:
               // a resume of a run no recording holds.
};

struct ReplayPlan {
  Opening opening = Opening::kStream;
  std::string request_id;
  std::vector<PlannedEvent> events;
};

// The plan for `request` on `recording` (null: no recording of the run).
// kNotFound: no recording and no resume point (404); kInvalidArgument: a
// resume point past the recording's last seq (the gateway's 400).
absl::StatusOr<ReplayPlan> PlanReplay(const Recording* recording,
                                      const ReplayRequest& request,
                                      const ReplayOptions& options);

// The heartbeat block of a stream of run `request_id`.
std::string HeartbeatBytes(HeartbeatStyle style, std::string_view request_id);
// The gateway's own error event (no id), as the gateway words it.
std::string GatewayErrorBytes(std::string_view request_id,
                              std::string_view code, std::string_view message,
                              bool retryable);

// Plays a plan against a clock: Next(now) returns every event due at
// `now` (and a heartbeat when one is due: every `heartbeat_interval` from
// `start`, while events remain), and when to call again.
class ReplayPacer final {
 public:
  ReplayPacer(std::vector<PlannedEvent> events, absl::Time start,
              absl::Duration heartbeat_interval, std::string heartbeat);

  struct Step {
    std::string bytes;      // To write now (may be empty).
    bool finished = false;  // The last event is in `bytes`: end the stream.
    absl::Time next;        // Call again at this time (unless finished).
    int events = 0;         // Planned events in `bytes`.
  };
  Step Next(absl::Time now);

 private:
  std::vector<PlannedEvent> events_;
  size_t next_event_ = 0;
  absl::Time start_;
  absl::Duration heartbeat_interval_;
  std::string heartbeat_;
  absl::Time next_heartbeat_;
};

}  // namespace agentstream::gateway::replay

#endif  // AGENTSTREAM_GATEWAY_REPLAY_REPLAY_PLAN_H_
