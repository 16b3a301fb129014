#!/usr/bin/env bash
# The browser end-to-end test (ctest: browser_e2e): starts the whole system
# with deploy/local/launch.sh on free loopback ports, waits until the gateway
# is ready, drives the web client in headless Chromium (browser_e2e.py) and
# always stops the launcher by its PID, which stops every process it started.
#
# Environment:
#   AGENTSTREAM_BIN_DIR        the built binaries (required; ctest sets it)
#   AGENTSTREAM_E2E_ARTIFACTS  where the screenshot and, on failure, the
#                              processes' logs go (default: ./e2e-artifacts)
#   AGENTSTREAM_E2E_READY_S    seconds to wait for /readyz (default: 240; the
#                              first start generates the data set)
# Exit status: browser_e2e.py's (0 pass, 1 check failed, 2 browser trouble,
# 77 skipped: no chromium/chromedriver), or 1 if the system did not start.
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

if [[ ! -x /usr/bin/chromium && -z ${AGENTSTREAM_CHROMIUM:-} ]] || ! command -v chromedriver >/dev/null 2>&1; then
  # ./test.sh installs both; in CI a missing browser is a failure, not a skip.
  if [[ -n ${CI:-} ]]; then
    log "FAIL: chromium or chromedriver is not installed (CI=$CI)"
    exit 1
  fi
  log "SKIP: chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
  exit 77
fi
if [[ -z $BIN_DIR || ! -d $BIN_DIR ]]; then
  log "FAIL: AGENTSTREAM_BIN_DIR is not set to the directory of the built binaries"
  exit 1
fi
for bin in gateway orchestrator data_analyst risk_analyst compliance_expert synthetic; do
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
# specialists and 5 consecutive for the metrics endpoints.
read -r GW_PORT ORCH_PORT SPEC_BASE METRICS_BASE < <("$PY" - <<'EOF'
import random
import socket

taken = set()


def free(port):
    if port in taken or port > 65535:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def run_of(n):
    for _ in range(500):
        base = random.randint(20000, 60000)
        if all(free(base + i) for i in range(n)):
            taken.update(range(base, base + n))
            return base
    raise SystemExit('no free ports')


print(run_of(1), run_of(1), run_of(4), run_of(5))
EOF
)
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
  # Whatever the launcher left behind, by the PIDs it recorded.
  if [[ -s $DATA_DIR/pids ]]; then
    while read -r pid _; do
      [[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
    done <"$DATA_DIR/pids"
  fi
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

log "starting the system: gateway :$GW_PORT, orchestrator :$ORCH_PORT, specialists :$SPEC_BASE+, metrics :$METRICS_BASE+"
"$LAUNCH" --bin-dir "$BIN_DIR" --data-dir "$DATA_DIR" \
  --gateway-port "$GW_PORT" --orchestrator-port "$ORCH_PORT" \
  --specialist-base-port "$SPEC_BASE" --metrics-base-port "$METRICS_BASE" \
  >"$ARTIFACTS/launch.log" 2>&1 &
LAUNCH_PID=$!

URL="http://127.0.0.1:$GW_PORT/"
deadline=$((SECONDS + READY_S))
until curl -fsS -o /dev/null --max-time 2 "${URL}readyz" 2>/dev/null; do
  if ! kill -0 "$LAUNCH_PID" 2>/dev/null; then
    log "FAIL: the launcher exited before the gateway was ready:"
    tail -n 40 "$ARTIFACTS/launch.log"
    KEEP_LOGS=1
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    log "FAIL: ${URL}readyz not ready within ${READY_S}s"
    tail -n 40 "$ARTIFACTS/launch.log"
    KEEP_LOGS=1
    exit 1
  fi
  sleep 0.25
done

# /readyz only says the orchestrator answers; the specialists may still be
# building the data set, and the orchestrator finds them in the background.
# Wait until the three the question needs are listed as available.
if ! "$PY" - "${URL}api/specialists" "$((deadline - SECONDS))" "$LAUNCH_PID" <<'EOF'
import json
import os
import sys
import time
import urllib.request

url, budget, launcher = sys.argv[1], max(5, int(sys.argv[2])), int(sys.argv[3])
want = {'DataAnalyst', 'RiskAnalyst', 'ComplianceExpert'}
deadline = time.monotonic() + budget
available = set()
while time.monotonic() < deadline:
    try:
        os.kill(launcher, 0)
    except ProcessLookupError:
        print('the launcher exited', file=sys.stderr)
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            body = json.load(resp)
        items = body.get('specialists', []) if isinstance(body, dict) else body
        available = {(i.get('card') or i).get('name') for i in items
                     if i.get('available')}
        if want <= available:
            sys.exit(0)
    except (OSError, ValueError, AttributeError):
        pass
    time.sleep(0.25)
print(f'specialists not available in time: have {sorted(available)}, '
      f'need {sorted(want)}', file=sys.stderr)
sys.exit(1)
EOF
then
  log "FAIL: the specialists did not become available"
  tail -n 40 "$ARTIFACTS/launch.log"
  KEEP_LOGS=1
  exit 1
fi
log "system ready at $URL"

"$PY" "$HERE/browser_e2e.py" --url "$URL" --screenshot "$ARTIFACTS/browser_e2e.png"
status=$?
if ((status != 0)); then
  KEEP_LOGS=1
fi
exit $status
