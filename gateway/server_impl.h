// Internal to the gateway's HTTP server: GatewayServer::Impl, whose handlers
// are split by responsibility across http_server.cc (lifecycle, routing,
// small endpoints), stream_handlers.cc (new runs and the SSE response) and
// runs_handlers.cc (existing runs: resume, attach, cancel). Include only from
// those files.
#ifndef AGENTSTREAM_GATEWAY_SERVER_IMPL_H_
#define AGENTSTREAM_GATEWAY_SERVER_IMPL_H_

#include <httplib.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/chat_stream.h"
#include "gateway/http_server.h"
#include "gateway/resume.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway {

class GatewayServer::Impl {
 public:
  Impl(GatewayOptions options, std::shared_ptr<OrchestratorClient> client,
       const Clock* clock)
      : options_(std::move(options)),
        client_(std::move(client)),
        clock_(clock) {}

  absl::Status Start();
  void Stop();
  int port() const { return port_; }
  GatewayMetrics& metrics() { return metrics_; }

 private:
  // Everything a streaming response needs after its handler returned. It
  // holds one of the --max-streams slots until destroyed.
  struct StreamState {
    StreamState(GatewayMetrics& m, std::unique_ptr<RunStream> r,
                ChatStreamEncoder e)
        : metrics(m), run(std::move(r)), encoder(std::move(e)) {}
    ~StreamState() { metrics.streams_open.fetch_sub(1); }
    GatewayMetrics& metrics;
    std::unique_ptr<RunStream> run;
    ChatStreamEncoder encoder;
    std::vector<agentstream::v1::Update> first;
  };

  // http_server.cc
  void Route();
  void SendError(httplib::Response& res, const absl::Status& status,
                 const std::string& request_id) const;
  void SendJson(httplib::Response& res, int code,
                const nlohmann::json& body) const;
  std::string RequestIdFor(const httplib::Request& req,
                           httplib::Response& res) const;
  void HandleSpecialists(const httplib::Request& req, httplib::Response& res);
  void HandleReady(const httplib::Request& req, httplib::Response& res);
  void HandleStatic(const httplib::Request& req, httplib::Response& res);

  // stream_handlers.cc
  void HandleChatStream(const httplib::Request& req, httplib::Response& res,
                        bool is_post);
  // Takes one of the --max-streams slots (released by ~StreamState); false
  // (and a 503 or, when stopping, 503 answered) when none is free.
  bool ReserveStreamSlot(httplib::Response& res, const std::string& rid);
  // Answers 200 and follows `state` as an SSE stream.
  void ServeStream(const httplib::Request& req, httplib::Response& res,
                   std::shared_ptr<StreamState> state);
  // Sets the headers of every SSE response.
  static void SetStreamHeaders(const httplib::Request& req,
                               httplib::Response& res);

  // runs_handlers.cc
  void HandleRunStream(const httplib::Request& req, httplib::Response& res);
  // Follows an existing run (resume or second observer) and maps the first
  // answer of Attach onto the response (resume.h).
  void ServeAttach(const httplib::Request& req, httplib::Response& res,
                   const AttachTarget& target, HeartbeatStyle heartbeat);
  void HandleCancel(const httplib::Request& req, httplib::Response& res);

  const GatewayOptions options_;
  const std::shared_ptr<OrchestratorClient> client_;
  const Clock* const clock_;

  GatewayMetrics metrics_;
  httplib::Server server_;
  std::thread listen_thread_;
  std::atomic<bool> stopping_{false};
  int listen_fd_ = -1;
  int port_ = 0;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_SERVER_IMPL_H_
