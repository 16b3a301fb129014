// Fuzz target: resume points (gateway/resume.h): `Last-Event-ID`,
// `last_event_id=` and `after=`, against a model of the header's grammar.
//
// Input: four length-prefixed strings (the Last-Event-ID header, the run id
// of a /api/runs/{id}/stream path, the `after` and `last_event_id` query
// values), a byte saying which query parameters are present, then a byte
// and a status code for DecideAttachOpening. Asserted:
//   - ParseSeq accepts exactly 1..20 ASCII digits whose value fits a
//     uint64, and returns that value;
//   - ParseLastEventId accepts exactly "<request id>:<seq>" (request id:
//     1..64 of [A-Za-z0-9._-]), and "<id>:<seq>" built from its answer
//     parses back to it;
//   - ChatResumePoint takes the header when there is one, else the query
//     parameter, else none;
//   - RunStreamTarget needs a valid path id, and a header naming the same
//     run (then `after` is ignored), else `after` when present;
//   - every error is kInvalidArgument, and no error message carries a byte
//     outside printable ASCII (values are quoted, not echoed);
//   - DecideAttachOpening follows the header's table.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "gateway/resume.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::fuzz::FuzzInput;
namespace gw = agentstream::gateway;

std::optional<uint64_t> ModelSeq(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  unsigned __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > std::numeric_limits<uint64_t>::max()) return std::nullopt;
  return static_cast<uint64_t>(v);
}

bool ModelRequestId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

std::optional<gw::ResumePoint> ModelLastEventId(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == s.npos || !ModelRequestId(s.substr(0, colon))) {
    return std::nullopt;
  }
  const std::optional<uint64_t> seq = ModelSeq(s.substr(colon + 1));
  if (!seq) return std::nullopt;
  return gw::ResumePoint{std::string(s.substr(0, colon)), *seq};
}

void CheckError(const absl::Status& s) {
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, s.ToString());
  for (char c : s.message()) {
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, "unprintable byte in an error message");
  }
}

void CheckSame(const absl::StatusOr<gw::ResumePoint>& got,
               const std::optional<gw::ResumePoint>& want) {
  FUZZ_CHECK(got.ok() == want.has_value(),
             "ParseLastEventId: " + got.status().ToString());
  if (!got.ok()) return CheckError(got.status());
  FUZZ_CHECK(got->request_id == want->request_id, got->request_id);
  FUZZ_CHECK(got->after_seq == want->after_seq, "seq");
}

void FuzzAttachDecision(uint8_t choice, uint8_t code_byte) {
  const auto first = static_cast<gw::RunStream::Opening>(choice % 3);
  const bool has_point = choice & 4;
  const auto code = static_cast<absl::StatusCode>(code_byte % 17);
  const absl::Status status(code, code == absl::StatusCode::kOk ? "" : "x");
  const gw::AttachDecision d =
      gw::DecideAttachOpening(first, status, has_point);
  using Op = gw::AttachOpening;
  using C = absl::StatusCode;
  if (first == gw::RunStream::Opening::kAccepted) {
    FUZZ_CHECK(d.opening == Op::kStream, "accepted");
    return;
  }
  if (first == gw::RunStream::Opening::kTimeout) {
    FUZZ_CHECK(d.opening == Op::kError && d.status.code() == C::kUnavailable,
               "timeout");
    return;
  }
  switch (code) {
    case C::kOk:
      FUZZ_CHECK(d.opening == Op::kNoContent, "ok");
      break;
    case C::kOutOfRange:
      FUZZ_CHECK(d.opening == Op::kGapStream, "out of range");
      break;
    case C::kNotFound:
      FUZZ_CHECK(d.opening == (has_point ? Op::kGapStream : Op::kError),
                 "not found");
      break;
    case C::kUnavailable:
    case C::kDeadlineExceeded:
    case C::kResourceExhausted:
    case C::kAborted:
    case C::kCancelled:
      FUZZ_CHECK(d.opening == Op::kError && d.status.code() == C::kUnavailable,
                 "retryable");
      break;
    default:
      FUZZ_CHECK(d.opening == Op::kError && d.status.code() == code,
                 "other code");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const std::string_view header = in.TakeString();
  const std::string_view path_id = in.TakeString();
  const std::string_view after = in.TakeString();
  const std::string_view last_event_id = in.TakeString();
  const uint8_t present = in.TakeByte();
  const uint8_t choice = in.TakeByte();
  const uint8_t code = in.TakeByte();

  // ParseSeq on every part: a model of "1..20 digits that fit".
  for (std::string_view s : {header, path_id, after, last_event_id}) {
    const absl::StatusOr<uint64_t> seq = gw::ParseSeq(s, "after");
    const std::optional<uint64_t> want = ModelSeq(s);
    FUZZ_CHECK(seq.ok() == want.has_value(), seq.status().ToString());
    if (seq.ok()) {
      FUZZ_CHECK(*seq == *want, "ParseSeq value");
    } else {
      CheckError(seq.status());
    }
  }

  // ParseLastEventId, and its answer written back.
  for (std::string_view s : {header, last_event_id}) {
    const absl::StatusOr<gw::ResumePoint> point = gw::ParseLastEventId(s);
    CheckSame(point, ModelLastEventId(s));
    if (point.ok()) {
      const std::string again =
          absl::StrCat(point->request_id, ":", point->after_seq);
      CheckSame(gw::ParseLastEventId(again), ModelLastEventId(again));
    }
  }

  gw::QueryParams params;
  if (present & 1) params.emplace("after", std::string(after));
  if (present & 2) params.emplace("last_event_id", std::string(last_event_id));

  // The chat form: header first, then last_event_id=.
  {
    const absl::StatusOr<std::optional<gw::ResumePoint>> point =
        gw::ChatResumePoint(header, params);
    std::string_view named = header;
    if (named.empty() && (present & 2)) named = last_event_id;
    if (named.empty()) {
      FUZZ_CHECK(point.ok() && !point->has_value(), "no resume point named");
    } else {
      const std::optional<gw::ResumePoint> want = ModelLastEventId(named);
      FUZZ_CHECK(point.ok() == want.has_value(), point.status().ToString());
      if (!point.ok()) {
        CheckError(point.status());
      } else {
        FUZZ_CHECK(point->has_value(), "resume point lost");
        FUZZ_CHECK((*point)->request_id == want->request_id &&
                       (*point)->after_seq == want->after_seq,
                   "chat resume point");
      }
    }
  }

  // The attach form: /api/runs/{path_id}/stream.
  {
    const absl::StatusOr<gw::AttachTarget> target =
        gw::RunStreamTarget(path_id, header, params);
    bool ok = ModelRequestId(path_id);
    gw::AttachTarget want{.request_id = std::string(path_id)};
    if (ok && !header.empty()) {
      const std::optional<gw::ResumePoint> point = ModelLastEventId(header);
      ok = point.has_value() && point->request_id == path_id;
      if (ok) {
        want.after_seq = point->after_seq;
        want.has_resume_point = true;
      }
    } else if (ok && (present & 1)) {
      const std::optional<uint64_t> seq = ModelSeq(after);
      ok = seq.has_value();
      if (ok) {
        want.after_seq = *seq;
        want.has_resume_point = true;
      }
    }
    FUZZ_CHECK(target.ok() == ok, target.status().ToString());
    if (!target.ok()) {
      CheckError(target.status());
    } else {
      FUZZ_CHECK(target->request_id == want.request_id &&
                     target->after_seq == want.after_seq &&
                     target->has_resume_point == want.has_resume_point,
                 "attach target");
    }
  }

  FuzzAttachDecision(choice, code);
  return 0;
}
