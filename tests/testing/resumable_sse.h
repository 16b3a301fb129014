// A raw-socket SSE client for resume and fault tests. Unlike StreamSse (on
// cpp-httplib), it controls the connection byte by byte: it speaks HTTP/1.1
// itself (chunked, Content-Length or close-delimited bodies), can close the
// connection after exactly N body bytes (mid-event), sends any header
// (`Last-Event-ID`, `X-Request-Id`), can shrink SO_RCVBUF and pause reading
// (slow readers), and reports what an EventSource would have seen: the
// events fully dispatched (an event cut before its blank line is not) and the
// last event ID string.
//
// ResumeUntilEnd() plays an EventSource across reconnects: it reconnects with
// `Last-Event-ID` after each cut or clean end without `done`, until `done`, a
// 204, an HTTP error, or the limit of connections.
//
// Functions are thread-safe (no shared state); results are plain values.
#ifndef AGENTSTREAM_TESTS_TESTING_RESUMABLE_SSE_H_
#define AGENTSTREAM_TESTS_TESTING_RESUMABLE_SSE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/sse_client.h"

namespace agentstream::testing {

struct RawSseAction {
  bool close = false;                           // Close the connection now.
  absl::Duration pause = absl::ZeroDuration();  // Stop reading this long.
};

struct RawSseRequest {
  std::string method = "GET";
  int port = 0;
  std::string path;  // With its query string, already encoded.
  std::string body;  // Sent with Content-Type: application/json if non-empty.
  // Extra request headers, e.g. {"Last-Event-ID", "r1:7"},
  // {"X-Request-Id", "r1"}.
  std::vector<std::pair<std::string, std::string>> headers;
  // Closes the connection once this many body bytes (after de-chunking) have
  // been read; the SSE parser sees exactly those bytes.
  std::optional<int64_t> cut_after_bytes;
  // SO_RCVBUF set before connect (> 0), to make a paused reader's window
  // small.
  int rcvbuf_bytes = 0;
  // Whole request deadline; the connection is closed when it passes.
  absl::Duration timeout = absl::Seconds(60);
  // Called after each dispatched event (any type).
  std::function<RawSseAction(const SseEvent&)> on_event;
};

struct RawSseResult {
  int status = 0;  // 0: no HTTP status line read.
  // Response headers, names lower-cased.
  std::multimap<std::string, std::string> headers;
  std::string body;              // De-chunked body bytes read.
  std::vector<SseEvent> events;  // Fully dispatched events, in order.
  std::string last_event_id;     // EventSource's last event ID string.
  int comments = 0;
  std::vector<absl::Time> comment_times;
  bool cut = false;  // Closed by the client (cut_after_bytes or on_event).
  // The server ended the response properly: the last chunk of a chunked
  // body, all of a Content-Length body, or EOF of a close-delimited one.
  bool complete = false;
  std::string error;  // Transport problem or deadline; empty otherwise.

  std::string Header(const std::string& name) const;
  // Events of type `message` (the updates), in order.
  std::vector<const SseEvent*> Messages() const;
  // True if the last event dispatched is `done`.
  bool EndedWithDone() const;
  // The run's id: the response's X-Request-Id (the gateway's id of a new
  // run), else the first event's `request_id`.
  std::string RunId() const;
};

// One request on its own TCP connection to 127.0.0.1:port; returns when the
// response ends, the client closes it, or the deadline passes.
RawSseResult RawSse(const RawSseRequest& request);

struct ResumeResult;

struct ResumeOptions {
  // Used for the first connection.
  RawSseRequest first;
  // Path (with query) of reconnect `attempt` (1, 2, ...) of run `run_id`
  // (the id the gateway gave it), sent as GET; an empty function or an
  // empty string: the first request again (same method, path and body, as
  // EventSource does), plus Last-Event-ID. A reconnect before any event id
  // was dispatched sends "<run_id>:0", the run's id taken from the first
  // response's X-Request-Id.
  std::function<std::string(int attempt, const std::string& run_id)>
      resume_path;
  // Cut point for connection `attempt` (0 = the first), given what was
  // received so far; nullopt: no cut.
  std::function<std::optional<int64_t>(int attempt, const ResumeResult& so_far)>
      cut_for_attempt;
  // Delay before each reconnect.
  absl::Duration reconnect_delay = absl::ZeroDuration();
  int max_connections = 20;
};

struct ResumeResult {
  // The run's id, from the first response's X-Request-Id.
  std::string run_id;
  std::vector<RawSseResult> connections;
  // Every `message` event of every connection, joined in arrival order.
  std::vector<SseEvent> messages;
  // Every non-message event (connected, error, timeout, done, heartbeat...).
  std::vector<SseEvent> others;
  bool got_done = false;
  // The stream ended with a 204 on a reconnect (after the final event).
  bool ended_with_204 = false;
  std::string last_event_id;
  int cuts = 0;
  std::string error;  // Why it stopped, if neither done nor 204.
};

ResumeResult ResumeUntilEnd(const ResumeOptions& options);

// Checks that `messages` are the updates of run `request_id` with seq
// 1..N exactly once each, in order, each with id "<rid>:<seq>", the last one
// `complete`. Returns "" when they are, else what is wrong.
std::string CheckDenseRun(const std::vector<SseEvent>& messages,
                          const std::string& request_id);

// A simple request (DELETE, GET) over its own connection, whole body read.
struct HttpResult {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // Lower-cased names.
  std::string body;
  std::string Header(const std::string& name) const;
};
HttpResult HttpCall(int port, const std::string& method,
                    const std::string& path,
                    absl::Duration timeout = absl::Seconds(10));

// VmRSS of a process in KiB; an error when /proc/<pid>/status cannot be read
// or holds no VmRSS (e.g. the process is gone), never 0.
absl::StatusOr<int64_t> RssKib(int pid);
// The same, or a test failure (ADD_FAILURE) and -1 when it cannot be read.
int64_t RssKibOrFail(int pid);

// Whether bounds on the processes' resident memory mean anything in this
// build: not under AddressSanitizer, which keeps freed memory in quarantine
// (256 MiB) and adds shadow memory. Tests measure and print the figures in
// every build and assert memory bounds only when this is true.
constexpr bool RssBoundsApply() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  return true;
#endif
}

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_RESUMABLE_SSE_H_
