#include "common/metrics/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace agentstream::metrics {
namespace {

// kHopBucketsSeconds in nanoseconds, for bucketing without floating point.
constexpr std::array<int64_t, kHopBucketsSeconds.size()> HopBucketsNanos() {
  std::array<int64_t, kHopBucketsSeconds.size()> out{};
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<int64_t>(kHopBucketsSeconds[i] * 1e9 + 0.5);
  }
  return out;
}
constexpr std::array<int64_t, kHopBucketsSeconds.size()> kHopBucketsNanos =
    HopBucketsNanos();

// Puts `metric`'s labels in the order `order` names (the rest after, as
// they were: sorted by name).
void OrderLabels(const std::vector<std::string>& order,
                 prometheus::ClientMetric& metric) {
  if (order.size() < 2 || metric.label.size() < 2) return;
  auto rank = [&order](const prometheus::ClientMetric::Label& l) {
    return static_cast<size_t>(std::find(order.begin(), order.end(), l.name) -
                               order.begin());
  };
  std::stable_sort(
      metric.label.begin(), metric.label.end(),
      [&rank](const auto& a, const auto& b) { return rank(a) < rank(b); });
}

prometheus::ClientMetric ValueMetric(prometheus::MetricType type, double v) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

}  // namespace

prometheus::Histogram::BucketBoundaries HopBuckets() {
  return {kHopBucketsSeconds.begin(), kHopBucketsSeconds.end()};
}

Registry::Registry(std::string prefix) : prefix_(std::move(prefix)) {}

void Registry::Declare(Declared d) {
  absl::MutexLock lock(&mu_);
  declared_.push_back(std::move(d));
}

prometheus::Family<prometheus::Counter>& Registry::Counter(
    std::string_view name, std::string_view help,
    std::vector<std::string> labels) {
  const std::string full = prefix_ + std::string(name);
  Declare({full, std::string(help), prometheus::MetricType::Counter,
           std::move(labels), nullptr});
  return prometheus::BuildCounter()
      .Name(full)
      .Help(std::string(help))
      .Register(registry_);
}

prometheus::Family<prometheus::Gauge>& Registry::Gauge(
    std::string_view name, std::string_view help,
    std::vector<std::string> labels) {
  const std::string full = prefix_ + std::string(name);
  Declare({full, std::string(help), prometheus::MetricType::Gauge,
           std::move(labels), nullptr});
  return prometheus::BuildGauge()
      .Name(full)
      .Help(std::string(help))
      .Register(registry_);
}

prometheus::Family<prometheus::Histogram>& Registry::Histogram(
    std::string_view name, std::string_view help,
    std::vector<std::string> labels) {
  const std::string full = prefix_ + std::string(name);
  Declare({full, std::string(help), prometheus::MetricType::Histogram,
           std::move(labels), nullptr});
  return prometheus::BuildHistogram()
      .Name(full)
      .Help(std::string(help))
      .Register(registry_);
}

void Registry::CounterFn(std::string_view name, std::string_view help,
                         std::function<double()> read) {
  Declare({prefix_ + std::string(name),
           std::string(help),
           prometheus::MetricType::Counter,
           {},
           std::move(read)});
}

void Registry::GaugeFn(std::string_view name, std::string_view help,
                       std::function<double()> read) {
  Declare({prefix_ + std::string(name),
           std::string(help),
           prometheus::MetricType::Gauge,
           {},
           std::move(read)});
}

std::string Registry::Render(const std::vector<Value>& extra) const {
  std::vector<prometheus::MetricFamily> collected = registry_.Collect();
  absl::flat_hash_map<std::string, prometheus::MetricFamily*> by_name;
  for (prometheus::MetricFamily& f : collected) by_name[f.name] = &f;

  std::vector<prometheus::MetricFamily> families;
  {
    absl::MutexLock lock(&mu_);
    families.reserve(declared_.size() + extra.size());
    for (const Declared& d : declared_) {
      prometheus::MetricFamily family{d.name, d.help, d.type, {}};
      if (d.read) {
        family.metric.push_back(ValueMetric(d.type, d.read()));
      } else if (auto it = by_name.find(d.name); it != by_name.end()) {
        family.metric = std::move(it->second->metric);
        for (prometheus::ClientMetric& m : family.metric) {
          OrderLabels(d.labels, m);
        }
      }
      families.push_back(std::move(family));
    }
  }
  for (const Value& v : extra) {
    families.push_back({absl::StrCat(prefix_, v.name),
                        v.help,
                        v.type,
                        {ValueMetric(v.type, v.value)}});
  }
  return prometheus::TextSerializer().Serialize(families);
}

int64_t WallNanos() { return absl::GetCurrentTimeNanos(); }

void HopBatch::Add(int64_t emitted_at_ns) {
  if (emitted_at_ns == 0) return;
  const int64_t d = std::max<int64_t>(0, now_ns_ - emitted_at_ns);
  // The first bucket whose upper bound is >= d (Prometheus's `le`).
  const size_t i = static_cast<size_t>(
      std::lower_bound(kHopBucketsNanos.begin(), kHopBucketsNanos.end(), d) -
      kHopBucketsNanos.begin());
  ++counts_[i];
  sum_ns_ += d;
  ++count_;
}

HopBatch::~HopBatch() {
  if (count_ == 0) return;
  // Reused by every batch of this thread: no allocation per batch.
  thread_local std::vector<double> increments(counts_.size());
  for (size_t i = 0; i < counts_.size(); ++i) increments[i] = counts_[i];
  histogram_.ObserveMultiple(increments, static_cast<double>(sum_ns_) * 1e-9);
}

}  // namespace agentstream::metrics
