// How a client asks for its stream (issue 12; docs/GATEWAY.md, "Selective
// updates"), through the whole path with every process real: the real
// question on the real specialists, `types` on GET, POST and attach, a
// filtered stream cut and resumed by Last-Event-ID, and bad names refused.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/whole_path_fixture.h"
#include "tests/testing/gunzip.h"
#include "tests/testing/sse_client.h"

namespace agentstream::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kQuestion[] =
    "Assess the risk and AML compliance of account ACC-1042 over the last 6 "
    "months";

// With transport gzip allowed (--stream-gzip): a client that does not ask
// for it (no Accept-Encoding: gzip) gets plain streams, as every test but
// the gzip one here.
class StreamFormatsTest : public WholePathTest {
 protected:
  static void SetUpTestSuite() {
    extra_gateway_args_ = {"--stream-gzip"};
    WholePathTest::SetUpTestSuite();
  }
};

// The seq of an event's `<rid>:<seq>` id.
uint64_t SeqOf(const SseEvent& e) {
  uint64_t seq = 0;
  const size_t colon = e.id.rfind(':');
  EXPECT_NE(colon, std::string::npos) << e.id;
  EXPECT_TRUE(absl::SimpleAtoi(e.id.substr(colon + 1), &seq)) << e.id;
  return seq;
}

// Every `message` of `r`: only the allowed types (and errors/timeouts),
// ids increasing; returns their seqs.
std::vector<uint64_t> CheckMessages(const SseResponse& r,
                                    const std::set<std::string>& allowed) {
  std::vector<uint64_t> seqs;
  for (const SseEvent& e : r.events) {
    if (e.event != "message") continue;
    const std::string type = e.json.value("type", "");
    if (type != "error" && type != "timeout") {
      EXPECT_TRUE(allowed.count(type) > 0) << "a " << type << " was sent";
    }
    const uint64_t seq = SeqOf(e);
    EXPECT_EQ(e.json.value("seq", uint64_t{0}), seq);
    if (!seqs.empty()) {
      EXPECT_GT(seq, seqs.back());
    }
    seqs.push_back(seq);
  }
  return seqs;
}

TEST_F(StreamFormatsTest, OnlyTheSelectedTypesWithTheRunsSeqsAndAResume) {
  const std::set<std::string> allowed = {"progress", "complete"};
  // The whole run, filtered, for reference.
  const SseResponse whole =
      Ask("message=" + UrlEncode(kQuestion) + "&types=progress,complete");
  ASSERT_EQ(whole.status, 200) << whole.raw;
  ASSERT_FALSE(whole.events.empty());
  EXPECT_EQ(whole.events.front().event, "connected");
  EXPECT_EQ(whole.events.back().event, "done");
  EXPECT_EQ(whole.events.back().json["status"], "complete");
  const std::vector<uint64_t> seqs = CheckMessages(whole, allowed);
  ASSERT_GE(seqs.size(), 4u);
  EXPECT_EQ(whole.events[whole.events.size() - 2].json["type"], "complete");
  // Holes: the statuses, thinking, partial results... were not sent.
  EXPECT_GT(seqs.back(), seqs.size());

  // Another run, cut after its third progress and resumed with the id the
  // client saw last: the rest comes once, filtered the same way.
  SseRequest first;
  first.port = topology_->gateway_port();
  first.path = "/api/chat/stream?message=" + UrlEncode(kQuestion) +
               "&types=progress,complete";
  int progress = 0;
  first.stop = [&](const SseEvent& e, const SseResponse&) {
    return e.event == "message" && e.json.value("type", "") == "progress" &&
           ++progress == 3;
  };
  const SseResponse cut = StreamSse(first);
  ASSERT_EQ(cut.status, 200) << cut.raw;
  ASSERT_TRUE(cut.stopped_by_client) << cut.raw;
  const std::vector<uint64_t> before = CheckMessages(cut, allowed);
  ASSERT_FALSE(before.empty());
  const std::string rid = cut.Header("X-Request-Id");
  SseRequest again;
  again.port = topology_->gateway_port();
  again.path = "/api/runs/" + rid + "/stream?types=progress,complete";
  again.headers.emplace("Last-Event-ID", cut.events.back().id);
  const SseResponse rest = StreamSse(again);
  ASSERT_EQ(rest.status, 200) << rest.raw;
  EXPECT_EQ(rest.events.front().json["status"], "resumed");
  EXPECT_EQ(rest.events.back().event, "done");
  const std::vector<uint64_t> after = CheckMessages(rest, allowed);
  ASSERT_FALSE(after.empty());
  EXPECT_GT(after.front(), before.back());
  // Both parts together: what one uncut filtered stream of a run sends.
  EXPECT_EQ(before.size() + after.size(), seqs.size());
}

TEST_F(StreamFormatsTest, ThePostBodyNamesTheTypes) {
  SseRequest post;
  post.method = "POST";
  post.port = topology_->gateway_port();
  post.path = "/api/chat/stream";
  post.body = nlohmann::json({{"message", kQuestion},
                              {"types", {"thinking", "specialist_complete"}}})
                  .dump();
  const SseResponse r = StreamSse(post);
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::vector<uint64_t> seqs =
      CheckMessages(r, {"thinking", "specialist_complete"});
  EXPECT_GE(seqs.size(), 3u);
  EXPECT_EQ(r.events.back().event, "done");
  EXPECT_EQ(r.events.back().json["status"], "complete");
}

// Every update of a batch stream, in order, from its `batch` events.
std::vector<uint64_t> BatchedSeqs(const SseResponse& r) {
  std::vector<uint64_t> seqs;
  for (const SseEvent& e : r.events) {
    EXPECT_NE(e.event, "message") << "an update outside a batch";
    if (e.event != "batch") continue;
    EXPECT_EQ(e.json["type"], "batch");
    const auto& updates = e.json["updates"];
    EXPECT_TRUE(updates.is_array() && !updates.empty()) << e.data;
    for (const auto& u : updates) seqs.push_back(u["seq"].get<uint64_t>());
    // The batch's id is its last update's.
    EXPECT_EQ(SeqOf(e), seqs.back());
  }
  return seqs;
}

TEST_F(StreamFormatsTest, BatchesCarryEveryUpdateOnceAcrossAResume) {
  const std::string query =
      "message=" + UrlEncode(kQuestion) + "&batch_max=4&batch_ms=50";
  SseRequest first;
  first.port = topology_->gateway_port();
  first.path = "/api/chat/stream?" + query;
  int batches = 0;
  first.stop = [&](const SseEvent& e, const SseResponse&) {
    return e.event == "batch" && ++batches == 2;
  };
  const SseResponse cut = StreamSse(first);
  ASSERT_EQ(cut.status, 200) << cut.raw;
  ASSERT_TRUE(cut.stopped_by_client) << cut.raw;
  std::vector<uint64_t> seqs = BatchedSeqs(cut);
  ASSERT_FALSE(seqs.empty());
  for (const SseEvent& e : cut.events) {
    if (e.event == "batch") {
      EXPECT_LE(e.json["updates"].size(), 4u);
    }
  }
  SseRequest again;
  again.port = topology_->gateway_port();
  again.path = "/api/chat/stream?" + query;
  again.headers.emplace("Last-Event-ID", cut.events.back().id);
  const SseResponse rest = StreamSse(again);
  ASSERT_EQ(rest.status, 200) << rest.raw;
  EXPECT_EQ(rest.events.front().json["status"], "resumed");
  ASSERT_EQ(rest.events.back().event, "done");
  EXPECT_EQ(rest.events.back().json["status"], "complete");
  const std::vector<uint64_t> after = BatchedSeqs(rest);
  seqs.insert(seqs.end(), after.begin(), after.end());
  // Every seq of the run once, in order: 1..N with no hole.
  ASSERT_GE(seqs.size(), 10u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
}

TEST_F(StreamFormatsTest, BadBatchValuesAre400) {
  for (const std::string q :
       {"batch_max=0", "batch_max=1001", "batch_ms=x", "batch_ms=10001"}) {
    SseRequest r;
    r.port = topology_->gateway_port();
    r.path = "/api/chat/stream?message=hi&" + q;
    const SseResponse answer = StreamSse(r);
    EXPECT_EQ(answer.status, 400) << q << "\n" << answer.raw;
    EXPECT_THAT(answer.raw, HasSubstr("must be an integer from 1 to")) << q;
  }
}

// The payloads of a stream: every `message` and every update in a `batch`.
std::vector<nlohmann::json> Payloads(const SseResponse& r) {
  std::vector<nlohmann::json> out;
  for (const SseEvent& e : r.events) {
    if (e.event == "message") out.push_back(e.json);
    if (e.event == "batch") {
      for (const auto& u : e.json["updates"]) out.push_back(u);
    }
  }
  return out;
}

// compress=1 on the real question: the large updates come as readable
// envelopes that inflate to the update; the figure is printed.
TEST_F(StreamFormatsTest, LargeUpdatesComeCompressedAndInflateToTheUpdate) {
  const std::string q = "message=" + UrlEncode(kQuestion);
  const SseResponse plain = Ask(q);
  const SseResponse packed = Ask(q + "&compress=1");
  ASSERT_EQ(plain.status, 200) << plain.raw;
  ASSERT_EQ(packed.status, 200) << packed.raw;
  EXPECT_EQ(packed.events.back().json["status"], "complete");
  const std::vector<nlohmann::json> updates = Payloads(packed);
  int compressed = 0;
  std::vector<std::string> types;
  for (const nlohmann::json& u : updates) {
    types.push_back(u.value("type", ""));
    if (!u.value("compressed", false)) {
      EXPECT_FALSE(u.contains("encoding"));
      continue;
    }
    ++compressed;
    EXPECT_EQ(u["encoding"], "gzip");
    std::string gz;
    ASSERT_TRUE(absl::Base64Unescape(u["data"].get<std::string>(), &gz));
    const std::string json = Gunzip(gz);
    ASSERT_FALSE(json.empty()) << "not a gzip member";
    EXPECT_GT(json.size(), 1000u);  // The gateway's default threshold.
    const nlohmann::json inner = nlohmann::json::parse(json);
    EXPECT_EQ(inner["type"], u["type"]);
    EXPECT_EQ(inner["seq"], u["seq"]);
    EXPECT_EQ(inner["request_id"], u["request_id"]);
  }
  EXPECT_GT(compressed, 0) << "no update of ACC-1042 passed 1,000 bytes";
  // The same updates as without compression (the specialists run
  // concurrently, so their order differs between two runs; the multiset
  // of types does not).
  std::vector<std::string> plain_types;
  for (const nlohmann::json& u : Payloads(plain)) {
    plain_types.push_back(u.value("type", ""));
  }
  std::sort(types.begin(), types.end());
  std::sort(plain_types.begin(), plain_types.end());
  EXPECT_EQ(types, plain_types);
  std::cout << "[compression] ACC-1042: " << plain.raw.size()
            << " bytes plain, " << packed.raw.size() << " with compress=1 ("
            << compressed << " of " << updates.size()
            << " updates compressed)\n";
}

// Transport gzip: with Accept-Encoding: gzip the body is one gzip stream
// (Content-Encoding: gzip) that inflates to the plain stream's events; and
// it is flushed after every write, so the first updates of a slow run
// arrive (and decode) while the run still goes on.
TEST_F(StreamFormatsTest, GzipStreamsDecodeAndHoldNothingBack) {
  SseRequest encoded;
  encoded.port = topology_->gateway_port();
  encoded.path = "/api/chat/stream?message=" + UrlEncode(kQuestion);
  encoded.headers.emplace("Accept-Encoding", "gzip");
  encoded.decompress = false;
  const SseResponse r = StreamSse(encoded);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Header("Content-Encoding"), "gzip");
  EXPECT_EQ(r.Header("Vary"), "Accept-Encoding");
  const std::string body = Gunzip(r.raw);
  ASSERT_FALSE(body.empty()) << "not one whole gzip stream";
  std::vector<SseEvent> events;
  SseParser parser;
  parser.Feed(body, [&](SseEvent e) { events.push_back(std::move(e)); });
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().event, "connected");
  EXPECT_EQ(events.back().event, "done");
  EXPECT_EQ(events.back().json["status"], "complete");
  std::cout << "[compression] ACC-1042 over gzip: " << body.size()
            << " bytes of events in " << r.raw.size() << " on the wire\n";

  // A slow run (Synthetic: one update every 300 ms, 40 of them): its first
  // partial results decode long before it ends.
  SseRequest slow;
  slow.port = topology_->gateway_port();
  slow.path = "/api/chat/stream?message=slow&specialists=Synthetic&options=" +
              UrlEncode(R"({"count":40,"rate":3.3,"size":200})");
  slow.headers.emplace("Accept-Encoding", "gzip");
  int partials = 0;
  slow.stop = [&](const SseEvent& e, const SseResponse&) {
    return e.event == "message" &&
           e.json.value("type", "") == "partial_result" && ++partials == 2;
  };
  const SseResponse first = StreamSse(slow);
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.Header("Content-Encoding"), "gzip");
  EXPECT_TRUE(first.stopped_by_client) << first.error;
  for (const SseEvent& e : first.events) EXPECT_NE(e.event, "done");
}

TEST_F(StreamFormatsTest, UnknownTypesAre400NamingThem) {
  for (const std::string path :
       {"/api/chat/stream?message=hi&types=progress,progres",
        "/api/runs/req_0123456789abcdef/stream?types=progres"}) {
    SseRequest r;
    r.port = topology_->gateway_port();
    r.path = path;
    const SseResponse answer = StreamSse(r);
    EXPECT_EQ(answer.status, 400) << path << "\n" << answer.raw;
    EXPECT_THAT(answer.raw, HasSubstr("progres")) << path;
    const nlohmann::json body =
        nlohmann::json::parse(answer.raw, nullptr,
                              /*allow_exceptions=*/false);
    ASSERT_TRUE(body.is_object()) << answer.raw;
    EXPECT_THAT(body.value("message", ""), HasSubstr("unknown update type"));
  }
}

}  // namespace
}  // namespace agentstream::testing
