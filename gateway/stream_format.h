// How a client asks for its stream, on every stream endpoint (query
// parameters of GET /api/chat/stream, /api/runs/{id}/stream and resumes;
// fields of the POST body): docs/GATEWAY.md, "Stream formats".
//
//   heartbeat=event|comment      heartbeats as events or SSE comments
//   types=progress,complete      only those update types (update_types.h)
//   batch_max=N  batch_ms=T      updates gathered into `event: batch`
//                                until N wait or the oldest waited T ms
//   compress=1                   an update whose JSON is larger than the
//                                gateway's --compress-min-bytes goes
//                                gzipped, base64, in a readable envelope
//
// One parse for every endpoint, so that a reconnect that repeats its URL
// gets the same stream it had. Pure functions; thread-safe.
#ifndef AGENTSTREAM_GATEWAY_STREAM_FORMAT_H_
#define AGENTSTREAM_GATEWAY_STREAM_FORMAT_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/sse_encoder.h"
#include "gateway/update_types.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {

// Batching's bounds and the defaults of the parameter not given (the seed's
// batch_size=5, max_wait=0.1).
inline constexpr int kDefaultBatchMax = 5;
inline constexpr int kMaxBatchMax = 1000;
inline constexpr int64_t kDefaultBatchMs = 100;
inline constexpr int64_t kMaxBatchMs = 10000;
// Updates whose JSON is larger than this go compressed with compress=1 (the
// seed's 1,000; the gateway's --compress-min-bytes).
inline constexpr size_t kDefaultCompressMinBytes = 1000;

struct BatchSpec {
  int max_updates = 0;  // 0: no batching.
  absl::Duration max_wait = absl::ZeroDuration();
  bool on() const { return max_updates > 0; }
};

struct StreamFormat {
  HeartbeatStyle heartbeat = HeartbeatStyle::kComment;
  UpdateTypeSet types = UpdateTypeSet::All();
  BatchSpec batch;
  bool compress = false;
  // The server's threshold for `compress` (set by the gateway from its
  // flag, never by the client).
  size_t compress_min_bytes = kDefaultCompressMinBytes;
};

// The query's parameters (absent ones: the defaults above). Errors are
// kInvalidArgument naming the parameter.
absl::StatusOr<StreamFormat> ParseStreamFormatQuery(
    const std::multimap<std::string, std::string>& params);

// A POST body's fields (`heartbeat`, `types`, `batch_max`, `batch_ms`,
// `compress`: true/false or 1/0) over
// `format`; a field absent or null leaves it.
absl::Status MergeStreamFormatJson(const nlohmann::json& body,
                                   StreamFormat* format);

// The `heartbeat` query parameter alone: comment when absent.
absl::StatusOr<HeartbeatStyle> ParseHeartbeatQuery(
    const std::multimap<std::string, std::string>& params);

// A POST body's `types`: an array of names or a comma-separated string.
absl::StatusOr<UpdateTypeSet> ParseTypesJson(const nlohmann::json& value);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_STREAM_FORMAT_H_
