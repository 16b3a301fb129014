// The terminal client's HTTP calls to the gateway, on cpp-httplib's client
// (Debian's 0.11): a streamed request whose body is handed over as it
// arrives, and the DELETE of a run. Each call uses its own connection.
#ifndef AGENTSTREAM_GATEWAY_CLI_GATEWAY_HTTP_H_
#define AGENTSTREAM_GATEWAY_CLI_GATEWAY_HTTP_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gateway/cli/options.h"

namespace httplib {
class Client;
}

namespace agentstream::cli {

struct HttpAnswer {
  int status = 0;          // 0: no HTTP answer.
  std::string request_id;  // X-Request-Id.
  std::optional<int> retry_after_s;
  std::string body;   // A non-streamed body (an error's JSON).
  std::string error;  // The transport error, when status is 0 or the
                      // body was cut.
};

class GatewayHttp final {
 public:
  explicit GatewayHttp(const CliOptions& options);
  ~GatewayHttp();

  // Sends the request and streams the answer: `on_head` once with the
  // status and headers, then `on_bytes` with the body as it arrives. Blocks
  // until the answer ends, the connection fails, or Stop(). `path` is under
  // the gateway URL's own path.
  HttpAnswer Stream(const std::string& method, const std::string& path,
                    const std::string& json_body,
                    const std::map<std::string, std::string>& headers,
                    const std::function<void(const HttpAnswer&)>& on_head,
                    const std::function<void(std::string_view)>& on_bytes);

  // DELETE `path` (bounded by the connect and a 10 s read timeout).
  HttpAnswer Delete(const std::string& path);

  // Ends a Stream in progress, from any thread; later Streams return at
  // once.
  void Stop();

 private:
  std::unique_ptr<httplib::Client> NewClient() const;
  std::map<std::string, std::string> BaseHeaders() const;

  const CliOptions options_;
  std::string origin_;  // scheme://host[:port]
  std::string prefix_;  // The URL's path, without a trailing '/'.
  absl::Mutex mu_;
  httplib::Client* streaming_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_GATEWAY_HTTP_H_
