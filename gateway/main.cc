// gateway: the HTTP/SSE front of agentstream (docs/GATEWAY.md).
#include <cstdlib>
#include <memory>

#include "common/flags.h"
#include "common/log.h"
#include "common/process_util.h"
#include "gateway/http_server.h"
#include "gateway/orchestrator_client.h"

#ifndef AGENTSTREAM_DEFAULT_WEB_ROOT
#define AGENTSTREAM_DEFAULT_WEB_ROOT "gateway/web"
#endif

int main(int argc, char** argv) {
  agentstream::BlockTerminationSignals();

  std::string host = "127.0.0.1";
  int64_t port = 8080;
  std::string port_file;
  std::string orchestrator = "127.0.0.1:50051";
  int64_t heartbeat_ms = 15000;
  int64_t retry_ms = 2000;
  int64_t max_streams = 10000;
  int64_t first_update_timeout_ms = 10000;
  int64_t thread_stack_kib = 128;
  int64_t write_timeout_ms = 30000;
  int64_t stream_queue = 256;
  std::string web_root = AGENTSTREAM_DEFAULT_WEB_ROOT;
  std::string log_level = "info";

  agentstream::FlagSet flags(
      "gateway",
      "Serves the orchestrator's run streams to browsers as Server-Sent "
      "Events, plus the web client.");
  flags.String("host", &host, "Address to listen on.", "AGENTSTREAM_HOST");
  flags.Int("port", &port, "HTTP port (0: an ephemeral port).",
            "AGENTSTREAM_PORT");
  flags.String("port-file", &port_file,
               "Write the bound port to this file once listening.",
               "AGENTSTREAM_PORT_FILE");
  flags.String("orchestrator", &orchestrator,
               "The orchestrator's gRPC address (host:port or dns:///...).",
               "AGENTSTREAM_ORCHESTRATOR");
  flags.Int("heartbeat-ms", &heartbeat_ms,
            "Interval of SSE heartbeats on every stream.",
            "AGENTSTREAM_HEARTBEAT_MS");
  flags.Int("retry-ms", &retry_ms,
            "The `retry:` (reconnection delay) sent to clients.",
            "AGENTSTREAM_RETRY_MS");
  flags.Int("max-streams", &max_streams,
            "Open SSE streams at most; more get 503 with Retry-After.",
            "AGENTSTREAM_MAX_STREAMS");
  flags.Int("first-update-timeout-ms", &first_update_timeout_ms,
            "How long a new stream waits for the orchestrator's first update "
            "before answering 503.",
            "AGENTSTREAM_FIRST_UPDATE_TIMEOUT_MS");
  flags.Int("thread-stack-kib", &thread_stack_kib,
            "Stack size of each connection thread, KiB.",
            "AGENTSTREAM_THREAD_STACK_KIB");
  flags.Int("write-timeout-ms", &write_timeout_ms,
            "A client that takes no bytes for this long is dropped (its "
            "orchestrator call ends; the run follows its on_disconnect "
            "policy).",
            "AGENTSTREAM_WRITE_TIMEOUT_MS");
  flags.Int("stream-queue", &stream_queue,
            "Updates buffered per stream before the gateway stops reading "
            "from the orchestrator (gRPC flow control then holds it back).",
            "AGENTSTREAM_STREAM_QUEUE");
  flags.String("web-root", &web_root,
               "Directory of the web client served at /.",
               "AGENTSTREAM_WEB_ROOT");
  flags.String("log-level", &log_level, "debug, info, warning or error.",
               "AGENTSTREAM_LOG_LEVEL");
  agentstream::ParseFlagsOrExit(flags, argc, argv);
  agentstream::InitLogging("gateway", agentstream::ParseLogLevel(log_level));

  if (port < 0 || port > 65535 || heartbeat_ms <= 0 || retry_ms < 0 ||
      max_streams <= 0 || first_update_timeout_ms <= 0 ||
      thread_stack_kib < 64 || write_timeout_ms <= 0 || stream_queue <= 0) {
    AS_LOG(ERROR) << "invalid flag values: --port 0..65535, --heartbeat-ms "
                     "> 0, --retry-ms >= 0, --max-streams > 0, "
                     "--first-update-timeout-ms > 0, --thread-stack-kib >= 64, "
                     "--write-timeout-ms > 0, --stream-queue > 0";
    return 2;
  }

  agentstream::gateway::GatewayOptions options;
  options.host = host;
  options.port = static_cast<int>(port);
  options.heartbeat_interval = absl::Milliseconds(heartbeat_ms);
  options.retry_ms = retry_ms;
  options.max_streams = max_streams;
  options.first_update_timeout = absl::Milliseconds(first_update_timeout_ms);
  options.web_root = web_root;
  options.thread_stack_bytes = static_cast<size_t>(thread_stack_kib) * 1024;
  options.write_timeout = absl::Milliseconds(write_timeout_ms);

  std::shared_ptr<agentstream::gateway::OrchestratorClient> client =
      agentstream::gateway::NewGrpcOrchestratorClient(
          agentstream::gateway::NewOrchestratorChannel(orchestrator),
          {.queue_capacity = static_cast<size_t>(stream_queue)});
  agentstream::gateway::GatewayServer server(options, client);
  if (absl::Status s = server.Start(); !s.ok()) {
    AS_LOG(ERROR) << s;
    return 1;
  }
  if (absl::Status s = agentstream::WritePortFile(port_file, server.port());
      !s.ok()) {
    AS_LOG(ERROR) << s;
    return 1;
  }
  AS_LOG(INFO) << "gateway on http://" << host << ":" << server.port()
               << "/ -> orchestrator " << orchestrator << ", web root "
               << web_root;
  const int sig = agentstream::WaitForTerminationSignal();
  AS_LOG(INFO) << "signal " << sig << ": stopping";
  server.Stop();
  AS_LOG(INFO) << "stopped";
  return 0;
}
