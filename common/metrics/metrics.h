// One process's metrics on prometheus-cpp (docs/METRICS.md lists them all):
// the registry every process keeps, rendered as Prometheus text in one place,
// and the hop histograms that say where an update's time goes.
//
// Registry: every family is declared once, with its name (the process's
// prefix is added), help, and the order its labels are rendered in; Render()
// writes the Prometheus text exposition format 0.0.4, every family in the
// order declared. A family without a sample yet is still declared (HELP and
// TYPE lines), so that a labelled counter never incremented reads as 0 to a
// scraper. Values kept elsewhere (atomics on a hot path, figures read from
// another object) are declared with a function read at every Render().
//
// HopHistogram and HopBatch: the time from an update's `emitted_at` to a
// point of this process, for a whole batch of updates with one read of the
// clock and an atomic add per bucket the batch touched (usually one or two).
// prometheus::Histogram (1.0.1) takes a mutex and does a compare-and-swap per
// bucket on every Observe or ObserveMultiple, which on paths that carry
// ~200,000 updates/s cost measurably; HopHistogram keeps lock-free counts
// and hands prometheus-cpp the same histogram sample when rendered.
//
// Thread-safe: declare families before the process serves (declaring is not
// meant to race with Render), then observe and render from any thread.
#ifndef AGENTSTREAM_COMMON_METRICS_METRICS_H_
#define AGENTSTREAM_COMMON_METRICS_METRICS_H_

#include <prometheus/client_metric.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_type.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::metrics {

// Upper bounds (seconds) of every hop histogram's buckets: 50 µs to 10 s,
// fine enough below a millisecond for a hop of a healthy process and wide
// enough for a stalled one (the +Inf bucket takes the rest).
inline constexpr std::array<double, 17> kHopBucketsSeconds = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
    50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0};

// Labels in the order they are rendered.
using LabelList = std::vector<std::pair<std::string, std::string>>;

// Hop times (seconds) in kHopBucketsSeconds' buckets and +Inf. Lock-free;
// a render that races an Add may see a batch's buckets before its sum.
class HopHistogram final {
 public:
  static constexpr size_t kBuckets = kHopBucketsSeconds.size() + 1;

  // One batch: how many fell in each bucket (not cumulative), and the sum.
  void Add(const std::array<uint32_t, kBuckets>& counts, int64_t sum_ns);
  // Observations so far.
  uint64_t count() const;
  // The sample prometheus-cpp renders (cumulative buckets, count, sum).
  prometheus::ClientMetric Collect() const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<int64_t> sum_ns_{0};
};

// A figure rendered once, outside the registry (Registry::Render's `extra`).
struct Value {
  std::string name;  // Without the prefix.
  std::string help;
  prometheus::MetricType type = prometheus::MetricType::Gauge;
  double value = 0;
};

class Registry final {
 public:
  // `prefix` starts every name, e.g. "agentstream_gateway_".
  explicit Registry(std::string prefix);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Families of prometheus objects. `labels`: the order labels are rendered
  // in (prometheus-cpp sorts them by name; the order of today's names is
  // kept: docs/METRICS.md); labels not listed follow in name order.
  prometheus::Family<prometheus::Counter>& Counter(
      std::string_view name, std::string_view help,
      std::vector<std::string> labels = {});
  prometheus::Family<prometheus::Gauge>& Gauge(
      std::string_view name, std::string_view help,
      std::vector<std::string> labels = {});
  // A hop histogram (kept by the registry) with one sample labelled
  // `labels`.
  HopHistogram& Hop(std::string_view name, std::string_view help,
                    LabelList labels = {});

  // A family whose one sample (labelled `labels`) is what `read` returns at
  // every Render() (thread-safe; it must stay valid while the registry
  // renders): a value kept elsewhere, e.g. an atomic on a hot path.
  void CounterFn(std::string_view name, std::string_view help,
                 std::function<double()> read, LabelList labels = {});
  void GaugeFn(std::string_view name, std::string_view help,
               std::function<double()> read, LabelList labels = {});

  // Prometheus text format 0.0.4: every family in the order declared, then
  // `extra` (unlabelled, prefixed the same way).
  std::string Render(const std::vector<Value>& extra = {}) const;

  const std::string& prefix() const { return prefix_; }

 private:
  struct Declared {
    std::string name{};  // With the prefix.
    std::string help{};
    prometheus::MetricType type = prometheus::MetricType::Untyped;
    std::vector<std::string> labels{};
    // Set for the *Fn and Hop families, whose one sample has `fixed`.
    std::function<double()> read{};
    const HopHistogram* hop = nullptr;
    LabelList fixed{};
  };
  void Declare(Declared d);

  const std::string prefix_;
  prometheus::Registry registry_;
  mutable absl::Mutex mu_;
  std::vector<Declared> declared_ ABSL_GUARDED_BY(mu_);
  std::deque<HopHistogram> hops_ ABSL_GUARDED_BY(mu_);
};

// The wall clock, nanoseconds since the Unix epoch: what hop times are
// measured against (the emitters stamp `emitted_at` with theirs; across
// processes the hops are only as good as the clocks agree, docs/METRICS.md).
int64_t WallNanos();

// Observations of one batch of updates into a hop histogram, added at once
// when the batch is destroyed. Not thread-safe: one per batch, on the
// stack.
class HopBatch final {
 public:
  // `now_ns`: the moment the batch reached the hop's end (WallNanos()).
  HopBatch(HopHistogram& histogram, int64_t now_ns)
      : histogram_(histogram), now_ns_(now_ns) {}
  ~HopBatch();
  HopBatch(const HopBatch&) = delete;
  HopBatch& operator=(const HopBatch&) = delete;

  // One update stamped `emitted_at_ns`; 0 (unstamped) is not counted. An
  // update stamped after now (clocks apart) counts as 0 s.
  void Add(int64_t emitted_at_ns);

  int64_t count() const { return count_; }

 private:
  HopHistogram& histogram_;
  const int64_t now_ns_;
  std::array<uint32_t, HopHistogram::kBuckets> counts_{};
  int64_t sum_ns_ = 0;
  int64_t count_ = 0;
};

}  // namespace agentstream::metrics

#endif  // AGENTSTREAM_COMMON_METRICS_METRICS_H_
