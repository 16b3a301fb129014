#include "specialists/synthetic/synthetic.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"

namespace agentstream::specialists {
namespace {

absl::Status ReadNumber(const google::protobuf::Struct& options,
                        const std::string& key, double* out) {
  auto it = options.fields().find(key);
  if (it == options.fields().end()) return absl::OkStatus();
  const google::protobuf::Value& v = it->second;
  if (v.kind_case() == google::protobuf::Value::kNumberValue) {
    *out = v.number_value();
    return absl::OkStatus();
  }
  if (v.kind_case() == google::protobuf::Value::kStringValue) {
    char* end = nullptr;
    const double d = std::strtod(v.string_value().c_str(), &end);
    if (end != nullptr && *end == '\0' && !v.string_value().empty()) {
      *out = d;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("options.", key, " must be a number"));
}

}  // namespace

absl::StatusOr<SyntheticParams> ResolveSyntheticParams(
    const SyntheticParams& defaults, const AnalyzeRequest& request) {
  // `max` < 0: unbounded.
  struct Option {
    const char* key;
    double value;
    int64_t min;
    int64_t max;
    bool integer;
  };
  Option options[] = {
      {"count", static_cast<double>(defaults.count), 0, kSyntheticMaxCount,
       false},
      {"size", static_cast<double>(defaults.size), 0, kSyntheticMaxSize, false},
      {"rate", defaults.rate, 0, -1, false},
      {"progress_every", static_cast<double>(defaults.progress_every), 0,
       kSyntheticMaxCount, true},
      {"start_delay_ms", static_cast<double>(defaults.start_delay_ms), 0,
       kSyntheticMaxStartDelayMs, true},
      {"stall_after", static_cast<double>(defaults.stall_after), -1,
       kSyntheticMaxCount, true},
      {"fail_after", static_cast<double>(defaults.fail_after), -1,
       kSyntheticMaxCount, true},
  };
  for (Option& o : options) {
    if (absl::Status s = ReadNumber(request.options(), o.key, &o.value);
        !s.ok()) {
      return s;
    }
    const bool in_range = std::isfinite(o.value) &&
                          o.value >= static_cast<double>(o.min) &&
                          (o.max < 0 || o.value <= static_cast<double>(o.max));
    if (!in_range) {
      return absl::InvalidArgumentError(
          o.max < 0 ? absl::StrCat(o.key, " must be >= ", o.min)
                    : absl::StrCat(o.key, " must be ", o.min, "..", o.max));
    }
    if (o.integer && std::floor(o.value) != o.value) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.key, " must be an integer"));
    }
  }
  SyntheticParams p;
  p.count = static_cast<int64_t>(options[0].value);
  p.size = static_cast<int64_t>(options[1].value);
  p.rate = options[2].value;
  p.progress_every = static_cast<int64_t>(options[3].value);
  p.start_delay_ms = static_cast<int64_t>(options[4].value);
  p.stall_after = static_cast<int64_t>(options[5].value);
  p.fail_after = static_cast<int64_t>(options[6].value);
  return p;
}

SpecialistCard Synthetic::Card() const {
  SpecialistCard card;
  card.set_name("Synthetic");
  card.set_display_name("Synthetic Load");
  card.set_icon("\xF0\x9F\xA7\xAA");  // U+1F9EA test tube
  card.set_description(
      "Emits a configurable number of updates of a configurable size at a "
      "configurable rate, for tests and benchmarks. Used only when asked "
      "for by name.");
  card.add_skills("load generation");
  for (const char* keyword : {"synthetic", "benchmark", "load", "test"}) {
    card.add_keywords(keyword);
  }
  card.set_version("1.0.0");
  card.set_explicit_only(true);
  return card;
}

absl::Status Synthetic::Analyze(const AnalyzeRequest& request, UpdateSink& sink,
                                const CancelToken& cancel) {
  absl::StatusOr<SyntheticParams> params =
      ResolveSyntheticParams(defaults_, request);
  if (!params.ok()) return params.status();
  if (params->start_delay_ms > 0 &&
      cancel.WaitFor(absl::Milliseconds(params->start_delay_ms))) {
    return absl::CancelledError("cancelled");
  }
  // Fault injection, checked once `emitted` partial results are out.
  auto fault = [&](int64_t emitted) -> absl::Status {
    if (emitted == params->fail_after) {
      return absl::InternalError(absl::StrCat("synthetic failure after ",
                                              emitted,
                                              " partial results (fail_after)"));
    }
    if (emitted == params->stall_after) {
      // Stalled: nothing more until cancelled.
      while (!cancel.WaitFor(absl::Hours(1))) {
      }
      return absl::CancelledError("cancelled");
    }
    return absl::OkStatus();
  };
  // Built once; each update copies it and sets `i`.
  google::protobuf::Struct result;
  (*result.mutable_fields())["n"].set_number_value(
      static_cast<double>(params->count));
  (*result.mutable_fields())["payload"].set_string_value(
      std::string(static_cast<size_t>(params->size), 'x'));
  const absl::Time start = absl::Now();
  int last_pct = -1;
  for (int64_t i = 1; i <= params->count; ++i) {
    if (absl::Status s = fault(i - 1); !s.ok()) return s;
    if (params->rate > 0) {
      const absl::Time due =
          start + absl::Seconds(static_cast<double>(i - 1) / params->rate);
      const absl::Duration wait = due - absl::Now();
      if (wait > absl::ZeroDuration() && cancel.WaitFor(wait)) {
        return absl::CancelledError("cancelled");
      }
    }
    if (cancel.cancelled()) return absl::CancelledError("cancelled");
    const int pct = static_cast<int>(i * 100 / params->count);
    const bool progress = params->progress_every > 0
                              ? (i - 1) % params->progress_every == 0
                              : pct != last_pct;
    if (progress) {
      last_pct = pct;
      if (!sink.Progress(pct,
                         absl::StrCat("update ", i, " of ", params->count))) {
        return absl::CancelledError("stream closed");
      }
    }
    google::protobuf::Struct update = result;
    (*update.mutable_fields())["i"].set_number_value(static_cast<double>(i));
    if (!sink.PartialResult(std::move(update))) {
      return absl::CancelledError("stream closed");
    }
  }
  if (absl::Status s = fault(params->count); !s.ok()) return s;
  if (params->count == 0) sink.Progress(100, "Nothing to emit");
  return absl::OkStatus();
}

}  // namespace agentstream::specialists
