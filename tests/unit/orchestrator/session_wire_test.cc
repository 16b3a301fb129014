// The session walker against messages protobuf serialized
// (orchestrator/session_wire.h).
#include "orchestrator/session_wire.h"

#include <string>
#include <string_view>
#include <vector>

#include "agentstream/v1/session.pb.h"
#include "agentstream/v1/update.pb.h"
#include "gtest/gtest.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::SessionFrame;
using agentstream::v1::SessionMessage;
using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;

Update Progress(int n) {
  Update u;
  u.set_instance("host:1");
  u.mutable_progress()->set_progress(static_cast<uint32_t>(n));
  u.mutable_progress()->set_current_action("step " + std::to_string(n));
  return u;
}

// The updates of a walked frame, parsed.
std::vector<Update> UpdatesOf(const SessionFrameView& frame) {
  std::vector<Update> out;
  for (std::string_view piece : frame.batch) {
    EXPECT_TRUE(ForEachBatchedUpdate(piece, [&](std::string_view bytes) {
      Update u;
      EXPECT_TRUE(
          u.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
      out.push_back(u);
      return true;
    }));
  }
  return out;
}

// What walking `message` reports must be what protobuf parsed.
void ExpectSameAsParsed(const std::string& bytes) {
  SessionMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  std::vector<SessionFrameView> frames;
  ASSERT_TRUE(WalkSessionMessage(bytes, &frames));
  ASSERT_EQ(frames.size(), static_cast<size_t>(parsed.frames_size()));
  for (size_t i = 0; i < frames.size(); ++i) {
    const SessionFrame& want = parsed.frames(static_cast<int>(i));
    const SessionFrameView& got = frames[i];
    EXPECT_EQ(got.stream, want.stream());
    EXPECT_EQ(got.accepted, want.accepted());
    EXPECT_EQ(got.request_id, want.request_id());
    EXPECT_EQ(got.has_end, want.has_end());
    EXPECT_EQ(got.end_code, want.end().code());
    EXPECT_EQ(got.end_message, want.end().message());
    EXPECT_EQ(got.batch.empty(), !want.has_batch());
    const std::vector<Update> updates = UpdatesOf(got);
    ASSERT_EQ(updates.size(), static_cast<size_t>(want.batch().updates_size()));
    for (size_t j = 0; j < updates.size(); ++j) {
      EXPECT_EQ(updates[j].SerializeAsString(),
                want.batch().updates(static_cast<int>(j)).SerializeAsString());
    }
  }
}

SessionMessage SeveralFrames() {
  SessionMessage m;
  SessionFrame* a = m.add_frames();
  a->set_stream(1);
  a->set_accepted(true);
  a->set_request_id("req-1");
  SessionFrame* b = m.add_frames();
  b->set_stream(300);  // A two-byte varint.
  for (int i = 1; i <= 3; ++i) *b->mutable_batch()->add_updates() = Progress(i);
  // Accepted, a batch and the end in one frame.
  SessionFrame* c = m.add_frames();
  c->set_stream(2);
  c->set_accepted(true);
  c->set_request_id("req-2");
  *c->mutable_batch()->add_updates() = Progress(9);
  c->mutable_end()->set_code(5);
  c->mutable_end()->set_message("not found: x");
  // An empty batch (present, no updates) and an OK end.
  SessionFrame* d = m.add_frames();
  d->set_stream(1);
  d->mutable_batch();
  d->mutable_end();
  return m;
}

TEST(SessionWireTest, WalksWhatProtobufWrote) {
  const std::string bytes = SeveralFrames().SerializeAsString();
  ExpectSameAsParsed(bytes);
  std::vector<SessionFrameView> frames;
  ASSERT_TRUE(WalkSessionMessage(bytes, &frames));
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[1].stream, 300u);
  EXPECT_EQ(UpdatesOf(frames[1]).size(), 3u);
  EXPECT_TRUE(frames[2].accepted);
  EXPECT_TRUE(frames[2].has_end);
  EXPECT_EQ(frames[2].end_code, 5);
  EXPECT_EQ(frames[2].end_message, "not found: x");
  EXPECT_EQ(UpdatesOf(frames[2]).size(), 1u);
  EXPECT_FALSE(frames[0].has_end);
  // The empty batch is there, with nothing in it; the end is OK.
  EXPECT_EQ(frames[3].batch.size(), 1u);
  EXPECT_EQ(frames[3].batch_bytes(), 0u);
  EXPECT_TRUE(frames[3].has_end);
  EXPECT_EQ(frames[3].end_code, 0);
}

TEST(SessionWireTest, AnEmptyMessageHasNoFrames) {
  std::vector<SessionFrameView> frames(3);
  ASSERT_TRUE(WalkSessionMessage("", &frames));
  EXPECT_TRUE(frames.empty());
}

TEST(SessionWireTest, SkipsUnknownFieldsAtEveryLevel) {
  SessionMessage m = SeveralFrames();
  // Unknown fields of every wire type: in the message, a frame and an end.
  auto* message_unknown = m.GetReflection()->MutableUnknownFields(&m);
  message_unknown->AddVarint(9, 77);
  message_unknown->AddLengthDelimited(10, "ignored");
  SessionFrame* c = m.mutable_frames(2);
  auto* frame_unknown = c->GetReflection()->MutableUnknownFields(c);
  frame_unknown->AddFixed32(11, 1);
  frame_unknown->AddFixed64(12, 2);
  frame_unknown->AddLengthDelimited(13, "more");
  auto* end = c->mutable_end();
  end->GetReflection()->MutableUnknownFields(end)->AddVarint(7, 1);
  ExpectSameAsParsed(m.SerializeAsString());
}

TEST(SessionWireTest, AKnownFieldOfAnotherWireTypeIsSkippedAsAParserWould) {
  // Frame field 1 (stream) as length-delimited, then the real stream.
  std::string frame;
  frame += static_cast<char>((1 << 3) | 2);
  frame += '\x01';
  frame += 'x';
  frame += static_cast<char>(1 << 3);
  frame += '\x07';
  std::string message;
  message += static_cast<char>((1 << 3) | 2);
  message += static_cast<char>(frame.size());
  message += frame;
  ExpectSameAsParsed(message);
}

TEST(SessionWireTest, ARepeatedBatchMergesAsAParserWould) {
  SessionFrame first;
  first.set_stream(4);
  *first.mutable_batch()->add_updates() = Progress(1);
  SessionFrame second;
  *second.mutable_batch()->add_updates() = Progress(2);
  second.mutable_end()->set_code(1);
  SessionFrame third;
  third.mutable_end()->set_message("late");
  // A frame's encoding concatenated with another's is their merge.
  const std::string frame = first.SerializeAsString() +
                            second.SerializeAsString() +
                            third.SerializeAsString();
  SessionMessage m;
  ASSERT_TRUE(m.add_frames()->ParseFromString(frame));
  ASSERT_EQ(m.frames(0).batch().updates_size(), 2);
  std::string message;
  message += static_cast<char>((1 << 3) | 2);
  message += static_cast<char>(frame.size());
  message += frame;
  ExpectSameAsParsed(message);
}

TEST(SessionWireTest, EveryTruncationIsMalformedOrAPrefixOfFrames) {
  const std::string bytes = SeveralFrames().SerializeAsString();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string cut = bytes.substr(0, n);
    SessionMessage parsed;
    std::vector<SessionFrameView> frames;
    const bool walked = WalkSessionMessage(cut, &frames);
    // Cut at a frame's boundary, it is a message with fewer frames;
    // anywhere else protobuf refuses it too.
    EXPECT_EQ(walked, parsed.ParseFromString(cut)) << "cut at " << n;
    if (walked) ExpectSameAsParsed(cut);
  }
}

// A length-delimited field `tag` (one byte) of `body` (under 128 bytes).
std::string Field(char tag, const std::string& body) {
  std::string out;
  out.push_back(tag);
  out.push_back(static_cast<char>(body.size()));
  out.append(body);
  return out;
}

// What ReadTag reads as 0 (the end) without being the end: a cut-off tag
// or a zero one, at every level.
TEST(SessionWireTest, AZeroOrCutOffTagIsMalformed) {
  const std::vector<std::string> bads = {
      std::string("\xff\xff", 2), std::string("\x80", 1), std::string(1, '\0')};
  for (const std::string& bad : bads) {
    std::vector<SessionFrameView> frames;
    SessionMessage parsed;
    EXPECT_FALSE(parsed.ParseFromString(bad));
    EXPECT_FALSE(WalkSessionMessage(bad, &frames));
    // As a frame, and as a frame's end.
    const std::string frame = Field('\x0a', bad);
    EXPECT_FALSE(parsed.ParseFromString(frame));
    EXPECT_FALSE(WalkSessionMessage(frame, &frames));
    const std::string with_end = Field('\x0a', Field('\x2a', bad));
    EXPECT_FALSE(parsed.ParseFromString(with_end));
    EXPECT_FALSE(WalkSessionMessage(with_end, &frames));
    // As a batch.
    UpdateBatch batch;
    EXPECT_FALSE(batch.ParseFromString(bad));
    EXPECT_FALSE(
        ForEachBatchedUpdate(bad, [](std::string_view) { return true; }));
  }
}

TEST(SessionWireTest, ABatchThatIsNotOneIsMalformedWhenItsUpdatesAreRead) {
  UpdateBatch batch;
  *batch.add_updates() = Progress(1);
  std::string broken = batch.SerializeAsString();
  broken.pop_back();  // The update's length now runs past the end.
  // A frame of stream 1 with that batch, by hand (protobuf would not
  // write it).
  std::string frame;
  frame += static_cast<char>(1 << 3);
  frame += '\x01';
  frame += static_cast<char>((4 << 3) | 2);
  frame += static_cast<char>(broken.size());
  frame += broken;
  std::string message;
  message += static_cast<char>((1 << 3) | 2);
  message += static_cast<char>(frame.size());
  message += frame;
  std::vector<SessionFrameView> frames;
  ASSERT_TRUE(WalkSessionMessage(message, &frames));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_FALSE(ForEachBatchedUpdate(frames[0].batch[0],
                                    [](std::string_view) { return true; }));
}

}  // namespace
}  // namespace agentstream::orchestrator
