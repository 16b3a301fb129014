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

// Not thread-safe.
class SseParser final {
 public:
  // Feeds raw bytes; calls `on_event` for every complete event.
  void Feed(std::string_view bytes,
            const std::function<void(SseEvent)>& on_event);
  int comments() const { return comments_; }
  std::optional<int> retry_ms() const { return retry_ms_; }
  // The EventSource "last event ID string": the last `id:` field seen,
  // committed only when a blank line ends its event (dispatched or not), and
  // kept across events without an `id:` line.
  const std::string& last_event_id() const { return last_event_id_; }
  // Called with each comment line (without the leading ':').
  std::function<void(std::string_view)> on_comment;

 private:
  void Line(std::string_view line,
            const std::function<void(SseEvent)>& on_event);
  std::string buffer_;
  SseEvent current_;
  bool has_data_ = false;
  bool pending_cr_ = false;
  std::string id_buffer_;
  std::string last_event_id_;
  int comments_ = 0;
  std::optional<int> retry_ms_;
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
