// An incremental parser of text/event-stream (the WHATWG rules EventSource
// follows): `data:` lines joined by "\n", `id:`, `event:`, `retry:`, comment
// lines; CR, LF and CRLF all end a line. The one parser of the gateway's wire
// (docs/GATEWAY.md "The wire") on the C++ side: the terminal client
// (gateway/cli/) reads its streams with it, and the tests' SSE client
// (tests/testing/sse_client.h) wraps it.
#ifndef AGENTSTREAM_COMMON_SSE_PARSER_H_
#define AGENTSTREAM_COMMON_SSE_PARSER_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace agentstream {

struct SseFields {
  std::string id;
  bool has_id = false;  // The event had an `id:` line.
  std::string event = "message";
  std::string data;
};

// Not thread-safe. An event is dispatched when a blank line ends it and it
// had at least one `data:` line (an event without data is dropped, as
// EventSource drops it).
class SseStreamParser final {
 public:
  // Feeds raw bytes (any split: a line may span calls); calls `on_event` for
  // every complete event.
  void Feed(std::string_view bytes,
            const std::function<void(SseFields)>& on_event);
  int comments() const { return comments_; }
  // The last `retry:` field that was a number.
  std::optional<int> retry_ms() const { return retry_ms_; }
  // The EventSource "last event ID string": the last `id:` field seen,
  // committed only when a blank line ends its event (dispatched or not), and
  // kept across events without an `id:` line.
  const std::string& last_event_id() const { return last_event_id_; }
  // Called with each comment line (without the leading ':').
  std::function<void(std::string_view)> on_comment;

 private:
  void Line(std::string_view line,
            const std::function<void(SseFields)>& on_event);
  std::string buffer_;
  SseFields current_;
  bool has_data_ = false;
  bool pending_cr_ = false;
  std::string id_buffer_;
  std::string last_event_id_;
  int comments_ = 0;
  std::optional<int> retry_ms_;
};

}  // namespace agentstream

#endif  // AGENTSTREAM_COMMON_SSE_PARSER_H_
