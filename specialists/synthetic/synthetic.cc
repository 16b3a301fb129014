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

namespace {

// One run: a position in the sequence of updates, stepped by the SDK.
class SyntheticRun final : public AsyncAnalysis {
 public:
  explicit SyntheticRun(const SyntheticParams& params) : p_(params) {}

  NextStep Step(UpdateSink& sink, const CancelToken& cancel) override {
    if (!started_) {
      started_ = true;
      if (p_.start_delay_ms > 0) {
        return NextStep::At(absl::Now() +
                            absl::Milliseconds(p_.start_delay_ms));
      }
    }
    if (start_ == absl::InfinitePast()) start_ = absl::Now();
    // Bounded per step, so one fast run does not hold a shared thread long.
    for (int emitted_now = 0; emitted_now < kMaxPerStep; ++emitted_now) {
      if (cancel.cancelled()) {
        return NextStep::Done(absl::CancelledError("cancelled"));
      }
      // Fault injection, checked once i - 1 partial results are out.
      const int64_t emitted = i_ - 1;
      if (emitted == p_.fail_after) {
        return NextStep::Done(absl::InternalError(
            absl::StrCat("synthetic failure after ", emitted,
                         " partial results (fail_after)")));
      }
      if (emitted == p_.stall_after) return NextStep::UntilCancelled();
      if (i_ > p_.count) {
        if (p_.count == 0) sink.Progress(100, "Nothing to emit");
        return NextStep::Done(absl::OkStatus());
      }
      if (p_.rate > 0) {
        const absl::Time due =
            start_ + absl::Seconds(static_cast<double>(i_ - 1) / p_.rate);
        if (due > absl::Now()) return NextStep::At(due);
      }
      const int pct = static_cast<int>(i_ * 100 / p_.count);
      const bool progress = p_.progress_every > 0
                                ? (i_ - 1) % p_.progress_every == 0
                                : pct != last_pct_;
      if (progress) {
        last_pct_ = pct;
        if (!sink.Progress(pct,
                           absl::StrCat("update ", i_, " of ", p_.count))) {
          return NextStep::Done(absl::CancelledError("stream closed"));
        }
      }
      if (!sink.PartialResult(MakeResult())) {
        return NextStep::Done(absl::CancelledError("stream closed"));
      }
      ++i_;
      if (!sink.HasRoom()) break;
    }
    return NextStep::Continue();
  }

 private:
  static constexpr int kMaxPerStep = 256;

  // Built afresh each time (as cheap as copying a template, and an idle
  // run then holds none).
  google::protobuf::Struct MakeResult() const {
    google::protobuf::Struct result;
    auto& fields = *result.mutable_fields();
    fields["n"].set_number_value(static_cast<double>(p_.count));
    fields["payload"].set_string_value(
        std::string(static_cast<size_t>(p_.size), 'x'));
    fields["i"].set_number_value(static_cast<double>(i_));
    return result;
  }

  const SyntheticParams p_;
  bool started_ = false;
  absl::Time start_ = absl::InfinitePast();  // After the start delay.
  int64_t i_ = 1;                            // The next partial result.
  int last_pct_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AsyncAnalysis>> Synthetic::Start(
    const AnalyzeRequest& request) {
  absl::StatusOr<SyntheticParams> params =
      ResolveSyntheticParams(defaults_, request);
  if (!params.ok()) return params.status();
  return std::make_unique<SyntheticRun>(*params);
}

}  // namespace agentstream::specialists
