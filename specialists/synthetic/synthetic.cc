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
  double count = static_cast<double>(defaults.count);
  double size = static_cast<double>(defaults.size);
  double rate = defaults.rate;
  for (const auto& [key, target] :
       {std::pair<const char*, double*>{"count", &count},
        {"size", &size},
        {"rate", &rate}}) {
    if (absl::Status s = ReadNumber(request.options(), key, target); !s.ok()) {
      return s;
    }
  }
  if (!(count >= 0 && count <= kSyntheticMaxCount)) {
    return absl::InvalidArgumentError(
        absl::StrCat("count must be 0..", kSyntheticMaxCount));
  }
  if (!(size >= 0 && size <= kSyntheticMaxSize)) {
    return absl::InvalidArgumentError(
        absl::StrCat("size must be 0..", kSyntheticMaxSize));
  }
  if (!(rate >= 0) || !std::isfinite(rate)) {
    return absl::InvalidArgumentError("rate must be >= 0");
  }
  return SyntheticParams{static_cast<int64_t>(count),
                         static_cast<int64_t>(size), rate};
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
  // Built once; each update copies it and sets `i`.
  google::protobuf::Struct result;
  (*result.mutable_fields())["n"].set_number_value(
      static_cast<double>(params->count));
  (*result.mutable_fields())["payload"].set_string_value(
      std::string(static_cast<size_t>(params->size), 'x'));
  const absl::Time start = absl::Now();
  int last_pct = -1;
  for (int64_t i = 1; i <= params->count; ++i) {
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
    if (pct != last_pct) {
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
  if (params->count == 0) sink.Progress(100, "Nothing to emit");
  return absl::OkStatus();
}

}  // namespace agentstream::specialists
