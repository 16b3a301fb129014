// A recorded run for the replay server (docs/CLIENT.md, "Mock server"): the
// SSE body of one stream of the gateway as `curl -N` saves it
// (docs/GATEWAY.md, "The wire"), parsed into its events, and the directory
// of recordings the server serves. No sockets.
//
// A recording holds one run: every `id:` is `<request_id>:<seq>` of the same
// run, seqs never go down. What the parser keeps of each event:
//
//   - updates (`event: message`) and batches (`event: batch`, id = the last
//     seq inside): their seq, wire type and `emitted_at_ns` (a batch's: its
//     last update's), the timing of the replay;
//   - events without an id (the `error`/`timeout` copies, `done`, the
//     gateway's own errors): "anchored" to the last seq before them, so a
//     resume after that seq leaves them out with it;
//   - the recorded `connected` and `retry:` are dropped: the replay server
//     sends its own (a replayed stream may be a resume);
//   - comments are skipped, except an optional `: question: <text>` line
//     (anywhere), the question this run answers.
//
// Bounds: kMaxRecordingBytes per file, kMaxRecordings and
// kMaxTotalRecordingBytes per directory.
// Thread-safe: ParseRecording is pure; RecordingLibrary is immutable after
// Load() but for its round-robin counter (guarded).
#ifndef AGENTSTREAM_GATEWAY_REPLAY_RECORDING_H_
#define AGENTSTREAM_GATEWAY_REPLAY_RECORDING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace agentstream::gateway::replay {

inline constexpr size_t kMaxRecordingBytes = 64 * 1024 * 1024;
inline constexpr size_t kMaxRecordings = 1000;
// All recordings of a directory together (they are held in memory).
inline constexpr size_t kMaxTotalRecordingBytes = 512 * 1024 * 1024;

struct RecordedEvent {
  std::string event = "message";  // The `event:` name.
  std::string data;               // The `data:` lines joined by "\n".
  bool has_id = false;
  uint64_t seq = 0;  // The id's seq; events without an id: the anchor seq.
  // The JSON `type` of an id'd event ("progress", "batch", ...), "" if none.
  std::string type;
  // The update's emission time (a batch's: its last update's), if any.
  std::optional<int64_t> emitted_at_ns;
};

struct Recording {
  std::string request_id;
  std::string question;  // From `: question: ...`; "" when absent.
  std::string source;    // The file it came from ("" when parsed from text).
  std::vector<RecordedEvent> events;  // Without `connected`.
  uint64_t last_seq = 0;              // The highest seq (0: no update).
  size_t updates = 0;                 // Events with an id.
};

// Parses a recording. kInvalidArgument when it is larger than
// kMaxRecordingBytes, has no id'd update, an id that is not
// `<request_id>:<seq>`, ids of two runs, or a seq lower than the one before.
absl::StatusOr<Recording> ParseRecording(std::string_view text);

// The recordings of a directory: every regular `*.sse` file (not hidden),
// in file name order. Files that fail to parse, or whose run id another file
// already holds, are skipped and reported in `skipped()`.
class RecordingLibrary final {
 public:
  // kNotFound for an unreadable directory; kInvalidArgument when no file is
  // a valid recording; kResourceExhausted past `max_recordings` files or
  // `max_total_bytes` of valid ones.
  static absl::StatusOr<std::unique_ptr<RecordingLibrary>> Load(
      const std::string& dir, size_t max_recordings = kMaxRecordings,
      size_t max_bytes = kMaxRecordingBytes,
      size_t max_total_bytes = kMaxTotalRecordingBytes);
  // From recordings already parsed (tests); duplicates are skipped.
  explicit RecordingLibrary(std::vector<Recording> recordings);

  // The recording of run `request_id`, or null.
  const Recording* Find(std::string_view request_id) const;
  // The recording a new question gets: the one whose question is `message`
  // (spaces around either ignored), else the recordings in turn; null when
  // there is none.
  const Recording* ForQuestion(std::string_view message);

  const std::vector<Recording>& recordings() const { return recordings_; }
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  std::vector<Recording> recordings_;
  std::vector<std::string> skipped_;  // "file: why".
  absl::Mutex mu_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::gateway::replay

#endif  // AGENTSTREAM_GATEWAY_REPLAY_RECORDING_H_
