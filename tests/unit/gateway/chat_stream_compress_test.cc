// The encoder's compress=1 (gateway/chat_stream.h, docs/GATEWAY.md
// "Compression"), apart from chat_stream_test.cc's stream driver tests.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gateway/chat_stream.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/gunzip.h"
#include "tests/testing/sse_client.h"
#include "tests/unit/gateway/fake_orchestrator.h"

namespace agentstream::gateway {
namespace {

using agentstream::v1::Update;
using testing::StatusUpdate;

std::vector<agentstream::testing::SseEvent> Parse(const std::string& wire) {
  std::vector<agentstream::testing::SseEvent> events;
  agentstream::testing::SseParser parser;
  parser.Feed(wire, [&](agentstream::testing::SseEvent e) {
    events.push_back(std::move(e));
  });
  return events;
}

// compress=1: an update whose JSON passes the threshold goes as a readable
// envelope whose data is the gzipped JSON, base64; smaller ones as they
// are; in a batch the same.
TEST(ChatStreamCompressTest, LargeUpdatesGoCompressedInAReadableEnvelope) {
  const Update big = StatusUpdate(2, std::string(3000, 'x'));
  const Update small = StatusUpdate(3, "short");
  for (const bool batched : {false, true}) {
    StreamFormat format;
    format.compress = true;
    format.compress_min_bytes = 1000;
    if (batched)
      format.batch = {.max_updates = 2, .max_wait = absl::Seconds(1)};
    ChatStreamEncoder encoder("rid", format, 1500);
    std::string wire;
    encoder.AppendUpdate(big, &wire);
    encoder.AppendUpdate(small, &wire);
    encoder.FlushBatch(&wire);
    std::vector<nlohmann::json> payloads;
    for (const auto& e : Parse(wire)) {
      if (e.event == "batch") {
        for (const auto& u : e.json["updates"]) payloads.push_back(u);
      } else {
        payloads.push_back(e.json);
      }
    }
    ASSERT_EQ(payloads.size(), 2u) << wire;
    const nlohmann::json& envelope = payloads[0];
    EXPECT_EQ(envelope["type"], "status");
    EXPECT_EQ(envelope["seq"], 2);
    EXPECT_EQ(envelope["request_id"], "rid");
    EXPECT_EQ(envelope["compressed"], true);
    EXPECT_EQ(envelope["encoding"], "gzip");
    EXPECT_FALSE(envelope.contains("message"));
    std::string gz;
    ASSERT_TRUE(absl::Base64Unescape(envelope["data"].get<std::string>(), &gz));
    EXPECT_LT(gz.size(), 200u);
    // What it inflates to: the update as an uncompressed stream sends it.
    ChatStreamEncoder plain("rid", StreamFormat(), 1500);
    std::string plain_wire;
    plain.AppendUpdate(big, &plain_wire);
    EXPECT_EQ(::agentstream::testing::Gunzip(gz),
              Parse(plain_wire).front().data);
    EXPECT_FALSE(payloads[1].contains("compressed"));
    EXPECT_EQ(payloads[1]["message"], "short");
  }
}

}  // namespace
}  // namespace agentstream::gateway
