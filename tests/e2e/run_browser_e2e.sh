#!/usr/bin/env bash
# The browser end-to-end tests: starts the system with deploy/local/launch.sh
# --no-gateway on free loopback ports (the specialists, with Synthetic slowed
# to ~9 s a run, and the orchestrator), then runs one of the Chromium scripts,
# which starts the gateway itself:
#
#   run_browser_e2e.sh [browser_e2e.py]   (ctest: browser_e2e) the web client:
#       a real question answered, a run resumed across a gateway restart (it
#       kills and restarts the gateway), a run cancelled with the Cancel button
#   run_browser_e2e.sh client_lib_e2e.py  (ctest: client_lib_e2e) the client
#       library against the gateway through a TCP proxy that cuts and freezes
#       its connections, and the plain page minimal.html
#   run_browser_e2e.sh replay_e2e.py      (ctest: replay_e2e) the ACC-1042
#       run recorded from the gateway, replayed by `replay` to the browser's
#       EventSource: the same events, a resume by after= and by Last-Event-ID
#   run_browser_e2e.sh auth_e2e.py        (ctest: auth_e2e) the web client
#       against a gateway with --auth=jwt: the token field on a 401, a bad
#       token refused, the good one answering, reload and cancel with it
#
# The launcher is always stopped by its PID, which stops every process it
# started; the script stops its gateway by PID.
#
# Environment:
#   AGENTSTREAM_BIN_DIR        the built binaries (required; ctest sets it)
#   AGENTSTREAM_E2E_ARTIFACTS  where the screenshot and, on failure, the
#                              processes' logs go (default: ./e2e-artifacts)
#   AGENTSTREAM_E2E_READY_S    seconds to wait for the system (default: 240;
#                              the first start generates the data set)
#   AGENTSTREAM_E2E_SCENARIOS  the script's --scenarios (default: all of them)
# Exit status: the script's (0 pass, 1 check failed, 2 browser trouble),
# 1 if the system did not start; without chromium or chromedriver 77
# (skipped), or 1 under CI (tests/e2e/ci_policy.sh).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

log() { echo "[run_browser_e2e] $*"; }

BIN_DIR=${AGENTSTREAM_BIN_DIR:-}
ARTIFACTS=${AGENTSTREAM_E2E_ARTIFACTS:-$PWD/e2e-artifacts}
READY_S=${AGENTSTREAM_E2E_READY_S:-240}
LAUNCH="$ROOT/deploy/local/launch.sh"
SCRIPT=${1:-browser_e2e.py}
SCENARIOS=${AGENTSTREAM_E2E_SCENARIOS:-}
# Synthetic's defaults for this system (its --count and --rate, through their
# environment variables, which no other binary reads): 90 partial results at
# 10 a second, so a run streams for ~9 s; the web client cannot pass
# per-request options, so this is how its runs are made long
# (client_lib_e2e.py passes its own in each run's `options`).
SYNTHETIC_COUNT=90
SYNTHETIC_RATE=10
case $SCRIPT in
  browser_e2e.py) SCRIPT_ARGS=(--synthetic-count "$SYNTHETIC_COUNT") ;;
  client_lib_e2e.py) SCRIPT_ARGS=() ;;
  replay_e2e.py) SCRIPT_ARGS=(--replay-bin "$BIN_DIR/replay") ;;
  auth_e2e.py) SCRIPT_ARGS=() ;;
  *)
    log "FAIL: unknown script $SCRIPT (browser_e2e.py, client_lib_e2e.py, replay_e2e.py or auth_e2e.py)"
    exit 1
    ;;
esac
[[ -n $SCENARIOS ]] && SCRIPT_ARGS+=(--scenarios "$SCENARIOS")

# ./test.sh installs both; under CI a missing browser is a failure, not a
# skip (tests/e2e/ci_policy.sh).
. "$HERE/ci_policy.sh"
CHROMIUM=${AGENTSTREAM_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${AGENTSTREAM_CHROMEDRIVER:-$(command -v chromedriver || true)}
if [[ ! -x $CHROMIUM || -z $CHROMEDRIVER || ! -x $CHROMEDRIVER ]]; then
  skip_or_fail run_browser_e2e "chromium ($CHROMIUM) or chromedriver (${CHROMEDRIVER:-not on PATH}) is not installed (apt-get install chromium chromium-driver)"
fi
if [[ -z $BIN_DIR || ! -d $BIN_DIR ]]; then
  log "FAIL: AGENTSTREAM_BIN_DIR is not set to the directory of the built binaries"
  exit 1
fi
BINS=(gateway orchestrator data_analyst risk_analyst compliance_expert synthetic)
[[ $SCRIPT == replay_e2e.py ]] && BINS+=(replay)
for bin in "${BINS[@]}"; do
  if [[ ! -x $BIN_DIR/$bin ]]; then
    log "FAIL: $BIN_DIR/$bin is not built"
    exit 1
  fi
done
if [[ ! -x $LAUNCH ]]; then
  log "FAIL: $LAUNCH is missing"
  exit 1
fi

mkdir -p "$ARTIFACTS"
DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentstream-e2e.XXXXXX")

# Free ports: the gateway, the orchestrator, 4 consecutive for the
# specialists and 5 consecutive for the metrics endpoints (the same runs
# launcher_e2e.py takes, from tests/e2e/launcher/launcher_support.py).
read -r GW_PORT ORCH_PORT SPEC_BASE METRICS_BASE < <("$PY" -c '
import sys
sys.path.insert(0, sys.argv[1])
from launcher_support import free_port_runs
print(*free_port_runs(1, 1, 4, 5))
' "$HERE/launcher")
if [[ -z ${METRICS_BASE:-} ]]; then
  log "FAIL: could not find free ports"
  exit 1
fi

LAUNCH_PID=
stop_launcher() {
  if [[ -n $LAUNCH_PID ]] && kill -0 "$LAUNCH_PID" 2>/dev/null; then
    kill -TERM "$LAUNCH_PID" 2>/dev/null
    for _ in $(seq 1 150); do
      kill -0 "$LAUNCH_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$LAUNCH_PID" 2>/dev/null; then
      log "the launcher did not stop within 15 s; killing it and its processes"
      kill -KILL "$LAUNCH_PID" 2>/dev/null
    fi
    wait "$LAUNCH_PID" 2>/dev/null
  fi
  # Whatever the launcher left behind, by the PIDs it recorded, and the
  # gateway the script started if it could not stop it itself.
  for file in "$DATA_DIR/pids" "$DATA_DIR/gateway.pid"; do
    [[ -s $file ]] || continue
    while read -r pid _; do
      [[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
    done <"$file"
  done
  LAUNCH_PID=
}
KEEP_LOGS=0
cleanup() {
  stop_launcher
  if ((KEEP_LOGS)) && [[ -d $DATA_DIR/logs ]]; then
    rm -rf "$ARTIFACTS/logs"
    cp -r "$DATA_DIR/logs" "$ARTIFACTS/logs"
    log "process logs: $ARTIFACTS/logs/"
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the system: orchestrator :$ORCH_PORT, specialists :$SPEC_BASE+, metrics :$METRICS_BASE+ (the gateway :$GW_PORT comes with $SCRIPT)"
AGENTSTREAM_COUNT=$SYNTHETIC_COUNT AGENTSTREAM_RATE=$SYNTHETIC_RATE \
  "$LAUNCH" --bin-dir "$BIN_DIR" --data-dir "$DATA_DIR" --no-gateway \
  --gateway-port "$GW_PORT" --orchestrator-port "$ORCH_PORT" \
  --specialist-base-port "$SPEC_BASE" --metrics-base-port "$METRICS_BASE" \
  >"$ARTIFACTS/launch.log" 2>&1 &
LAUNCH_PID=$!

# launch.sh says so once every specialist and the orchestrator listen.
deadline=$((SECONDS + READY_S))
until grep -q '^agentstream is running' "$ARTIFACTS/launch.log" 2>/dev/null; do
  if ! kill -0 "$LAUNCH_PID" 2>/dev/null; then
    log "FAIL: the launcher exited before the system was ready:"
    tail -n 40 "$ARTIFACTS/launch.log"
    KEEP_LOGS=1
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    log "FAIL: the system was not ready within ${READY_S}s"
    tail -n 40 "$ARTIFACTS/launch.log"
    KEEP_LOGS=1
    exit 1
  fi
  sleep 0.25
done
log "orchestrator and specialists ready"

budget=$((deadline - SECONDS))
((budget < 30)) && budget=30
"$PY" "$HERE/$SCRIPT" --gateway-bin "$BIN_DIR/gateway" \
  --gateway-port "$GW_PORT" --gateway-log "$DATA_DIR/logs/gateway.log" \
  --gateway-pid-file "$DATA_DIR/gateway.pid" \
  --orchestrator "127.0.0.1:$ORCH_PORT" \
  --orchestrator-metrics "http://127.0.0.1:$METRICS_BASE/metrics" \
  --chromium "$CHROMIUM" --chromedriver "$CHROMEDRIVER" \
  --ready-timeout "$budget" --screenshot "$ARTIFACTS/${SCRIPT%.py}.png" \
  "${SCRIPT_ARGS[@]}"
status=$?
if ((status != 0)); then
  KEEP_LOGS=1
fi
exit $status
