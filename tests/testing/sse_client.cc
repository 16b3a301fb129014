#include "tests/testing/sse_client.h"

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace agentstream::testing {

void SseParser::Feed(std::string_view bytes,
                     const std::function<void(SseEvent)>& on_event) {
  parser_.on_comment = on_comment;
  parser_.Feed(bytes, [&](SseFields fields) {
    SseEvent event;
    event.id = std::move(fields.id);
    event.has_id = fields.has_id;
    event.event = std::move(fields.event);
    event.data = std::move(fields.data);
    event.received_at = absl::Now();
    event.json = nlohmann::json::parse(event.data, nullptr, false);
    on_event(std::move(event));
  });
}

std::string SseResponse::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (absl::AsciiStrToLower(k) == absl::AsciiStrToLower(name)) return v;
  }
  return "";
}

SseResponse StreamSse(const SseRequest& request) {
  SseResponse response;
  httplib::Client client(request.host, request.port);
  const int64_t timeout_ms = absl::ToInt64Milliseconds(request.timeout);
  client.set_read_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000);
  client.set_connection_timeout(5, 0);
  client.set_keep_alive(false);
  client.set_decompress(request.decompress);
  const absl::Time deadline = absl::Now() + request.timeout;

  SseParser parser;
  httplib::Request req;
  req.method = request.method;
  req.path = request.path;
  for (const auto& [k, v] : request.headers) req.headers.emplace(k, v);
  if (request.method == "POST" || request.method == "PUT") {
    req.body = request.body;
    req.headers.emplace("Content-Type", request.content_type);
  }
  req.response_handler = [&](const httplib::Response& res) {
    response.status = res.status;
    for (const auto& [k, v] : res.headers) response.headers.emplace(k, v);
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    response.raw.append(data, len);
    bool stop = false;
    parser.Feed(std::string_view(data, len), [&](SseEvent e) {
      response.events.push_back(std::move(e));
      if (!stop && request.stop &&
          request.stop(response.events.back(), response)) {
        stop = true;
      }
    });
    if (stop) response.stopped_by_client = true;
    if (absl::Now() > deadline) {
      response.error = "client deadline passed";
      return false;
    }
    return !stop;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  if (!client.send(req, res, error)) {
    if (!response.stopped_by_client && response.error.empty()) {
      response.error = httplib::to_string(error);
    }
  }
  if (response.status == 0) response.status = res.status;
  if (response.headers.empty()) {
    for (const auto& [k, v] : res.headers) response.headers.emplace(k, v);
  }
  if (response.raw.empty() && !res.body.empty()) response.raw = res.body;
  response.comments = parser.comments();
  response.retry_ms = parser.retry_ms();
  return response;
}

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace agentstream::testing
