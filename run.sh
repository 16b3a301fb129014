#!/usr/bin/env bash
# agentstream quick start: installs what is missing (apt), builds (Release,
# into build/), starts the whole system on this machine and prints the web
# client's URL; restarts a process that dies (deploy/local/launch.sh). Ctrl-C
# stops every process it started. --redis: two orchestrators sharing runs
# through a local redis-server (docs/SCALING.md).
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<USAGE
Usage: ./run.sh [options]

Installs missing Debian packages, builds agentstream (Release, in build/),
starts the gateway, the orchestrator and every specialist on loopback, and
prints the web client's URL. A process that dies is restarted, with a
backoff (deploy/local/launch.sh --help). Ctrl-C stops them all.

With --redis, runs live in a Redis run store (docs/SCALING.md): Debian's
redis-server on 127.0.0.1 (a free port; append-only file in DATA_DIR/redis),
TWO orchestrator replicas sharing runs through it (the second on the
orchestrator port + 1, its metrics on the metrics base port + 5), and the
gateway reaching both (round robin): any replica serves any run, and a run
outlives the replica that started it. Without it, one orchestrator keeps
runs in memory and no Redis is needed.

Options (environment variable in brackets):
  --gateway-port PORT         HTTP port (default 8080) [AGENTSTREAM_GATEWAY_PORT]
  --orchestrator-port PORT    gRPC port (default 50051) [AGENTSTREAM_ORCHESTRATOR_PORT]
  --specialist-base-port PORT first specialist port (default 50061) [AGENTSTREAM_SPECIALIST_BASE_PORT]
  --metrics-base-port PORT    first metrics port (default 9100) [AGENTSTREAM_METRICS_BASE_PORT]
  --data-dir DIR              database, logs (default var/) [AGENTSTREAM_DATA_DIR]
  --csv PATH                  use your transactions CSV (docs/DATA.md) [AGENTSTREAM_CSV]
  --host ADDR                 bind address (default 127.0.0.1) [AGENTSTREAM_HOST]
  --log-level LEVEL           debug, info, warning, error
  --redis                     Redis run store, two orchestrators (above) [AGENTSTREAM_REDIS=1]
  --no-install                do not install packages
  --no-build                  use the binaries already in build/bin
  --help                      print this text
USAGE
}

INSTALL=1
BUILD=1
REDIS=${AGENTSTREAM_REDIS:-0}
LAUNCH_ARGS=()
while (($#)); do
  case "$1" in
    --no-install) INSTALL=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --redis) REDIS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --gateway-port|--orchestrator-port|--specialist-base-port|--metrics-base-port|--data-dir|--csv|--host|--log-level)
      if (($# < 2)); then echo "run.sh: $1 needs a value" >&2; exit 2; fi
      LAUNCH_ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ "$REDIS" != 0 ]]; then
  REDIS=1
  LAUNCH_ARGS+=(--redis)
fi
if ((INSTALL)); then
  if ((REDIS)); then
    deploy/local/install_deps.sh redis
  else
    deploy/local/install_deps.sh build
  fi
fi
if ((BUILD)); then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j2 --target gateway orchestrator data_analyst \
    risk_analyst compliance_expert synthetic
fi

exec deploy/local/launch.sh --bin-dir build/bin "${LAUNCH_ARGS[@]}"
