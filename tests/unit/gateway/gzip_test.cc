#include "gateway/gzip.h"

#include <zlib.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gunzip.h"

namespace agentstream::gateway {
namespace {

using Inflater = ::agentstream::testing::GzipInflater;

TEST(GzipTest, OncePayloadsInflateBack) {
  std::string data;
  for (int i = 0; i < 200; ++i) {
    data += R"({"type":"partial_result","seq":)" + std::to_string(i) + "},";
  }
  const std::string gz = GzipOnce(data);
  ASSERT_FALSE(gz.empty());
  EXPECT_LT(gz.size(), data.size() / 4);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  Inflater inflater;
  EXPECT_EQ(inflater.Feed(gz), Z_STREAM_END);
  EXPECT_EQ(inflater.out, data);
  // The thread's compressor is reset between payloads.
  Inflater again;
  EXPECT_EQ(again.Feed(GzipOnce("small")), Z_STREAM_END);
  EXPECT_EQ(again.out, "small");
}

TEST(GzipTest, AStreamHoldsNothingBackAfterEachWrite) {
  auto stream = GzipStream::Create();
  ASSERT_NE(stream, nullptr);
  Inflater inflater;
  std::string sent;
  for (int i = 0; i < 20; ++i) {
    const std::string event =
        "id: rid:" + std::to_string(i) +
        "\nevent: message\ndata: {\"seq\":" + std::to_string(i) + "}\n\n";
    std::string wire;
    ASSERT_TRUE(stream->Compress(event, /*finish=*/false, &wire));
    sent += event;
    const int rc = inflater.Feed(wire);
    EXPECT_TRUE(rc == Z_OK || rc == Z_BUF_ERROR) << rc;
    // Everything written so far decodes from what was sent so far.
    EXPECT_EQ(inflater.out, sent) << i;
  }
  std::string last;
  ASSERT_TRUE(stream->Compress("event: done\n\n", /*finish=*/true, &last));
  EXPECT_EQ(inflater.Feed(last), Z_STREAM_END);
  EXPECT_EQ(inflater.out, sent + "event: done\n\n");
  EXPECT_TRUE(stream->finished());
  std::string more;
  EXPECT_FALSE(stream->Compress("x", false, &more));
}

TEST(GzipTest, AcceptEncoding) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br"));
  EXPECT_TRUE(AcceptsGzip("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("x-gzip"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("deflate, br"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip; q=0.000"));
  EXPECT_FALSE(AcceptsGzip("*, gzip;q=0"));
  EXPECT_TRUE(AcceptsGzip("gzip;q=0.001"));
  EXPECT_FALSE(AcceptsGzip("*;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzipx"));
}

}  // namespace
}  // namespace agentstream::gateway
