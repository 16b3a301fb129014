#!/usr/bin/env bash
# Starts the whole agentstream topology on this machine as separate processes
# on loopback: four specialists, the orchestrator and the gateway (with
# --redis: a redis-server, two orchestrator replicas sharing runs through it,
# and the gateway reaching both). Waits until
# every process listens, prints the web client's URL, then supervises: a
# process that dies is logged (exit status or signal) and restarted alone,
# after a backoff, on the same ports; the others keep running. On
# SIGINT/SIGTERM it stops every process it started, by PID, and restarts
# nothing from then on.
#
# Used by ./run.sh and by the end-to-end tests (tests/e2e/launcher/ tests the
# supervision).
set -euo pipefail

# Restart backoff: the first restart of a process waits RESTART_FIRST_MS, each
# further exit in a row doubles the wait up to RESTART_MAX_MS. A process that
# ran RESTART_STABLE_MS or longer before it exited counts as a fresh failure
# (its wait starts at RESTART_FIRST_MS again); shorter runs are a crash loop.
RESTART_FIRST_MS=500
RESTART_MAX_MS=30000
RESTART_STABLE_MS=10000
# How often the launcher looks for exited processes and due restarts.
SUPERVISE_TICK_S=0.2
# On stop: SIGTERM, then SIGKILL to whatever still runs after this long.
STOP_GRACE_MS=5000

fmt_ms() {  # fmt_ms MS VAR: VAR="1.5s" ("2s" for 2000)
  if (($1 % 1000 / 100)); then
    printf -v "$2" '%d.%ds' $(($1 / 1000)) $(($1 % 1000 / 100))
  else
    printf -v "$2" '%ds' $(($1 / 1000))
  fi
}

usage() {
  local FIRST MAX STABLE GRACE
  fmt_ms "$RESTART_FIRST_MS" FIRST
  fmt_ms "$RESTART_MAX_MS" MAX
  fmt_ms "$RESTART_STABLE_MS" STABLE
  fmt_ms "$STOP_GRACE_MS" GRACE
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
  --redis                     the Redis run store (docs/SCALING.md): starts
                              Debian's redis-server on 127.0.0.1 (a free port,
                              append-only file in DATA_DIR/redis) and TWO
                              orchestrator replicas sharing runs through it
                              (--run-store, --replica-id orchestrator and
                              orchestrator2; the second on the orchestrator
                              port + 1, metrics on the metrics base port + 5);
                              the gateway reaches both (round robin), and a
                              run outlives the replica that started it
                              [AGENTSTREAM_REDIS=1]
  --no-gateway                start everything but the gateway (for tests that
                              run, stop and restart a gateway themselves)
  --help                      print this text

Supervision: once every process is up, one that exits or is killed is logged
(exit status or signal) and restarted alone, on the same ports: after $FIRST,
twice as long after each further exit in a row, at most $MAX; one that ran
$STABLE or more before it exited starts again at $FIRST. A process that exits
while the system starts stops the launch. SIGINT/SIGTERM stop every process
(SIGTERM, then SIGKILL after $GRACE) and nothing is restarted after that.

Logs go to DATA_DIR/logs/<process>.log, the launcher's own to
DATA_DIR/logs/launch.log (and stderr); PIDs ("PID NAME" lines) to DATA_DIR/pids.
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
REDIS=${AGENTSTREAM_REDIS:-0}

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
    --redis) REDIS=1; shift ;;
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
if [[ "$REDIS" != 0 ]]; then
  REDIS=1
  REDIS_SERVER=$(command -v redis-server || true)
  if [[ -z "$REDIS_SERVER" ]] || ! command -v redis-cli >/dev/null; then
    echo "launch.sh: --redis needs redis-server and redis-cli (apt-get install redis-server; ./run.sh --redis installs it)" >&2
    exit 2
  fi
  # The gateway's address list names both replicas by IP.
  if [[ "$HOST" =~ ^[0-9.]+$ ]]; then
    ORCH_TARGET="ipv4:$HOST:$ORCH_PORT,$HOST:$((ORCH_PORT + 1))"
  elif [[ "$HOST" == *:* ]]; then
    ORCH_TARGET="ipv6:[$HOST]:$ORCH_PORT,[$HOST]:$((ORCH_PORT + 1))"
  else
    echo "launch.sh: --redis needs an IP address as --host (got $HOST)" >&2
    exit 2
  fi
else
  REDIS=0
fi

BIN_DIR=$(cd "$BIN_DIR" && pwd)
mkdir -p "$DATA_DIR/logs" "$DATA_DIR/ports"
DATA_DIR=$(cd "$DATA_DIR" && pwd)
DB="$DATA_DIR/agentstream.db"
PIDS_FILE="$DATA_DIR/pids"
LAUNCH_LOG="$DATA_DIR/logs/launch.log"
: >"$PIDS_FILE"
rm -f "$DATA_DIR"/ports/*

say() {  # say MESSAGE: to stderr and, with the time, to the launcher's log
  local stamp
  printf -v stamp '%(%Y-%m-%d %H:%M:%S)T' -1
  echo "launch.sh: $*" >&2
  echo "$stamp launch.sh: $*" >>"$LAUNCH_LOG"
}

# Milliseconds of a monotonic clock (CLOCK_BOOTTIME, 10 ms steps), into NOW_MS
# without a fork; wall-clock jumps must not shorten or stretch a backoff.
now_ms() {
  local up _
  read -r up _ </proc/uptime
  NOW_MS=$((10#${up//./} * 10))
}

# The processes, by name (the binary's name). ARGV_<name> holds each one's
# command line, PID[name] its PID while it runs (empty while a restart is
# pending), DUE_MS[name] when a pending restart is due.
NAMES=()
declare -A PID=() STARTED_MS=() QUICK_EXITS=() RESTARTS=() DUE_MS=()
# The signal that asked us to stop (INT or TERM). The traps only set it: the
# code that acts on it runs between steps, never in the middle of starting a
# process, so a PID can never be missed on the way out.
STOP_SIGNAL=

write_pids() {
  local name out=""
  for name in "${NAMES[@]}"; do
    if [[ -n ${PID[$name]} ]]; then out+="${PID[$name]} $name"$'\n'; fi
  done
  printf '%s' "$out" >"$PIDS_FILE.tmp"
  mv -f "$PIDS_FILE.tmp" "$PIDS_FILE"
}

run() {  # run NAME: starts ARGV_NAME in the background, logging to NAME.log
  local name=$1
  local -n argv="ARGV_$name"
  local exe=${argv[0]}
  # A binary of ours by name; another program (redis-server) by its path.
  if [[ "$exe" != /* ]]; then exe="$BIN_DIR/$exe"; fi
  "$exe" "${argv[@]:1}" >>"$DATA_DIR/logs/$name.log" 2>&1 &
  local pid=$!
  PID[$name]=$pid
  now_ms
  STARTED_MS[$name]=$NOW_MS
  write_pids
}

define() {  # define NAME BINARY ARGS...: a process to start and supervise
  local name=$1
  shift
  NAMES+=("$name")
  PID[$name]=
  QUICK_EXITS[$name]=0
  RESTARTS[$name]=0
  DUE_MS[$name]=
  local -n argv="ARGV_$name"
  argv=("$@")
}

stop_all() {
  trap - INT TERM EXIT
  # The run store last: orchestrators that stop hand their runs over
  # through it.
  stop_pids $(for name in "${NAMES[@]}"; do
    if [[ $name != redis && -n ${PID[$name]} ]]; then echo "${PID[$name]}"; fi
  done)
  if [[ -n ${PID[redis]:-} ]]; then stop_pids "${PID[redis]}"; fi
  wait 2>/dev/null || true
  rm -f "$PIDS_FILE"
}

stop_pids() {  # stop_pids PID...: SIGTERM, then SIGKILL after STOP_GRACE_MS
  local pids=("$@")
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local pid alive i
    for ((i = 0; i < STOP_GRACE_MS / 100; i++)); do
      alive=0
      for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then alive=1; fi
      done
      ((alive)) || break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
}

# Stops everything and exits as the signal asked (130 INT, 143 TERM).
finish_if_asked() {
  if [[ -n $STOP_SIGNAL ]]; then
    say "SIG$STOP_SIGNAL: stopping every process"
    stop_all
    if [[ $STOP_SIGNAL == INT ]]; then exit 130; fi
    exit 143
  fi
}
trap 'STOP_SIGNAL=INT' INT
trap 'STOP_SIGNAL=TERM' TERM
trap 'stop_all' EXIT

# pause SECONDS: sleeps, but returns at once on SIGINT/SIGTERM (a trapped
# signal ends `wait`, not a foreground sleep). Bash reports a child killed by
# a signal ("... Killed ...") when a wait returns; stderr is muted here for
# that, supervise() logs it properly.
pause() {
  sleep "$1" &
  local pid=$!
  wait "$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  finish_if_asked
}

wait_port_file() {  # wait_port_file NAME SECONDS
  local name=$1 limit=$2
  local deadline=$((SECONDS + limit)) n
  while ((SECONDS < deadline)); do
    [[ -s "$DATA_DIR/ports/$name" ]] && return 0
    for n in "${NAMES[@]}"; do
      if [[ -n ${PID[$n]} ]] && ! kill -0 "${PID[$n]}" 2>/dev/null; then
        echo "launch.sh: $n exited during start; see $DATA_DIR/logs/" >&2
        tail -n 20 "$DATA_DIR"/logs/*.log >&2 || true
        return 1
      fi
    done
    pause 0.1
  done
  echo "launch.sh: $name did not start within ${limit}s; see $DATA_DIR/logs/$name.log" >&2
  return 1
}

# --- supervision ------------------------------------------------------------

# A process exited with STATUS (bash: 128+N when signal N ended it): log it
# and schedule its restart.
on_exit() {  # on_exit NAME STATUS
  local name=$1 status=$2 pid=${PID[$1]}
  now_ms
  local ran_ms=$((NOW_MS - STARTED_MS[$name]))
  PID[$name]=
  write_pids
  if ((ran_ms >= RESTART_STABLE_MS)); then QUICK_EXITS[$name]=0; fi
  QUICK_EXITS[$name]=$((QUICK_EXITS[$name] + 1))
  RESTARTS[$name]=$((RESTARTS[$name] + 1))
  local doublings=$((QUICK_EXITS[$name] - 1)) delay_ms=$RESTART_FIRST_MS
  while ((doublings > 0 && delay_ms < RESTART_MAX_MS)); do
    delay_ms=$((delay_ms * 2))
    doublings=$((doublings - 1))
  done
  if ((delay_ms > RESTART_MAX_MS)); then delay_ms=$RESTART_MAX_MS; fi
  DUE_MS[$name]=$((NOW_MS + delay_ms))

  local how ran delay
  if ((status > 128)); then
    how="was killed by signal $((status - 128)) (SIG$(kill -l "$status" 2>/dev/null || echo '?'))"
  else
    how="exited with status $status"
  fi
  fmt_ms "$ran_ms" ran
  fmt_ms "$delay_ms" delay
  local msg="$name (pid $pid) $how after $ran; restart #${RESTARTS[$name]} in $delay"
  if ((QUICK_EXITS[$name] > 1)); then
    local stable
    fmt_ms "$RESTART_STABLE_MS" stable
    msg+=" (crash loop: ${QUICK_EXITS[$name]} exits in a row, up less than $stable after each restart)"
  fi
  say "$msg; see $DATA_DIR/logs/$name.log"
}

restart_due() {
  local name
  now_ms
  for name in "${NAMES[@]}"; do
    # A signal that came meanwhile stops the launcher before anything else
    # starts.
    if [[ -n $STOP_SIGNAL ]]; then return 0; fi
    if [[ -n ${DUE_MS[$name]} ]] && ((DUE_MS[$name] <= NOW_MS)); then
      DUE_MS[$name]=
      echo "--- launch.sh: restart #${RESTARTS[$name]} ---" >>"$DATA_DIR/logs/$name.log"
      run "$name"
      say "restarted $name (pid ${PID[$name]})"
    fi
  done
}

# Polls rather than `wait -n`: bash drops a job killed by a signal from its
# job table when it reports it (the "Killed" line) after any foreground
# command, and `wait -n` would then never return it; `kill -0` and
# `wait PID` (bash keeps every reaped child's status) cannot miss one. Bash
# reaps a child as soon as it exits, so `kill -0` fails at once (only a PID
# wrap-around within one tick could hand the PID to another process first).
supervise() {
  local name pid status
  while true; do
    for name in "${NAMES[@]}"; do
      pid=${PID[$name]}
      if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
        if wait "$pid" 2>/dev/null; then status=0; else status=$?; fi
        finish_if_asked
        on_exit "$name" "$status"
      fi
    done
    finish_if_asked
    restart_due
    pause "$SUPERVISE_TICK_S"
  done
}

# --- start ------------------------------------------------------------------

DATA_ARGS=(--db "$DB")
if [[ -n "$CSV" ]]; then DATA_ARGS+=(--csv "$CSV"); fi

if ((REDIS)); then
  # A free loopback port, kept for restarts; data (the append-only file) in
  # DATA_DIR/redis, so that a restarted redis-server keeps every live run.
  REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$DATA_DIR/redis"
  define redis "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 \
    --dir "$DATA_DIR/redis" --appendonly yes --daemonize no
fi

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
  define "$bin" "$bin" "${args[@]}"
  ORCH_ARGS+=(--specialist "$name=$HOST:$port")
  i=$((i + 1))
done

ORCHESTRATORS=(orchestrator)
if ((REDIS)); then
  ORCHESTRATORS+=(orchestrator2)
  ORCH_ARGS+=(--run-store "redis://127.0.0.1:$REDIS_PORT")
else
  ORCH_TARGET="$HOST:$ORCH_PORT"
fi
i=0
for name in "${ORCHESTRATORS[@]}"; do
  args=(--host "$HOST" --port "$((ORCH_PORT + i))"
        --port-file "$DATA_DIR/ports/$name" --log-level "$LOG_LEVEL"
        "${ORCH_ARGS[@]}")
  # The first on the metrics base port, the second after the specialists'.
  if ((i)); then args+=(--metrics-port "$((METRICS_BASE + 5))");
  else args+=(--metrics-port "$METRICS_BASE"); fi
  if ((REDIS)); then args+=(--replica-id "$name"); fi
  define "$name" orchestrator "${args[@]}"
  i=$((i + 1))
done
if ((START_GATEWAY)); then
  define gateway gateway --host "$HOST" --port "$GATEWAY_PORT" \
    --port-file "$DATA_DIR/ports/gateway" --orchestrator "$ORCH_TARGET" \
    --log-level "$LOG_LEVEL"
fi

# wait_redis SECONDS: until the redis-server we started says it is ready in
# its own log (a PING could be answered by another server on the port).
wait_redis() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    if ! kill -0 "${PID[redis]}" 2>/dev/null; then
      echo "launch.sh: redis-server exited during start; see $DATA_DIR/logs/redis.log" >&2
      tail -n 20 "$DATA_DIR/logs/redis.log" >&2 || true
      return 1
    fi
    local text
    text=$(tail -c +"$((REDIS_LOG_OFFSET + 1))" "$DATA_DIR/logs/redis.log" 2>/dev/null || true)
    if [[ $text == *"Ready to accept connections"* &&
          $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; then
      return 0
    fi
    pause 0.1
  done
  echo "launch.sh: redis-server not ready within $1s; see $DATA_DIR/logs/redis.log" >&2
  return 1
}

started=()
for name in "${NAMES[@]}"; do
  if [[ $name == redis ]]; then
    REDIS_LOG_OFFSET=$(stat -c %s "$DATA_DIR/logs/redis.log" 2>/dev/null || echo 0)
  fi
  run "$name"
  started+=("$name (pid ${PID[$name]})")
  finish_if_asked
  # The orchestrators start once the run store answers.
  if [[ $name == redis ]]; then wait_redis 30 || exit 1; fi
done
say "started ${started[*]}"

# The first start generates the data set (a few seconds).
for entry in "${SPECIALISTS[@]}"; do
  wait_port_file "${entry##*:}" 180 || exit 1
done
for name in "${ORCHESTRATORS[@]}"; do
  wait_port_file "$name" 30 || exit 1
done
if ((START_GATEWAY)); then
  wait_port_file gateway 30 || exit 1

  URL="http://$HOST:$GATEWAY_PORT/"
  deadline=$((SECONDS + 30))
  until curl -fsS --max-time 2 -o /dev/null "${URL}readyz" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "launch.sh: gateway not ready; see $DATA_DIR/logs/" >&2
      exit 1
    fi
    pause 0.2
  done

  # Ready when the orchestrator has every specialist's card.
  deadline=$((SECONDS + 60))
  until curl -fsS --max-time 2 "${URL}api/specialists" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); l=d.get("specialists", d) if isinstance(d, dict) else d; sys.exit(0 if len(l) >= 4 and all(s.get("available") for s in l) else 1)' 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "launch.sh: warning: not every specialist is available yet" >&2
      break
    fi
    pause 0.2
  done

  echo "agentstream is running: $URL"
  echo "  try: curl -N '${URL}api/chat/stream?message=Assess%20the%20risk%20of%20account%20ACC-1042'"
else
  echo "agentstream is running without a gateway: orchestrator at $HOST:$ORCH_PORT"
fi
if ((REDIS)); then
  echo "  run store: redis-server on 127.0.0.1:$REDIS_PORT (data: $DATA_DIR/redis); orchestrators at $HOST:$ORCH_PORT and $HOST:$((ORCH_PORT + 1))"
fi
echo "  logs: $DATA_DIR/logs/   stop: Ctrl-C"

# A process that exits from now on is restarted (see RESTART_* above).
supervise
