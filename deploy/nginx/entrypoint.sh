#!/bin/sh
# agentstream edge proxy: renders nginx.conf.template with the values of the
# AGENTSTREAM_EDGE_* environment variables, makes a self-signed certificate
# when none is mounted, waits (bounded) until the upstream's name resolves,
# then replaces itself with nginx in the foreground (same PID: SIGTERM or
# SIGQUIT to this PID stops nginx).
#
# Usage: entrypoint.sh            render, then run nginx
#        entrypoint.sh render     render only; print the config's path
#        entrypoint.sh check      render, then `nginx -t`
#        entrypoint.sh CMD ARGS   run another command (e.g. sh)
#
# Environment (defaults in brackets):
#   AGENTSTREAM_EDGE_UPSTREAM     the gateway, HOST:PORT [gateway:8080]
#   AGENTSTREAM_EDGE_LISTEN       nginx `listen` address, PORT or ADDR:PORT [8443]
#   AGENTSTREAM_EDGE_TLS_DIR      where a mounted certificate is looked for, as
#                                 tls.crt and tls.key (a Kubernetes TLS secret's
#                                 names) [/etc/agentstream-edge/tls]
#   AGENTSTREAM_EDGE_SERVER_NAME  name in a generated certificate [localhost]
#   AGENTSTREAM_EDGE_RUN_DIR      writable: rendered config, pid, temp files,
#                                 generated certificate [/run/agentstream-edge]
#   AGENTSTREAM_EDGE_TEMPLATE     the template [nginx.conf.template next to
#                                 this script, else /etc/agentstream-edge/]
#   AGENTSTREAM_EDGE_ACCESS_LOG   access log path [/dev/stdout]
#   AGENTSTREAM_EDGE_LOG_LEVEL    nginx error_log level [warn]
#   AGENTSTREAM_EDGE_WORKERS      worker_processes [auto]
#   AGENTSTREAM_EDGE_WAIT_S       seconds to wait for the upstream's name [30]
#   AGENTSTREAM_EDGE_NGINX        the nginx binary [nginx, else /usr/sbin/nginx]
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
UPSTREAM=${AGENTSTREAM_EDGE_UPSTREAM:-gateway:8080}
LISTEN=${AGENTSTREAM_EDGE_LISTEN:-8443}
TLS_DIR=${AGENTSTREAM_EDGE_TLS_DIR:-/etc/agentstream-edge/tls}
SERVER_NAME=${AGENTSTREAM_EDGE_SERVER_NAME:-localhost}
RUN_DIR=${AGENTSTREAM_EDGE_RUN_DIR:-/run/agentstream-edge}
ACCESS_LOG=${AGENTSTREAM_EDGE_ACCESS_LOG:-/dev/stdout}
LOG_LEVEL=${AGENTSTREAM_EDGE_LOG_LEVEL:-warn}
WORKERS=${AGENTSTREAM_EDGE_WORKERS:-auto}
WAIT_S=${AGENTSTREAM_EDGE_WAIT_S:-30}
if [ -n "${AGENTSTREAM_EDGE_TEMPLATE:-}" ]; then
  TEMPLATE=$AGENTSTREAM_EDGE_TEMPLATE
elif [ -f "$HERE/nginx.conf.template" ]; then
  TEMPLATE=$HERE/nginx.conf.template
else
  TEMPLATE=/etc/agentstream-edge/nginx.conf.template
fi
NGINX_BIN=${AGENTSTREAM_EDGE_NGINX:-}
if [ -z "$NGINX_BIN" ]; then
  if command -v nginx >/dev/null 2>&1; then NGINX_BIN=nginx; else NGINX_BIN=/usr/sbin/nginx; fi
fi
# nginx reads NGINX itself (sockets inherited on a binary upgrade).
unset NGINX

log() { echo "edge: $*" >&2; }
die() { log "$*"; exit 2; }

# Values go into the config verbatim: accept only plain tokens, so that no
# value can add a directive.
check() {  # check NAME VALUE REGEX
  printf '%s' "$2" | grep -Eqx "$3" || die "bad $1: '$2'"
}
check AGENTSTREAM_EDGE_UPSTREAM "$UPSTREAM" '[A-Za-z0-9._-]+:[0-9]{1,5}|\[[0-9A-Fa-f:]+\]:[0-9]{1,5}'
check AGENTSTREAM_EDGE_LISTEN "$LISTEN" '([A-Za-z0-9._-]+:|\[[0-9A-Fa-f:]+\]:)?[0-9]{1,5}'
check AGENTSTREAM_EDGE_SERVER_NAME "$SERVER_NAME" '[A-Za-z0-9.-]+'
check AGENTSTREAM_EDGE_LOG_LEVEL "$LOG_LEVEL" 'debug|info|notice|warn|error|crit'
check AGENTSTREAM_EDGE_WORKERS "$WORKERS" 'auto|[0-9]+'
check AGENTSTREAM_EDGE_WAIT_S "$WAIT_S" '[0-9]+'
for path in "$RUN_DIR" "$TLS_DIR" "$ACCESS_LOG"; do
  check path "$path" '/[A-Za-z0-9._/-]*'
done
[ -r "$TEMPLATE" ] || die "no template at $TEMPLATE"

mkdir -p "$RUN_DIR"

# The certificate: a mounted one, else a self-signed one made now (kept in
# the run directory, so a restarted container makes a new one).
if [ -r "$TLS_DIR/tls.crt" ] && [ -r "$TLS_DIR/tls.key" ]; then
  CERT=$TLS_DIR/tls.crt
  KEY=$TLS_DIR/tls.key
  log "using the certificate in $TLS_DIR"
else
  mkdir -p "$RUN_DIR/tls"
  CERT=$RUN_DIR/tls/tls.crt
  KEY=$RUN_DIR/tls/tls.key
  if [ ! -s "$CERT" ] || [ ! -s "$KEY" ]; then
    san="DNS:$SERVER_NAME,IP:127.0.0.1,IP:::1"
    [ "$SERVER_NAME" = localhost ] || san="$san,DNS:localhost"
    umask 077
    openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -days 365 -subj "/CN=$SERVER_NAME" -addext "subjectAltName=$san" \
      -keyout "$KEY" -out "$CERT" >/dev/null 2>&1 ||
      die "openssl could not make a certificate"
    umask 022
    chmod 0644 "$CERT"
    log "generated a self-signed certificate for $SERVER_NAME ($san)"
  fi
fi

sed -e "s|@EDGE_UPSTREAM@|$UPSTREAM|g" \
    -e "s|@EDGE_LISTEN@|$LISTEN|g" \
    -e "s|@EDGE_RUN_DIR@|$RUN_DIR|g" \
    -e "s|@EDGE_CERT@|$CERT|g" \
    -e "s|@EDGE_KEY@|$KEY|g" \
    -e "s|@EDGE_ACCESS_LOG@|$ACCESS_LOG|g" \
    -e "s|@EDGE_LOG_LEVEL@|$LOG_LEVEL|g" \
    -e "s|@EDGE_WORKERS@|$WORKERS|g" \
    "$TEMPLATE" >"$RUN_DIR/nginx.conf.new"
if grep -q '@EDGE_[A-Z_]*@' "$RUN_DIR/nginx.conf.new"; then
  die "unrendered placeholders in $TEMPLATE: $(grep -o '@EDGE_[A-Z_]*@' "$RUN_DIR/nginx.conf.new" | sort -u | tr '\n' ' ')"
fi
mv "$RUN_DIR/nginx.conf.new" "$RUN_DIR/nginx.conf"
CONF=$RUN_DIR/nginx.conf
NGINX_ARGS="-p $RUN_DIR/ -c $CONF -e stderr"

case "${1:-run}" in
  render)
    echo "$CONF"
    exit 0
    ;;
  check)
    # shellcheck disable=SC2086
    exec "$NGINX_BIN" $NGINX_ARGS -t
    ;;
  run) ;;
  *) exec "$@" ;;
esac

# nginx resolves the upstream's name once, at start: wait until it does
# (in compose the gateway may still be starting), but not for ever.
host=${UPSTREAM%:*}
host=${host#[}
host=${host%]}
waited=0
# An address needs no resolving (and may have no reverse entry).
if printf '%s' "$host" | grep -Eqx '[0-9.]+|[0-9A-Fa-f]*:[0-9A-Fa-f:]*'; then
  waited=-1
fi
until [ "$waited" -lt 0 ] || getent hosts "$host" >/dev/null 2>&1; do
  if [ "$waited" -ge "$WAIT_S" ]; then
    die "the upstream $host does not resolve after ${WAIT_S}s"
  fi
  [ "$waited" -eq 0 ] && log "waiting for $host to resolve"
  sleep 1
  waited=$((waited + 1))
done

log "listening on $LISTEN (HTTPS, HTTP/2), upstream $UPSTREAM"
# shellcheck disable=SC2086
exec "$NGINX_BIN" $NGINX_ARGS -g 'daemon off;'
