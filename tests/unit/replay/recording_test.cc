// Recordings of the replay server (gateway/replay/recording.h): what is kept
// of a stream as `curl -N` saves it, what is refused, and the directory.
#include "gateway/replay/recording.h"

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace agentstream::gateway::replay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A short run as the gateway sends it: retry, connected, updates (one an
// error with its copy), a heartbeat comment, done.
constexpr char kRun[] =
    "retry: 2000\n\n"
    "id: req_a:0\nevent: connected\n"
    "data: {\"type\":\"connected\",\"status\":\"connected\",\"request_id\":"
    "\"req_a\"}\n\n"
    "id: req_a:1\nevent: message\n"
    "data: {\"type\":\"status\",\"request_id\":\"req_a\",\"seq\":1,"
    "\"emitted_at_ns\":1000000000,\"status\":\"analyzing\"}\n\n"
    ": heartbeat\n\n"
    "id: req_a:2\nevent: message\n"
    "data: {\"type\":\"progress\",\"request_id\":\"req_a\",\"seq\":2,"
    "\"emitted_at_ns\":1500000000,\"progress\":50}\n\n"
    "id: req_a:3\nevent: message\n"
    "data: {\"type\":\"error\",\"request_id\":\"req_a\",\"seq\":3,"
    "\"emitted_at_ns\":2000000000,\"code\":\"unavailable\"}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"request_id\":\"req_a\",\"seq\":3,"
    "\"emitted_at_ns\":2000000000,\"code\":\"unavailable\"}\n\n"
    "id: req_a:5\nevent: message\n"
    "data: {\"type\":\"complete\",\"request_id\":\"req_a\",\"seq\":5,"
    "\"emitted_at_ns\":3000000000,\"outcome\":\"ok\"}\n\n"
    "event: done\n"
    "data: {\"type\":\"done\",\"status\":\"complete\",\"request_id\":"
    "\"req_a\"}\n\n";

TEST(ParseRecordingTest, KeepsUpdatesAndTheirFollowersAndDropsConnected) {
  auto rec = ParseRecording(kRun);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->request_id, "req_a");
  EXPECT_EQ(rec->last_seq, 5u);
  EXPECT_EQ(rec->updates, 4u);
  EXPECT_EQ(rec->question, "");
  ASSERT_EQ(rec->events.size(), 6u);
  std::vector<std::string> shape;
  for (const RecordedEvent& ev : rec->events) {
    shape.push_back(absl::StrCat(ev.event, "/", ev.has_id ? "id" : "-", "/",
                                 ev.seq, "/", ev.type, "/",
                                 ev.emitted_at_ns.value_or(-1)));
  }
  EXPECT_THAT(shape,
              ElementsAre("message/id/1/status/1000000000",
                          "message/id/2/progress/1500000000",
                          "message/id/3/error/2000000000",
                          // The copy: anchored to seq 3.
                          "error/-/3//-1", "message/id/5/complete/3000000000",
                          "done/-/5//-1"));
}

TEST(ParseRecordingTest, CrlfAndCrLineEndsReadTheSame) {
  auto lf = ParseRecording(kRun);
  auto crlf = ParseRecording(absl::StrReplaceAll(kRun, {{"\n", "\r\n"}}));
  auto cr = ParseRecording(absl::StrReplaceAll(kRun, {{"\n", "\r"}}));
  ASSERT_TRUE(lf.ok() && crlf.ok() && cr.ok());
  ASSERT_EQ(crlf->events.size(), lf->events.size());
  ASSERT_EQ(cr->events.size(), lf->events.size());
  for (size_t i = 0; i < lf->events.size(); ++i) {
    EXPECT_EQ(crlf->events[i].data, lf->events[i].data);
    EXPECT_EQ(cr->events[i].seq, lf->events[i].seq);
  }
}

TEST(ParseRecordingTest, ReadsTheQuestionComment) {
  auto rec = ParseRecording(
      absl::StrCat(": question:  Assess the risk of ACC-1042  \n", kRun));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->question, "Assess the risk of ACC-1042");
}

TEST(ParseRecordingTest, ABatchIsTimedByItsLastUpdate) {
  auto rec = ParseRecording(
      "id: req_b:4\nevent: batch\n"
      "data: {\"type\":\"batch\",\"request_id\":\"req_b\",\"updates\":["
      "{\"type\":\"progress\",\"seq\":3,\"emitted_at_ns\":10},"
      "{\"type\":\"progress\",\"seq\":4,\"emitted_at_ns\":20}]}\n\n");
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_EQ(rec->events.size(), 1u);
  EXPECT_EQ(rec->events[0].type, "batch");
  EXPECT_EQ(rec->events[0].seq, 4u);
  EXPECT_EQ(rec->events[0].emitted_at_ns, 20);
}

TEST(ParseRecordingTest, RefusesWhatIsNotOneRunOfTheGateway) {
  const std::string update = "event: message\ndata: {}\n\n";
  // No update at all.
  EXPECT_THAT(ParseRecording("").status().message(), HasSubstr("no update"));
  EXPECT_THAT(ParseRecording("data: hello\n\n").status().message(),
              HasSubstr("no update"));
  // Ids that are not <request_id>:<seq>.
  EXPECT_FALSE(ParseRecording(absl::StrCat("id: 7\n", update)).ok());
  EXPECT_FALSE(ParseRecording(absl::StrCat("id: req a:1\n", update)).ok());
  EXPECT_FALSE(ParseRecording(absl::StrCat("id: req_a:x\n", update)).ok());
  // Two runs.
  EXPECT_THAT(ParseRecording(absl::StrCat("id: req_a:1\n", update,
                                          "id: req_b:2\n", update))
                  .status()
                  .message(),
              HasSubstr("one run per recording"));
  // Seqs that do not go up; an update at seq 0.
  EXPECT_THAT(ParseRecording(absl::StrCat("id: req_a:2\n", update,
                                          "id: req_a:2\n", update))
                  .status()
                  .message(),
              HasSubstr("seqs must increase"));
  EXPECT_FALSE(ParseRecording(absl::StrCat("id: req_a:0\n", update)).ok());
  // Too large.
  EXPECT_THAT(ParseRecording(std::string(kMaxRecordingBytes + 1, ':'))
                  .status()
                  .message(),
              HasSubstr("more than"));
}

TEST(ParseRecordingTest, GarbageNeverCrashes) {
  // Bytes of every kind, cut at every length of the run.
  const std::string run = kRun;
  for (size_t n = 0; n <= run.size(); ++n) {
    (void)ParseRecording(run.substr(0, n));
  }
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise.push_back(static_cast<char>(i * 37));
  (void)ParseRecording(noise);
  (void)ParseRecording(std::string("id: req_a:1\ndata: \0\xff{\n\n", 20));
}

TEST(RecordingLibraryTest, FindsByRunAndByQuestionElseInTurn) {
  auto a = ParseRecording(absl::StrCat(": question: first\n", kRun));
  auto b = ParseRecording(absl::StrReplaceAll(kRun, {{"req_a", "req_b"}}));
  auto dup = ParseRecording(kRun);
  ASSERT_TRUE(a.ok() && b.ok() && dup.ok());
  RecordingLibrary library({*a, *b, *dup});
  ASSERT_EQ(library.recordings().size(), 2u);
  EXPECT_EQ(library.skipped().size(), 1u);
  ASSERT_NE(library.Find("req_b"), nullptr);
  EXPECT_EQ(library.Find("req_b")->request_id, "req_b");
  EXPECT_EQ(library.Find("req_c"), nullptr);
  EXPECT_EQ(library.ForQuestion(" first ")->request_id, "req_a");
  // Other questions: each recording in turn.
  EXPECT_EQ(library.ForQuestion("other")->request_id, "req_a");
  EXPECT_EQ(library.ForQuestion("other")->request_id, "req_b");
  EXPECT_EQ(library.ForQuestion("other")->request_id, "req_a");
  EXPECT_EQ(RecordingLibrary({}).ForQuestion("x"), nullptr);
}

TEST(RecordingLibraryTest, LoadsTheSseFilesOfADirectoryAndSkipsTheRest) {
  auto dir = testing::ScopedTempDir::Make("replay_lib");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(absl::StrCat(dir->path(), "/", name), std::ios::binary)
        << text;
  };
  write("b_run.sse", absl::StrReplaceAll(kRun, {{"req_a", "req_b"}}));
  write("a_run.sse", kRun);
  write("broken.sse", "id: nope\ndata: x\n\n");
  write("notes.txt", kRun);
  write(".hidden.sse", absl::StrReplaceAll(kRun, {{"req_a", "req_h"}}));
  write("big.sse", std::string(2048, ':'));
  auto library = RecordingLibrary::Load(dir->path(), kMaxRecordings, 1024);
  ASSERT_TRUE(library.ok()) << library.status();
  ASSERT_EQ((*library)->recordings().size(), 2u);
  // File name order.
  EXPECT_EQ((*library)->recordings()[0].source, "a_run.sse");
  EXPECT_EQ((*library)->recordings()[1].request_id, "req_b");
  EXPECT_EQ((*library)->skipped().size(), 2u);  // broken, big.

  EXPECT_EQ(RecordingLibrary::Load(dir->path(), 1).status().code(),
            absl::StatusCode::kResourceExhausted);
  // Both valid files together are over 1.5 times one.
  const size_t one = std::string(kRun).size();
  EXPECT_EQ(
      RecordingLibrary::Load(dir->path(), kMaxRecordings, 4096, one * 3 / 2)
          .status()
          .code(),
      absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(
      RecordingLibrary::Load(dir->path(), kMaxRecordings, 4096, one * 2).ok());
  EXPECT_EQ(RecordingLibrary::Load(absl::StrCat(dir->path(), "/none"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  auto empty = testing::ScopedTempDir::Make("replay_empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(RecordingLibrary::Load(empty->path()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace agentstream::gateway::replay
