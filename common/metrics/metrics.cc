#include "common/metrics/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
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

void HopHistogram::Add(const std::array<uint32_t, kBuckets>& counts,
                       int64_t sum_ns) {
  for (size_t i = 0; i < kBuckets; ++i) {
    if (counts[i] != 0) {
      buckets_[i].fetch_add(counts[i], std::memory_order_relaxed);
    }
  }
  sum_ns_.fetch_add(sum_ns, std::memory_order_relaxed);
}

uint64_t HopHistogram::count() const {
  uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

prometheus::ClientMetric HopHistogram::Collect() const {
  prometheus::ClientMetric m;
  uint64_t cumulative = 0;
  m.histogram.bucket.reserve(kBuckets);
  for (size_t i = 0; i < kBuckets; ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    prometheus::ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < kHopBucketsSeconds.size()
                        ? kHopBucketsSeconds[i]
                        : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(b);
  }
  // The count is the +Inf bucket's, so that the two always agree.
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum =
      static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
  return m;
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
  Declare({.name = full,
           .help = std::string(help),
           .type = prometheus::MetricType::Counter,
           .labels = std::move(labels)});
  return prometheus::BuildCounter()
      .Name(full)
      .Help(std::string(help))
      .Register(registry_);
}

prometheus::Family<prometheus::Gauge>& Registry::Gauge(
    std::string_view name, std::string_view help,
    std::vector<std::string> labels) {
  const std::string full = prefix_ + std::string(name);
  Declare({.name = full,
           .help = std::string(help),
           .type = prometheus::MetricType::Gauge,
           .labels = std::move(labels)});
  return prometheus::BuildGauge()
      .Name(full)
      .Help(std::string(help))
      .Register(registry_);
}

HopHistogram& Registry::Hop(std::string_view name, std::string_view help,
                            LabelList labels) {
  absl::MutexLock lock(&mu_);
  HopHistogram& hop = hops_.emplace_back();
  declared_.push_back({.name = prefix_ + std::string(name),
                       .help = std::string(help),
                       .type = prometheus::MetricType::Histogram,
                       .hop = &hop,
                       .fixed = std::move(labels)});
  return hop;
}

void Registry::CounterFn(std::string_view name, std::string_view help,
                         std::function<double()> read, LabelList labels) {
  Declare({.name = prefix_ + std::string(name),
           .help = std::string(help),
           .type = prometheus::MetricType::Counter,
           .read = std::move(read),
           .fixed = std::move(labels)});
}

void Registry::GaugeFn(std::string_view name, std::string_view help,
                       std::function<double()> read, LabelList labels) {
  Declare({.name = prefix_ + std::string(name),
           .help = std::string(help),
           .type = prometheus::MetricType::Gauge,
           .read = std::move(read),
           .fixed = std::move(labels)});
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
      if (d.read || d.hop != nullptr) {
        prometheus::ClientMetric m =
            d.hop != nullptr ? d.hop->Collect() : ValueMetric(d.type, d.read());
        for (const auto& [label, value] : d.fixed) {
          m.label.push_back({label, value});
        }
        family.metric.push_back(std::move(m));
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
  if (count_ > 0) histogram_.Add(counts_, sum_ns_);
}

}  // namespace agentstream::metrics
