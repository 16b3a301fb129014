#!/bin/sh
# The agentstream image's entry point: `agentstream KIND [FLAGS...]`.
# Starts one process kind with the contract's container ports as defaults
# (environment variables AGENTSTREAM_<FLAG> override them, as do flags), and
# tells the HEALTHCHECK (health_probe) what to ask.
set -eu

usage() {
  cat <<USAGE
Usage: agentstream KIND [FLAGS...]

KIND (default port in the container):
  gateway            HTTP/SSE and the web client (8080)
  orchestrator       gRPC (50051), metrics on 9090
  data_analyst | risk_analyst | compliance_expert | synthetic
                     a specialist: gRPC (50061), metrics on 9090
                     (data-analyst, risk-analyst, ... are accepted too)
  dataset            make the shared data set (\$AGENTSTREAM_DB) and exit
  certs [SERVICE...] make a CA and each SERVICE's certificate for gRPC mTLS
                     in \$AGENTSTREAM_TLS_DIR [/tls] unless there, and exit
                     (make_certs.sh; default: every compose service)
  auth               make the gateway's token file \$AGENTSTREAM_AUTH_DIR/tokens
                     [/auth] with an operator entry, and its token in
                     operator.token, unless there, and exit (make_auth.sh)
  token add|list ... the gateway's token file subcommand (gateway token)
  health_probe       the HEALTHCHECK command
Every binary takes --help. Configuration: environment AGENTSTREAM_<FLAG>.
USAGE
}

if [ $# -eq 0 ]; then
  usage
  exit 2
fi
kind=$1
shift
# Service names (data-analyst) and binary names (data_analyst) both work.
kind=$(printf '%s' "$kind" | tr '-' '_')

target_file=/tmp/agentstream-health-target
case "$kind" in
  help | -h | --help)
    usage
    exit 0
    ;;
  gateway)
    : "${AGENTSTREAM_PORT:=8080}"
    export AGENTSTREAM_PORT
    health="http://127.0.0.1:${AGENTSTREAM_PORT}/healthz"
    ;;
  orchestrator)
    : "${AGENTSTREAM_PORT:=50051}" "${AGENTSTREAM_METRICS_PORT:=9090}"
    export AGENTSTREAM_PORT AGENTSTREAM_METRICS_PORT
    health="grpc://127.0.0.1:${AGENTSTREAM_PORT}"
    ;;
  data_analyst | risk_analyst | compliance_expert | synthetic)
    : "${AGENTSTREAM_PORT:=50061}" "${AGENTSTREAM_METRICS_PORT:=9090}"
    export AGENTSTREAM_PORT AGENTSTREAM_METRICS_PORT
    health="grpc://127.0.0.1:${AGENTSTREAM_PORT}"
    ;;
  dataset)
    # Any database-backed specialist makes the data set; DataAnalyst it is.
    exec /usr/local/bin/data_analyst --generate-only "$@"
    ;;
  health_probe)
    exec /usr/local/bin/health_probe "$@"
    ;;
  certs)
    [ $# -gt 0 ] || set -- gateway orchestrator data-analyst risk-analyst \
      compliance-expert synthetic
    exec /usr/local/bin/agentstream-make-certs "${AGENTSTREAM_TLS_DIR:-/tls}" "$@"
    ;;
  auth)
    exec /usr/local/bin/agentstream-make-auth "${AGENTSTREAM_AUTH_DIR:-/auth}"
    ;;
  token)
    exec /usr/local/bin/gateway token "$@"
    ;;
  *)
    echo "agentstream: unknown kind '$kind'" >&2
    usage >&2
    exit 2
    ;;
esac

# --port on the command line would make this wrong: set AGENTSTREAM_PORT
# instead (or AGENTSTREAM_HEALTH_TARGET, which the probe prefers).
printf '%s\n' "$health" >"$target_file" 2>/dev/null || true
exec "/usr/local/bin/$kind" "$@"
