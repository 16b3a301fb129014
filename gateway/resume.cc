#include "gateway/resume.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "gateway/request_id.h"

namespace agentstream::gateway {
namespace {

// Only printable ASCII goes back into an error message, and not much of it.
std::string Quote(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, 80)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (value.size() > 80) out.append("...");
  return absl::StrCat("\"", out, "\"");
}

std::string_view FirstParam(const QueryParams& params, const std::string& key) {
  auto it = params.find(key);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}

}  // namespace

absl::StatusOr<uint64_t> ParseSeq(std::string_view value,
                                  std::string_view what) {
  auto bad = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what),
                     " must be a decimal sequence number, got ", Quote(value)));
  };
  if (value.empty() || value.size() > 20) return bad();
  uint64_t seq = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return bad();
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (seq > (std::numeric_limits<uint64_t>::max() - digit) / 10) return bad();
    seq = seq * 10 + digit;
  }
  return seq;
}

absl::StatusOr<ResumePoint> ParseLastEventId(std::string_view value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string_view::npos ||
      !IsValidRequestId(value.substr(0, colon))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Last-Event-ID must be <request_id>:<seq> (the id of the last event "
        "received), got ",
        Quote(value)));
  }
  auto seq = ParseSeq(value.substr(colon + 1), "the seq of Last-Event-ID");
  if (!seq.ok()) return seq.status();
  return ResumePoint{std::string(value.substr(0, colon)), *seq};
}

absl::StatusOr<std::optional<ResumePoint>> ChatResumePoint(
    std::string_view header, const QueryParams& params) {
  std::string_view value = header;
  if (value.empty()) value = FirstParam(params, "last_event_id");
  if (value.empty()) return std::optional<ResumePoint>();
  auto point = ParseLastEventId(value);
  if (!point.ok()) return point.status();
  return std::optional<ResumePoint>(*std::move(point));
}

absl::StatusOr<AttachTarget> RunStreamTarget(std::string_view path_id,
                                             std::string_view header,
                                             const QueryParams& params) {
  if (!IsValidRequestId(path_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a run id: ", Quote(path_id),
                     " (1..64 characters of [A-Za-z0-9._-])"));
  }
  AttachTarget target;
  target.request_id = std::string(path_id);
  if (!header.empty()) {
    auto point = ParseLastEventId(header);
    if (!point.ok()) return point.status();
    if (point->request_id != target.request_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("Last-Event-ID names run ", Quote(point->request_id),
                       " but the URL names run ", Quote(path_id)));
    }
    target.after_seq = point->after_seq;
    target.has_resume_point = true;
    return target;
  }
  if (params.count("after") > 0) {
    auto after = ParseSeq(FirstParam(params, "after"), "after");
    if (!after.ok()) return after.status();
    target.after_seq = *after;
    target.has_resume_point = true;
  }
  return target;
}

AttachDecision DecideAttachOpening(RunStream::Opening first,
                                   const absl::Status& status,
                                   bool has_resume_point) {
  switch (first) {
    case RunStream::Opening::kAccepted:
      return {AttachOpening::kStream, absl::OkStatus()};
    case RunStream::Opening::kTimeout:
      return {AttachOpening::kError,
              absl::UnavailableError(
                  "orchestrator unavailable: it did not answer in time")};
    case RunStream::Opening::kFinished:
      break;
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return {AttachOpening::kNoContent, absl::OkStatus()};
    case absl::StatusCode::kOutOfRange:
      return {AttachOpening::kGapStream, status};
    case absl::StatusCode::kNotFound:
      if (has_resume_point) return {AttachOpening::kGapStream, status};
      return {AttachOpening::kError, status};
    case absl::StatusCode::kInvalidArgument:
      return {AttachOpening::kError, status};
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
      return {AttachOpening::kError,
              absl::UnavailableError(absl::StrCat("orchestrator unavailable: ",
                                                  status.message()))};
    default:
      return {AttachOpening::kError, status};
  }
}

}  // namespace agentstream::gateway
