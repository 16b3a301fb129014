// replay: serves recorded runs of the gateway on its stream endpoints, with
// their original timing (docs/CLIENT.md, "Mock server").
#include <cstdlib>
#include <memory>
#include <string>

#include "common/flags.h"
#include "common/log.h"
#include "common/process_util.h"
#include "gateway/replay/recording.h"
#include "gateway/replay/replay_plan.h"
#include "gateway/replay/replay_server.h"

namespace {

using agentstream::gateway::replay::kMaxSpeed;
using agentstream::gateway::replay::kMinSpeed;
using agentstream::gateway::replay::RecordingLibrary;
using agentstream::gateway::replay::ReplayServer;
using agentstream::gateway::replay::ReplayServerOptions;

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

}  // namespace

int main(int argc, char** argv) {
  agentstream::BlockTerminationSignals();

  // The defaults are the options struct's own (one place for each).
  ReplayServerOptions options;
  std::string dir;
  std::string port_file;
  std::string log_level = "info";
  int64_t port = options.port;
  double speed = options.replay.speed;
  int64_t heartbeat_ms = Ms(options.replay.heartbeat_interval);
  int64_t retry_ms = options.replay.retry_ms;
  int64_t max_gap_ms = Ms(options.replay.max_gap);
  int64_t max_streams = static_cast<int64_t>(options.max_streams);
  int64_t write_timeout_ms = Ms(options.write_timeout);
  int64_t max_runs =
      static_cast<int64_t>(agentstream::gateway::replay::kMaxRecordings);
  int64_t max_file_mib = static_cast<int64_t>(
      agentstream::gateway::replay::kMaxRecordingBytes / (1024 * 1024));

  int64_t max_total_mib = static_cast<int64_t>(
      agentstream::gateway::replay::kMaxTotalRecordingBytes / (1024 * 1024));

  agentstream::FlagSet flags(
      "replay",
      "Serves recorded runs (SSE bodies of the gateway saved by `curl -N`, "
      "one *.sse file per run in --dir) on the gateway's endpoints "
      "(/api/chat/stream, /api/runs/{id}/stream, resume by Last-Event-ID or "
      "after=, /healthz), with the recorded timing scaled by `speed`: a "
      "mock server for frontend tests (docs/CLIENT.md, \"Mock server\").");
  flags.String("dir", &dir, "Directory of the recordings (*.sse). Required.",
               "AGENTSTREAM_REPLAY_DIR");
  flags.String("host", &options.host, "Address to listen on.",
               "AGENTSTREAM_HOST");
  flags.Int("port", &port, "HTTP port (0: an ephemeral port).",
            "AGENTSTREAM_PORT");
  flags.String("port-file", &port_file,
               "Write the bound port to this file once listening.",
               "AGENTSTREAM_PORT_FILE");
  flags.Double("speed", &speed,
               "Timing factor when a request names no `speed=` (1: as "
               "recorded, 10: ten times faster; 0.01 to 1000).",
               "AGENTSTREAM_REPLAY_SPEED");
  flags.Int("heartbeat-ms", &heartbeat_ms,
            "Interval of heartbeats while a stream waits for its next event.",
            "AGENTSTREAM_HEARTBEAT_MS");
  flags.Int("retry-ms", &retry_ms, "The `retry:` sent to clients.",
            "AGENTSTREAM_RETRY_MS");
  flags.Int("max-gap-ms", &max_gap_ms,
            "A recorded pause longer than this (after speed) is shortened to "
            "it.",
            "AGENTSTREAM_REPLAY_MAX_GAP_MS");
  flags.Int("max-streams", &max_streams,
            "Open streams at most; more get 503 with Retry-After.",
            "AGENTSTREAM_MAX_STREAMS");
  flags.Int("write-timeout-ms", &write_timeout_ms,
            "A client that takes no bytes for this long is dropped.",
            "AGENTSTREAM_WRITE_TIMEOUT_MS");
  flags.Int("max-runs", &max_runs,
            "Recordings at most in --dir; more: the server does not start.",
            "AGENTSTREAM_REPLAY_MAX_RUNS");
  flags.Int("max-file-mib", &max_file_mib,
            "Largest recording, MiB; larger files are skipped.",
            "AGENTSTREAM_REPLAY_MAX_FILE_MIB");
  flags.Int("max-total-mib", &max_total_mib,
            "All recordings together, MiB (they are held in memory); more: "
            "the server does not start.",
            "AGENTSTREAM_REPLAY_MAX_TOTAL_MIB");
  flags.String("log-level", &log_level, "debug, info, warning or error.",
               "AGENTSTREAM_LOG_LEVEL");
  agentstream::ParseFlagsOrExit(flags, argc, argv);
  agentstream::InitLogging("replay", agentstream::ParseLogLevel(log_level));

  if (dir.empty() || port < 0 || port > 65535 || !(speed >= kMinSpeed) ||
      speed > kMaxSpeed || heartbeat_ms <= 0 || retry_ms < 0 ||
      max_gap_ms <= 0 || max_streams <= 0 || max_streams > 10000 ||
      write_timeout_ms <= 0 || max_runs <= 0 ||
      max_runs >
          static_cast<int64_t>(agentstream::gateway::replay::kMaxRecordings) ||
      max_file_mib <= 0 || max_total_mib <= 0 ||
      max_total_mib >
          static_cast<int64_t>(
              agentstream::gateway::replay::kMaxTotalRecordingBytes /
              (1024 * 1024)) ||
      max_file_mib > static_cast<int64_t>(
                         agentstream::gateway::replay::kMaxRecordingBytes /
                         (1024 * 1024))) {
    AS_LOG(ERROR) << "invalid flag values: --dir is required, --port "
                     "0..65535, --speed 0.01..1000, --heartbeat-ms, "
                     "--max-gap-ms and --write-timeout-ms > 0, --retry-ms "
                     ">= 0, --max-streams 1..10000, --max-runs 1..1000, "
                     "--max-file-mib 1..64, --max-total-mib 1..512";
    return 2;
  }
  options.port = static_cast<int>(port);
  options.replay.speed = speed;
  options.replay.heartbeat_interval = absl::Milliseconds(heartbeat_ms);
  options.replay.retry_ms = retry_ms;
  options.replay.max_gap = absl::Milliseconds(max_gap_ms);
  options.max_streams = static_cast<size_t>(max_streams);
  options.write_timeout = absl::Milliseconds(write_timeout_ms);

  auto library =
      RecordingLibrary::Load(dir, static_cast<size_t>(max_runs),
                             static_cast<size_t>(max_file_mib) * 1024 * 1024,
                             static_cast<size_t>(max_total_mib) * 1024 * 1024);
  if (!library.ok()) {
    AS_LOG(ERROR) << library.status();
    return 1;
  }
  for (const std::string& why : (*library)->skipped()) {
    AS_LOG(WARNING) << "skipped " << why;
  }
  for (const auto& r : (*library)->recordings()) {
    AS_LOG(INFO) << "serving run " << r.request_id << " (" << r.source << ", "
                 << r.updates << " updates"
                 << (r.question.empty() ? "" : ", question: ") << r.question
                 << ")";
  }
  ReplayServer server(options, *std::move(library));
  if (absl::Status s = server.Start(); !s.ok()) {
    AS_LOG(ERROR) << s;
    return 1;
  }
  if (absl::Status s = agentstream::WritePortFile(port_file, server.port());
      !s.ok()) {
    AS_LOG(ERROR) << s;
    return 1;
  }
  AS_LOG(INFO) << "replay on http://" << options.host << ":" << server.port()
               << "/ from " << dir;
  const int sig = agentstream::WaitForTerminationSignal();
  AS_LOG(INFO) << "signal " << sig << ": stopping";
  server.Stop();
  return 0;
}
