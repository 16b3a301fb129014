// A Server-Sent Events client for tests and benchmarks: an incremental parser
// (WHATWG event-stream rules: `data:` lines joined by "\n", `id:`, `event:`,
// `retry:`, comment lines) and a blocking HTTP client on cpp-httplib that
// records every event with its arrival time.
#ifndef AGENTSTREAM_TESTS_TESTING_SSE_CLIENT_H_
#define AGENTSTREAM_TESTS_TESTING_SSE_CLIENT_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "common/sse_parser.h"
#include "nlohmann/json.hpp"

namespace agentstream::testing {

struct SseEvent {
  std::string id;
  bool has_id = false;
  std::string event = "message";
  std::string data;
  absl::Time received_at;
  // `data` parsed as JSON (discarded value if it is not JSON).
  nlohmann::json json;
};

// Not thread-safe. The parsing is common/sse_parser.h's; this adds the
// arrival time and the parsed JSON to each event.
class SseParser final {
 public:
  // Feeds raw bytes; calls `on_event` for every complete event.
  void Feed(std::string_view bytes,
            const std::function<void(SseEvent)>& on_event);
  int comments() const { return parser_.comments(); }
  std::optional<int> retry_ms() const { return parser_.retry_ms(); }
  // The EventSource "last event ID string" (common/sse_parser.h).
  const std::string& last_event_id() const { return parser_.last_event_id(); }
  // Called with each comment line (without the leading ':').
  std::function<void(std::string_view)> on_comment;

 private:
  SseStreamParser parser_;
};

struct SseResponse {
  int status = 0;  // 0: no HTTP response (connection failed).
  std::multimap<std::string, std::string> headers;
  std::string raw;  // Every byte of the body, as received.
  std::vector<SseEvent> events;
  int comments = 0;
  std::optional<int> retry_ms;
  std::string error;  // Transport error, if any.
  bool stopped_by_client = false;

  std::string Header(const std::string& name) const;
};

struct SseRequest {
  std::string method = "GET";
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path;
  std::string body;  // For POST.
  std::string content_type = "application/json";
  std::multimap<std::string, std::string> headers;
  absl::Duration timeout = absl::Seconds(60);
  // Whether a Content-Encoding (gzip) body is decoded before it is parsed
  // (false: `raw` keeps the bytes as sent, and no events are parsed from
  // an encoded body).
  bool decompress = true;
  // Called after each event; returning true closes the connection.
  std::function<bool(const SseEvent&, const SseResponse&)> stop;
};

// Blocks until the stream ends, `stop` says so, or the timeout passes.
SseResponse StreamSse(const SseRequest& request);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_SSE_CLIENT_H_
