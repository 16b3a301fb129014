#include "common/metrics/metrics.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The text format, parsed strictly enough to catch a malformed exposition:
// every sample is `name[{labels}] value`, its value a number, and its family
// declared by a TYPE line before it. Returns sample key -> value.
std::map<std::string, double> Parse(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> declared;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) continue;
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      EXPECT_EQ(parts.size(), 4u) << line;
      if (parts.size() == 4) declared.insert(parts[2]);
      continue;
    }
    if (absl::StartsWith(line, "# HELP ")) continue;
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, absl::string_view::npos) << line;
    if (space == absl::string_view::npos) continue;
    const std::string key(line.substr(0, space));
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    std::string family = key.substr(0, key.find('{'));
    for (const char* suffix : {"_bucket", "_count", "_sum"}) {
      if (!declared.contains(family) && absl::EndsWith(family, suffix)) {
        family.resize(family.size() - strlen(suffix));
      }
    }
    EXPECT_TRUE(declared.contains(family)) << "undeclared: " << line;
    EXPECT_FALSE(samples.contains(key)) << "twice: " << line;
    samples[key] = value;
  }
  return samples;
}

TEST(MetricsRegistryTest, RendersEveryKindPrefixedAndParsable) {
  Registry r("agentstream_test_");
  prometheus::Counter& c = r.Counter("things_total", "Things counted.").Add({});
  prometheus::Gauge& g = r.Gauge("open", "Open now.").Add({});
  HopHistogram& h = r.Hop("hop_seconds", "A hop.");
  int64_t fed = 41;
  r.CounterFn("fed_total", "Read at render.",
              [&fed] { return static_cast<double>(fed); });
  r.GaugeFn("level", "Read at render.", [] { return -3.0; });
  r.GaugeFn("labelled", "Read at render, labelled.", [] { return 1.0; },
            {{"b", "x"}, {"a", "y"}});
  c.Increment(2);
  g.Increment(5);
  g.Increment(-2);  // A gauge follows deltas of either sign.
  {
    HopBatch batch(h, 1'000'000'000);
    batch.Add(1'000'000'000 - 300'000);  // 300 us.
  }
  HopHistogram& labelled_hop =
      r.Hop("labelled_hop_seconds", "A labelled hop.", {{"specialist", "S"}});
  {
    HopBatch batch(labelled_hop, 1'000'000'000);
    batch.Add(1);
  }
  ++fed;

  const std::string text = r.Render({{"extra_total", "Given at render.",
                                      prometheus::MetricType::Counter, 7}});
  const std::map<std::string, double> s = Parse(text);
  EXPECT_EQ(s.at("agentstream_test_things_total"), 2);
  EXPECT_EQ(s.at("agentstream_test_open"), 3);
  EXPECT_EQ(s.at("agentstream_test_fed_total"), 42);
  EXPECT_EQ(s.at("agentstream_test_level"), -3);
  // Labels as given, not sorted.
  EXPECT_EQ(s.at("agentstream_test_labelled{b=\"x\",a=\"y\"}"), 1);
  EXPECT_EQ(s.at("agentstream_test_extra_total"), 7);
  EXPECT_EQ(s.at("agentstream_test_hop_seconds_count"), 1);
  EXPECT_EQ(s.at("agentstream_test_hop_seconds_bucket{le=\"0.00025\"}"), 0);
  EXPECT_EQ(s.at("agentstream_test_hop_seconds_bucket{le=\"0.0005\"}"), 1);
  EXPECT_EQ(s.at("agentstream_test_hop_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_NEAR(s.at("agentstream_test_hop_seconds_sum"), 0.0003, 1e-12);
  EXPECT_EQ(s.at("agentstream_test_labelled_hop_seconds_count{specialist="
                 "\"S\"}"),
            1);
  EXPECT_EQ(s.at("agentstream_test_labelled_hop_seconds_bucket{specialist="
                 "\"S\",le=\"1\"}"),
            1);
  EXPECT_THAT(text, HasSubstr("# TYPE agentstream_test_things_total counter\n"
                              "agentstream_test_things_total 2\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE agentstream_test_open gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE agentstream_test_hop_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("# HELP agentstream_test_things_total Things "
                              "counted.\n"));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(absl::StartsWith(line, "agentstream_test_")) << line;
  }
}

TEST(MetricsRegistryTest, EmptyFamilyIsDeclaredAndLabelOrderKept) {
  Registry r("p_");
  r.Counter("never_total", "Never incremented.");
  auto& calls = r.Counter("calls_total", "Calls.", {"specialist", "instance"});
  calls.Add({{"specialist", "Risk\"Analyst"}, {"instance", "r:1"}}).Increment();
  const std::string text = r.Render();
  // Declared with no sample: a scraper reads a labelled series as 0.
  EXPECT_THAT(text, HasSubstr("# TYPE p_never_total counter\n"));
  EXPECT_THAT(text, Not(HasSubstr("\np_never_total")));
  // The declared order, not prometheus-cpp's (by name); values escaped.
  EXPECT_THAT(text, HasSubstr("p_calls_total{specialist=\"Risk\\\"Analyst\","
                              "instance=\"r:1\"} 1\n"));
  Parse(text);
}

TEST(HopBatchTest, CountsABatchIntoBucketsAtOnce) {
  Registry r("p_");
  HopHistogram& h = r.Hop("hop_seconds", "A hop.");
  const int64_t now = 1'700'000'000'000'000'000;
  {
    HopBatch batch(h, now);
    batch.Add(0);                     // Unstamped: not counted.
    batch.Add(now - 30'000);          // 30 us: the first bucket.
    batch.Add(now - 50'000);          // 50 us: le is inclusive.
    batch.Add(now - 2'000'000);       // 2 ms.
    batch.Add(now + 5'000'000);       // Stamped after now: 0 s.
    batch.Add(now - 60'000'000'000);  // A minute: +Inf only.
    EXPECT_EQ(batch.count(), 5);
    EXPECT_EQ(h.count(), 0u);
    // Nothing reaches the histogram before the batch ends.
    EXPECT_EQ(Parse(r.Render()).at("p_hop_seconds_count"), 0);
  }
  const std::map<std::string, double> s = Parse(r.Render());
  EXPECT_EQ(s.at("p_hop_seconds_count"), 5);
  EXPECT_EQ(s.at("p_hop_seconds_bucket{le=\"5e-05\"}"), 3);
  EXPECT_EQ(s.at("p_hop_seconds_bucket{le=\"0.001\"}"), 3);
  EXPECT_EQ(s.at("p_hop_seconds_bucket{le=\"0.0025\"}"), 4);
  EXPECT_EQ(s.at("p_hop_seconds_bucket{le=\"10\"}"), 4);
  EXPECT_EQ(s.at("p_hop_seconds_bucket{le=\"+Inf\"}"), 5);
  EXPECT_NEAR(s.at("p_hop_seconds_sum"), 60.00208, 1e-6);
  EXPECT_EQ(h.count(), 5u);
}

TEST(HopBatchTest, EmptyBatchObservesNothing) {
  Registry r("p_");
  HopHistogram& h = r.Hop("hop_seconds", "A hop.");
  { HopBatch batch(h, WallNanos()); }
  EXPECT_EQ(Parse(r.Render()).at("p_hop_seconds_count"), 0);
}

}  // namespace
}  // namespace agentstream::metrics
