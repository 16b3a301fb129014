// Resume and attach, without sockets: where a stream starts (the resume point
// a client names with `Last-Event-ID`, `last_event_id=` or `after=`) and how
// the first answer of an Attach call turns into an HTTP response
// (docs/GATEWAY.md, "The wire").
//
//   Last-Event-ID: <request_id>:<seq>   (the `id` of the last event seen)
//
// The header wins over the query parameters: EventSource sends the newest id
// it saw in the header when it reconnects to a URL that still carries an
// older `after=` or `last_event_id=`.
//
// Errors are kInvalidArgument (HTTP 400) with a message naming the bad value.
// Pure functions, thread-safe.
#ifndef AGENTSTREAM_GATEWAY_RESUME_H_
#define AGENTSTREAM_GATEWAY_RESUME_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/orchestrator_client.h"

namespace agentstream::gateway {

struct ResumePoint {
  std::string request_id;
  uint64_t after_seq = 0;
};

using QueryParams = std::multimap<std::string, std::string>;

// "<request_id>:<seq>": a valid request id (request_id.h) and a decimal seq.
absl::StatusOr<ResumePoint> ParseLastEventId(std::string_view value);

// A decimal uint64 without sign, spaces or overflow. `what` names the value
// in the error message.
absl::StatusOr<uint64_t> ParseSeq(std::string_view value,
                                  std::string_view what);

// GET|POST /api/chat/stream: the resume point from the `Last-Event-ID`
// header (`header`, empty when absent) or the `last_event_id` query
// parameter; nullopt when neither is given: a new run.
absl::StatusOr<std::optional<ResumePoint>> ChatResumePoint(
    std::string_view header, const QueryParams& params);

struct AttachTarget {
  std::string request_id;
  uint64_t after_seq = 0;
  // A resume point was named (header or `after=`): an unknown run is then a
  // gap (the run was known to the client), not a 404.
  bool has_resume_point = false;
};

// GET /api/runs/{id}/stream[?after=SEQ]: `path_id` must be a valid request
// id; a `Last-Event-ID` header must name the same run.
absl::StatusOr<AttachTarget> RunStreamTarget(std::string_view path_id,
                                             std::string_view header,
                                             const QueryParams& params);

// What the first answer of an Attach call means for the HTTP response.
enum class AttachOpening {
  kStream,     // 200 and follow (the orchestrator accepted the call, whether
               // or not it has anything to send yet).
  kNoContent,  // 204: the run ended and nothing follows the resume point.
  kGapStream,  // 200 with `connected`, an `error` (gap) and `done` failed.
  kError,      // `error` as a JSON error response.
};

struct AttachDecision {
  AttachOpening opening = AttachOpening::kError;
  // kError: the status whose HTTP mapping answers (http_status.h), with a
  // message for the client; kGapStream: what the orchestrator said.
  absl::Status status;
};

// `first` is what RunStream::WaitOpening returned; `status` the call's status
// when it was kFinished.
//   kAccepted                                -> kStream
//   kTimeout (no answer at all)              -> kError UNAVAILABLE (503)
//   kFinished OK                             -> kNoContent
//   kFinished OUT_OF_RANGE                   -> kGapStream
//   kFinished NOT_FOUND with a resume point  -> kGapStream
//   kFinished NOT_FOUND without              -> kError 404
//   kFinished INVALID_ARGUMENT               -> kError 400
//   kFinished UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
//            CANCELLED                       -> kError UNAVAILABLE (503)
//   any other code                           -> kError with it
AttachDecision DecideAttachOpening(RunStream::Opening first,
                                   const absl::Status& status,
                                   bool has_resume_point);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_RESUME_H_
