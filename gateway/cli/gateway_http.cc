#include "gateway/cli/gateway_http.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"

namespace agentstream::cli {
namespace {

// The DELETE's answer comes from the orchestrator through the gateway.
constexpr int kDeleteReadTimeoutS = 10;

void SetTimeout(httplib::Client& client, absl::Duration read,
                absl::Duration connect) {
  const int64_t read_us = absl::ToInt64Microseconds(read);
  const int64_t connect_us = absl::ToInt64Microseconds(connect);
  client.set_read_timeout(read_us / 1000000, read_us % 1000000);
  client.set_connection_timeout(connect_us / 1000000, connect_us % 1000000);
}

void ReadHead(const httplib::Response& res, HttpAnswer& answer) {
  answer.status = res.status;
  answer.request_id = res.get_header_value("X-Request-Id");
  int seconds = 0;
  if (absl::SimpleAtoi(res.get_header_value("Retry-After"), &seconds)) {
    answer.retry_after_s = seconds;
  }
}

}  // namespace

GatewayHttp::GatewayHttp(const CliOptions& options) : options_(options) {
  // options.cc checked the scheme; the path after the authority, if any,
  // prefixes every request (a gateway behind a proxy's path).
  const size_t authority = options_.gateway.find("://") + 3;
  const size_t slash = options_.gateway.find('/', authority);
  origin_ = options_.gateway.substr(0, slash);
  if (slash != std::string::npos) prefix_ = options_.gateway.substr(slash);
}

GatewayHttp::~GatewayHttp() = default;

std::unique_ptr<httplib::Client> GatewayHttp::NewClient() const {
  auto client = std::make_unique<httplib::Client>(origin_);
  client->set_keep_alive(false);
  // The stream is read as the gateway sent it (compression is opt-in on
  // its side; this client never asks for it).
  client->set_decompress(false);
  return client;
}

std::map<std::string, std::string> GatewayHttp::BaseHeaders() const {
  std::map<std::string, std::string> headers;
  if (!options_.token.empty()) {
    headers["Authorization"] = "Bearer " + options_.token;
  }
  return headers;
}

HttpAnswer GatewayHttp::Stream(
    const std::string& method, const std::string& path,
    const std::string& json_body,
    const std::map<std::string, std::string>& headers,
    const std::function<void(const HttpAnswer&)>& on_head,
    const std::function<void(std::string_view)>& on_bytes) {
  HttpAnswer answer;
  std::unique_ptr<httplib::Client> client = NewClient();
  SetTimeout(*client, options_.read_timeout, options_.connect_timeout);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      answer.error = "stopped";
      return answer;
    }
    streaming_ = client.get();
  }
  httplib::Request req;
  req.method = method;
  req.path = prefix_ + path;
  for (const auto& [k, v] : BaseHeaders()) req.headers.emplace(k, v);
  for (const auto& [k, v] : headers) req.headers.emplace(k, v);
  req.headers.emplace("Accept", "text/event-stream");
  if (!json_body.empty()) {
    req.body = json_body;
    req.headers.emplace("Content-Type", "application/json");
  }
  req.response_handler = [&](const httplib::Response& res) {
    ReadHead(res, answer);
    on_head(answer);
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (answer.status == 200) {
      on_bytes(std::string_view(data, len));
    } else {
      answer.body.append(data, len);
    }
    absl::MutexLock lock(&mu_);
    return !stopped_;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  if (!client->send(req, res, error)) {
    answer.error = httplib::to_string(error);
  }
  if (answer.status == 0 && res.status > 0) ReadHead(res, answer);
  absl::MutexLock lock(&mu_);
  streaming_ = nullptr;
  if (stopped_) answer.error = "stopped";
  return answer;
}

HttpAnswer GatewayHttp::Delete(const std::string& path) {
  HttpAnswer answer;
  std::unique_ptr<httplib::Client> client = NewClient();
  SetTimeout(*client, absl::Seconds(kDeleteReadTimeoutS),
             options_.connect_timeout);
  httplib::Headers headers;
  for (const auto& [k, v] : BaseHeaders()) headers.emplace(k, v);
  httplib::Result result = client->Delete(prefix_ + path, headers);
  if (!result) {
    answer.error = httplib::to_string(result.error());
    return answer;
  }
  ReadHead(*result, answer);
  answer.body = result->body;
  return answer;
}

void GatewayHttp::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  if (streaming_ != nullptr) streaming_->stop();
}

}  // namespace agentstream::cli
