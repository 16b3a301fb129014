#include "orchestrator/update_wire.h"

#include <string>

#include "agentstream/v1/update.pb.h"
#include "common/update_json.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;
using google::protobuf::util::MessageDifferencer;

Update SpecialistsUpdate() {
  Update u;
  u.set_request_id("theirs");
  u.set_seq(77);
  u.set_emitted_at(1234567890123);
  u.set_specialist("WhoAmI");
  u.set_instance("host:1");
  *u.mutable_partial_result()->mutable_result() =
      JsonToStruct({{"n", 3}, {"payload", std::string(100, 'x')}});
  return u;
}

// What the orchestrator would have made of `u` by parsing and re-encoding.
Update WithEnvelope(Update u, const Envelope& e) {
  u.set_request_id(std::string(e.request_id));
  u.set_seq(e.seq);
  u.set_emitted_at(e.emitted_at);
  u.set_specialist(std::string(e.specialist));
  return u;
}

TEST(EncodedUpdateTest, RewritesTheEnvelopeAndKeepsTheRest) {
  const Update original = SpecialistsUpdate();
  const std::string bytes = original.SerializeAsString();
  EncodedUpdate encoded;
  ASSERT_TRUE(encoded.Init(bytes));
  EXPECT_EQ(encoded.emitted_at(), 1234567890123);
  const Envelope envelope{"req_1", 42, encoded.emitted_at(), "RiskAnalyst"};
  std::string framed;
  const uint8_t header = encoded.WriteFramed(envelope, &framed);
  EXPECT_EQ(framed.size() - header, encoded.EncodedSize(envelope));

  Update parsed;
  ASSERT_TRUE(parsed.ParseFromString(framed.substr(header)));
  EXPECT_TRUE(
      MessageDifferencer::Equals(parsed, WithEnvelope(original, envelope)))
      << parsed.ShortDebugString();
  // The framed bytes are an UpdateBatch of that one update, and two of them
  // concatenated are a batch of two.
  UpdateBatch batch;
  ASSERT_TRUE(batch.ParseFromString(framed + framed));
  ASSERT_EQ(batch.updates_size(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(batch.updates(1), parsed));
}

TEST(EncodedUpdateTest, EnvelopeFieldsAnywhereAreReplacedAndZerosLeftOut) {
  // Fields out of number order, an envelope field between kept ones, and
  // no emitted_at.
  Update kind_only;
  kind_only.mutable_thinking()->set_thought("hmm");
  Update instance_only;
  instance_only.set_instance("replica-2");
  Update specialist_only;
  specialist_only.set_specialist("Impostor");
  const std::string bytes = kind_only.SerializeAsString() +
                            specialist_only.SerializeAsString() +
                            instance_only.SerializeAsString();
  EncodedUpdate encoded;
  ASSERT_TRUE(encoded.Init(bytes));
  EXPECT_EQ(encoded.emitted_at(), 0);
  const Envelope envelope{"req_2", 1, 0, "DataAnalyst"};
  std::string framed;
  const uint8_t header = encoded.WriteFramed(envelope, &framed);
  Update parsed;
  ASSERT_TRUE(parsed.ParseFromString(framed.substr(header)));
  EXPECT_EQ(parsed.request_id(), "req_2");
  EXPECT_EQ(parsed.seq(), 1u);
  EXPECT_EQ(parsed.emitted_at(), 0);
  EXPECT_EQ(parsed.specialist(), "DataAnalyst");
  EXPECT_EQ(parsed.instance(), "replica-2");
  EXPECT_EQ(parsed.thinking().thought(), "hmm");
}

TEST(EncodedUpdateTest, MalformedBytesAreRefused) {
  const std::string bytes = SpecialistsUpdate().SerializeAsString();
  EncodedUpdate encoded;
  EXPECT_FALSE(encoded.Init(bytes.substr(0, bytes.size() - 3)));
  EXPECT_FALSE(encoded.Init(std::string("\x0a\xff\xff\xff\xff\xff", 6)));
  EXPECT_FALSE(encoded.Init(std::string("\x00\x01", 2)));
  EXPECT_TRUE(encoded.Init(""));
}

}  // namespace
}  // namespace agentstream::orchestrator
