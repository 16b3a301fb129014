#!/usr/bin/env bash
# Starts the whole agentstream topology on this machine as separate processes
# on loopback: four specialists, the orchestrator and the gateway. Waits until
# every process listens, prints the web client's URL, and on SIGINT/SIGTERM
# stops every process it started, by PID.
#
# Used by ./run.sh and by the end-to-end tests.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: deploy/local/launch.sh [options]

Options (environment variable in brackets):
  --bin-dir DIR               binaries (default: build/bin) [AGENTSTREAM_BIN_DIR]
  --data-dir DIR              database, logs, pids (default: var) [AGENTSTREAM_DATA_DIR]
  --host ADDR                 address every process binds (default: 127.0.0.1) [AGENTSTREAM_HOST]
  --gateway-port PORT         HTTP port of the gateway (default: 8080) [AGENTSTREAM_GATEWAY_PORT]
  --orchestrator-port PORT    gRPC port of the orchestrator (default: 50051) [AGENTSTREAM_ORCHESTRATOR_PORT]
  --specialist-base-port PORT first specialist's gRPC port; the others follow
                              (default: 50061) [AGENTSTREAM_SPECIALIST_BASE_PORT]
  --metrics-base-port PORT    first metrics port (orchestrator, then each
                              specialist; default: 9100) [AGENTSTREAM_METRICS_BASE_PORT]
  --csv PATH                  load transactions from this CSV instead of the
                              generated data set (see docs/DATA.md) [AGENTSTREAM_CSV]
  --log-level LEVEL           debug, info, warning, error (default: info)
  --no-gateway                start everything but the gateway (for tests that
                              run, stop and restart a gateway themselves)
  --help                      print this text

Logs go to DATA_DIR/logs/<process>.log; PIDs to DATA_DIR/pids.
USAGE
}

BIN_DIR=${AGENTSTREAM_BIN_DIR:-build/bin}
DATA_DIR=${AGENTSTREAM_DATA_DIR:-var}
HOST=${AGENTSTREAM_HOST:-127.0.0.1}
GATEWAY_PORT=${AGENTSTREAM_GATEWAY_PORT:-8080}
ORCH_PORT=${AGENTSTREAM_ORCHESTRATOR_PORT:-50051}
SPEC_BASE=${AGENTSTREAM_SPECIALIST_BASE_PORT:-50061}
METRICS_BASE=${AGENTSTREAM_METRICS_BASE_PORT:-9100}
CSV=${AGENTSTREAM_CSV:-}
LOG_LEVEL=info
START_GATEWAY=1

while (($#)); do
  case "$1" in
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --host) HOST=$2; shift 2 ;;
    --gateway-port) GATEWAY_PORT=$2; shift 2 ;;
    --orchestrator-port) ORCH_PORT=$2; shift 2 ;;
    --specialist-base-port) SPEC_BASE=$2; shift 2 ;;
    --metrics-base-port) METRICS_BASE=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    --log-level) LOG_LEVEL=$2; shift 2 ;;
    --no-gateway) START_GATEWAY=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "launch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

for port in "$GATEWAY_PORT" "$ORCH_PORT" "$SPEC_BASE" "$METRICS_BASE"; do
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    echo "launch.sh: not a port: $port" >&2
    exit 2
  fi
done

BIN_DIR=$(cd "$BIN_DIR" && pwd)
mkdir -p "$DATA_DIR/logs" "$DATA_DIR/ports"
DATA_DIR=$(cd "$DATA_DIR" && pwd)
DB="$DATA_DIR/agentstream.db"
PIDS_FILE="$DATA_DIR/pids"
: >"$PIDS_FILE"
rm -f "$DATA_DIR"/ports/*

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  if ((${#PIDS[@]})); then
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    for _ in $(seq 1 50); do
      local alive=0
      for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then alive=1; fi
      done
      ((alive)) || break
      sleep 0.1
    done
    kill -KILL "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
  rm -f "$PIDS_FILE"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

start() {  # start NAME BINARY ARGS...
  local name=$1 bin=$2
  shift 2
  "$BIN_DIR/$bin" "$@" >>"$DATA_DIR/logs/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  echo "$pid $name" >>"$PIDS_FILE"
}

wait_port_file() {  # wait_port_file NAME SECONDS
  local name=$1 limit=$2
  local deadline=$((SECONDS + limit))
  while ((SECONDS < deadline)); do
    [[ -s "$DATA_DIR/ports/$name" ]] && return 0
    for pid in "${PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "launch.sh: a process exited during start; see $DATA_DIR/logs/" >&2
        tail -n 20 "$DATA_DIR"/logs/*.log >&2 || true
        return 1
      fi
    done
    sleep 0.1
  done
  echo "launch.sh: $name did not start within ${limit}s; see $DATA_DIR/logs/$name.log" >&2
  return 1
}

DATA_ARGS=(--db "$DB")
if [[ -n "$CSV" ]]; then DATA_ARGS+=(--csv "$CSV"); fi

SPECIALISTS=(DataAnalyst:data_analyst RiskAnalyst:risk_analyst
             ComplianceExpert:compliance_expert Synthetic:synthetic)
ORCH_ARGS=()
i=0
for entry in "${SPECIALISTS[@]}"; do
  name=${entry%%:*}
  bin=${entry##*:}
  port=$((SPEC_BASE + i))
  metrics=$((METRICS_BASE + 1 + i))
  args=(--host "$HOST" --port "$port" --port-file "$DATA_DIR/ports/$bin"
        --metrics-port "$metrics" --log-level "$LOG_LEVEL")
  # Synthetic makes its updates up; it has no data set.
  if [[ "$bin" != synthetic ]]; then args+=("${DATA_ARGS[@]}"); fi
  start "$bin" "$bin" "${args[@]}"
  ORCH_ARGS+=(--specialist "$name=$HOST:$port")
  i=$((i + 1))
done

start orchestrator orchestrator --host "$HOST" --port "$ORCH_PORT" \
  --port-file "$DATA_DIR/ports/orchestrator" --metrics-port "$METRICS_BASE" \
  --log-level "$LOG_LEVEL" "${ORCH_ARGS[@]}"
if ((START_GATEWAY)); then
  start gateway gateway --host "$HOST" --port "$GATEWAY_PORT" \
    --port-file "$DATA_DIR/ports/gateway" --orchestrator "$HOST:$ORCH_PORT" \
    --log-level "$LOG_LEVEL"
fi

# The first start generates the data set (a few seconds).
for entry in "${SPECIALISTS[@]}"; do
  wait_port_file "${entry##*:}" 180 || exit 1
done
wait_port_file orchestrator 30 || exit 1
if ((START_GATEWAY)); then
  wait_port_file gateway 30 || exit 1

  URL="http://$HOST:$GATEWAY_PORT/"
  deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "${URL}readyz" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "launch.sh: gateway not ready; see $DATA_DIR/logs/" >&2
      exit 1
    fi
    sleep 0.2
  done

  # Ready when the orchestrator has every specialist's card.
  deadline=$((SECONDS + 60))
  until curl -fsS "${URL}api/specialists" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); l=d.get("specialists", d) if isinstance(d, dict) else d; sys.exit(0 if len(l) >= 4 and all(s.get("available") for s in l) else 1)' 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "launch.sh: warning: not every specialist is available yet" >&2
      break
    fi
    sleep 0.2
  done

  echo "agentstream is running: $URL"
  echo "  try: curl -N '${URL}api/chat/stream?message=Assess%20the%20risk%20of%20account%20ACC-1042'"
else
  echo "agentstream is running without a gateway: orchestrator at $HOST:$ORCH_PORT"
fi
echo "  logs: $DATA_DIR/logs/   stop: Ctrl-C"

# Stay up while every process does; stop all if one dies.
while true; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "launch.sh: process $pid ($(grep "^$pid " "$PIDS_FILE" | cut -d' ' -f2)) exited; stopping" >&2
      exit 1
    fi
  done
  sleep 1
done
