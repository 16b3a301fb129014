// gateway: the HTTP/SSE front of agentstream (docs/GATEWAY.md).
#include <sys/resource.h>

#include <cstdlib>
#include <memory>
#include <string_view>

#include "common/flags.h"
#include "common/log.h"
#include "common/process_util.h"
#include "common/tls.h"
#include "gateway/auth/auth_flags.h"
#include "gateway/auth/token_command.h"
#include "gateway/http_server.h"
#include "gateway/orchestrator_client.h"

#ifndef AGENTSTREAM_DEFAULT_WEB_ROOT
#define AGENTSTREAM_DEFAULT_WEB_ROOT "gateway/web"
#endif

namespace {

using agentstream::gateway::GatewayOptions;
using agentstream::gateway::GrpcOrchestratorClientOptions;

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// Every open connection is a file: take the hard limit as the soft one.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // `gateway token add|list`: the --auth=token file's entries
  // (docs/SECURITY.md, "Issuing tokens").
  if (argc > 1 && std::string_view(argv[1]) == "token") {
    return agentstream::gateway::auth::RunTokenCommand(argc - 1, argv + 1);
  }
  agentstream::BlockTerminationSignals();
  agentstream::ConfigureServingRuntime();

  // The defaults are the options structs' own (one place for each).
  GatewayOptions options;
  options.web_root = AGENTSTREAM_DEFAULT_WEB_ROOT;
  GrpcOrchestratorClientOptions client_options;
  std::string port_file;
  std::string orchestrator = "127.0.0.1:50051";
  std::string log_level = "info";
  agentstream::TlsFiles tls;
  int64_t port = options.port;
  int64_t heartbeat_ms = Ms(options.heartbeat_interval);
  int64_t retry_ms = options.retry_ms;
  int64_t compress_min_bytes = static_cast<int64_t>(options.compress_min_bytes);
  bool stream_gzip = options.stream_gzip;
  int64_t max_streams = options.max_streams;
  int64_t first_update_timeout_ms = Ms(options.first_update_timeout);
  int64_t thread_stack_kib =
      static_cast<int64_t>(options.thread_stack_bytes / 1024);
  int64_t write_timeout_ms = Ms(options.write_timeout);
  int64_t stream_queue = static_cast<int64_t>(client_options.queue_capacity);
  int64_t stream_queue_kib =
      static_cast<int64_t>(client_options.queue_max_bytes / 1024);
  int64_t session_max_age_ms = Ms(client_options.session_max_age);
  int64_t stream_buffer_kib =
      static_cast<int64_t>(options.max_stream_buffer_bytes / 1024);
  int64_t max_request_line_bytes =
      static_cast<int64_t>(options.limits.max_request_line_bytes);
  int64_t max_header_bytes =
      static_cast<int64_t>(options.limits.max_header_bytes);
  int64_t max_headers = static_cast<int64_t>(options.limits.max_header_count);
  int64_t header_timeout_ms = Ms(options.header_timeout);
  int64_t body_timeout_ms = Ms(options.body_timeout);
  int64_t idle_timeout_ms = Ms(options.idle_timeout);
  int64_t max_connections = static_cast<int64_t>(options.max_connections);
  int64_t max_connections_per_client =
      static_cast<int64_t>(options.max_connections_per_client);
  int64_t max_streams_per_client = options.client_limits.max_streams_per_client;
  double run_starts_per_second = options.client_limits.run_starts_per_second;
  int64_t run_start_burst = options.client_limits.run_start_burst;

  agentstream::FlagSet flags(
      "gateway",
      "Serves the orchestrator's run streams to browsers as Server-Sent "
      "Events, plus the web client. Every bound is a flag (docs/GATEWAY.md, "
      "\"Limits\").\n\n"
      "Subcommands (the entries of an --auth=token file, docs/SECURITY.md, "
      "\"Issuing tokens\"):\n"
      "  gateway token add --file FILE --name NAME [--scope S]...\n"
      "  gateway token list --file FILE");
  flags.String("host", &options.host, "Address to listen on.",
               "AGENTSTREAM_HOST");
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
  flags.Int("compress-min-bytes", &compress_min_bytes,
            "With compress=1, updates whose JSON is larger than this go "
            "gzipped and base64-encoded in a readable envelope.",
            "AGENTSTREAM_COMPRESS_MIN_BYTES");
  flags.Bool("stream-gzip", &stream_gzip,
             "Send a stream gzip-encoded when its client sends "
             "Accept-Encoding: gzip (one deflate stream per response, "
             "flushed after every write; about 16 KiB more per stream).",
             "AGENTSTREAM_STREAM_GZIP");
  flags.Int("max-streams", &max_streams,
            "Open SSE streams at most; more get 503 with Retry-After.",
            "AGENTSTREAM_MAX_STREAMS");
  flags.Int("max-streams-per-client", &max_streams_per_client,
            "Open SSE streams per client at once (0: no bound); more get 429 "
            "with Retry-After.",
            "AGENTSTREAM_MAX_STREAMS_PER_CLIENT");
  flags.Double("run-starts-per-second", &run_starts_per_second,
               "Runs a client may start per second, on average (0: no "
               "bound); more get 429 with Retry-After.",
               "AGENTSTREAM_RUN_STARTS_PER_SECOND");
  flags.Int("run-start-burst", &run_start_burst,
            "Runs a client may start at once before --run-starts-per-second "
            "applies.",
            "AGENTSTREAM_RUN_START_BURST");
  flags.Repeated("trusted-proxies", &options.trusted_proxies,
                 "Proxies (addresses or prefixes, comma-separated) whose "
                 "X-Forwarded-For names the client for per-client bounds; "
                 "they are not bound per connection themselves.",
                 "AGENTSTREAM_TRUSTED_PROXIES");
  flags.Int("max-connections", &max_connections,
            "Open HTTP connections at most; more are answered 503 and "
            "closed.",
            "AGENTSTREAM_MAX_CONNECTIONS");
  flags.Int("max-connections-per-client", &max_connections_per_client,
            "Open HTTP connections per client address (0: no bound); more "
            "are answered 429 and closed.",
            "AGENTSTREAM_MAX_CONNECTIONS_PER_CLIENT");
  flags.Int("max-request-line-bytes", &max_request_line_bytes,
            "Longest request line (method, URL, version); longer: 414.",
            "AGENTSTREAM_MAX_REQUEST_LINE_BYTES");
  flags.Int("max-header-bytes", &max_header_bytes,
            "Largest header section; larger: 431.",
            "AGENTSTREAM_MAX_HEADER_BYTES");
  flags.Int("max-headers", &max_headers,
            "Most header fields in a request; more: 431.",
            "AGENTSTREAM_MAX_HEADERS");
  flags.Int("header-timeout-ms", &header_timeout_ms,
            "Time a client has to send a request's head; then 408 and close.",
            "AGENTSTREAM_HEADER_TIMEOUT_MS");
  flags.Int("body-timeout-ms", &body_timeout_ms,
            "Time a client has to send a request's body; then 408 and close.",
            "AGENTSTREAM_BODY_TIMEOUT_MS");
  flags.Int("idle-timeout-ms", &idle_timeout_ms,
            "Time a keep-alive connection may idle between requests.",
            "AGENTSTREAM_IDLE_TIMEOUT_MS");
  flags.Int("first-update-timeout-ms", &first_update_timeout_ms,
            "How long a new stream waits for the orchestrator's first update "
            "before answering 503.",
            "AGENTSTREAM_FIRST_UPDATE_TIMEOUT_MS");
  flags.Int("thread-stack-kib", &thread_stack_kib,
            "Stack size of each handler thread (one per open stream), KiB.",
            "AGENTSTREAM_THREAD_STACK_KIB");
  flags.Int("write-timeout-ms", &write_timeout_ms,
            "A client that takes no bytes for this long is dropped (its "
            "orchestrator call ends; the run follows its on_disconnect "
            "policy).",
            "AGENTSTREAM_WRITE_TIMEOUT_MS");
  flags.Int("stream-buffer-kib", &stream_buffer_kib,
            "Unsent bytes queued per stream for a slow client, KiB; past it "
            "the stream waits for the client.",
            "AGENTSTREAM_STREAM_BUFFER_KIB");
  flags.Int("stream-queue", &stream_queue,
            "Updates buffered per stream before the gateway stops reading "
            "from the orchestrator, when streams are their own calls (an "
            "orchestrator without Session; gRPC flow control then holds it "
            "back).",
            "AGENTSTREAM_STREAM_QUEUE");
  flags.Int("stream-queue-kib", &stream_queue_kib,
            "Bytes of updates buffered per stream, KiB: the stream's window "
            "in the orchestrator session (the orchestrator sends no more "
            "until the stream takes them); per-call streams stop reading "
            "past either bound.",
            "AGENTSTREAM_STREAM_QUEUE_KIB");
  flags.Int("session-max-age-ms", &session_max_age_ms,
            "Streams to the orchestrator share a few Session calls; one "
            "older than this takes no new stream (the next opens a new call, "
            "which may reach another orchestrator replica) and ends after its "
            "last stream. 0: never.",
            "AGENTSTREAM_SESSION_MAX_AGE_MS");
  flags.String("web-root", &options.web_root,
               "Directory of the web client served at /.",
               "AGENTSTREAM_WEB_ROOT");
  flags.String("public-url", &options.public_url,
               "The URL clients reach this gateway at (e.g. "
               "https://agents.example.com), named in the A2A agent card; "
               "empty: the request's Host header, over http.",
               "AGENTSTREAM_PUBLIC_URL");
  agentstream::RegisterTlsFlags(flags, &tls);
  agentstream::gateway::auth::AuthFlagValues auth;
  agentstream::gateway::auth::RegisterAuthFlags(flags, &auth);
  flags.String("log-level", &log_level, "debug, info, warning or error.",
               "AGENTSTREAM_LOG_LEVEL");
  agentstream::ParseFlagsOrExit(flags, argc, argv);
  agentstream::ValidateTlsOrExit(tls);
  agentstream::InitLogging("gateway", agentstream::ParseLogLevel(log_level));
  if (absl::Status s = agentstream::gateway::auth::ApplyAuthFlags(&auth);
      !s.ok()) {
    AS_LOG(ERROR) << s.message();
    return 2;
  }
  options.auth = auth.options;
  options.auth_metrics = auth.protect_metrics;
  options.auth_readyz = auth.protect_readyz;

  if (port < 0 || port > 65535 || heartbeat_ms <= 0 || retry_ms < 0 ||
      compress_min_bytes < 0 || max_streams <= 0 ||
      max_streams_per_client < 0 || run_starts_per_second < 0 ||
      run_start_burst < 1 || max_connections <= 0 ||
      max_connections_per_client < 0 || max_request_line_bytes < 256 ||
      max_header_bytes < 256 || max_headers < 1 || header_timeout_ms <= 0 ||
      body_timeout_ms <= 0 || idle_timeout_ms <= 0 ||
      first_update_timeout_ms <= 0 || thread_stack_kib < 64 ||
      write_timeout_ms <= 0 || stream_buffer_kib < 1 || stream_queue <= 0 ||
      stream_queue_kib < 1 || session_max_age_ms < 0) {
    AS_LOG(ERROR)
        << "invalid flag values: --port 0..65535, --heartbeat-ms > 0, "
           "--retry-ms >= 0, --compress-min-bytes >= 0, --max-streams > 0, "
           "--max-streams-per-client "
           ">= 0, --run-starts-per-second >= 0, --run-start-burst >= 1, "
           "--max-connections > 0, --max-connections-per-client >= 0, "
           "--max-request-line-bytes >= 256, --max-header-bytes >= 256, "
           "--max-headers >= 1, --header-timeout-ms, --body-timeout-ms, "
           "--idle-timeout-ms, --first-update-timeout-ms and "
           "--write-timeout-ms > 0, --thread-stack-kib >= 64, "
           "--stream-buffer-kib >= 1, --stream-queue > 0, "
           "--stream-queue-kib >= 1, --session-max-age-ms >= 0";
    return 2;
  }

  options.port = static_cast<int>(port);
  options.heartbeat_interval = absl::Milliseconds(heartbeat_ms);
  options.retry_ms = retry_ms;
  options.compress_min_bytes = static_cast<size_t>(compress_min_bytes);
  options.stream_gzip = stream_gzip;
  options.max_streams = max_streams;
  options.first_update_timeout = absl::Milliseconds(first_update_timeout_ms);
  options.thread_stack_bytes = static_cast<size_t>(thread_stack_kib) * 1024;
  options.write_timeout = absl::Milliseconds(write_timeout_ms);
  options.max_stream_buffer_bytes =
      static_cast<size_t>(stream_buffer_kib) * 1024;
  options.limits.max_request_line_bytes =
      static_cast<size_t>(max_request_line_bytes);
  options.limits.max_header_bytes = static_cast<size_t>(max_header_bytes);
  options.limits.max_header_count = static_cast<size_t>(max_headers);
  options.header_timeout = absl::Milliseconds(header_timeout_ms);
  options.body_timeout = absl::Milliseconds(body_timeout_ms);
  options.idle_timeout = absl::Milliseconds(idle_timeout_ms);
  options.max_connections = static_cast<size_t>(max_connections);
  options.max_connections_per_client =
      static_cast<size_t>(max_connections_per_client);
  options.client_limits.max_streams_per_client = max_streams_per_client;
  options.client_limits.run_starts_per_second = run_starts_per_second;
  options.client_limits.run_start_burst = run_start_burst;
  client_options.queue_capacity = static_cast<size_t>(stream_queue);
  client_options.queue_max_bytes = static_cast<size_t>(stream_queue_kib) * 1024;
  client_options.session_max_age = absl::Milliseconds(session_max_age_ms);

  RaiseFileLimit();
  std::shared_ptr<agentstream::gateway::OrchestratorClient> client =
      agentstream::gateway::NewGrpcOrchestratorClient(
          agentstream::gateway::NewOrchestratorChannel(orchestrator, tls),
          client_options);
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
  AS_LOG(INFO) << "gateway on http://" << options.host << ":" << server.port()
               << "/ -> orchestrator " << orchestrator << ", web root "
               << options.web_root;
  const int sig = agentstream::WaitForTerminationSignal();
  AS_LOG(INFO) << "signal " << sig << ": stopping";
  server.Stop();
  AS_LOG(INFO) << "stopped";
  return 0;
}
