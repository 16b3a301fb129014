#!/bin/sh
# Makes a small CA and one certificate per service for agentstream's
# service-to-service mTLS (docs/SECURITY.md, "Service-to-service TLS").
#
# Usage: make_certs.sh DIR SERVICE...
#   DIR/ca.crt                       the CA certificate (every --tls-ca)
#   DIR/SERVICE/tls.crt, tls.key     SERVICE's certificate and key
#                                    (its --tls-cert, --tls-key)
# Each certificate has CN=SERVICE and the subject alternative names
# DNS:SERVICE, DNS:localhost and IP:127.0.0.1 (the name peers dial, and the
# address the container's health probe dials), and serves as both a server
# and a client certificate. EC P-256 keys; AGENTSTREAM_TLS_DAYS days of
# validity [825].
#
# Idempotent: when DIR/ca.crt and every SERVICE's files exist, nothing is
# made (a restarted compose project keeps its certificates). Otherwise a new
# CA and new certificates for every SERVICE are made. The CA's key is
# discarded once they are signed: nobody can issue another certificate (to
# add a service, run this again with every service: all are replaced).
# Keys are written mode 0600 for the user that runs this.
set -eu

die() { echo "make_certs: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: make_certs.sh DIR SERVICE..."
dir=$1
shift
days=${AGENTSTREAM_TLS_DAYS:-825}
printf '%s' "$days" | grep -Eqx '[0-9]+' || die "bad AGENTSTREAM_TLS_DAYS: $days"
for svc in "$@"; do
  printf '%s' "$svc" | grep -Eqx '[a-z0-9]([a-z0-9.-]*[a-z0-9])?' ||
    die "bad service name: '$svc' (a DNS name)"
done
command -v openssl >/dev/null 2>&1 || die "openssl is not installed"

complete=yes
[ -s "$dir/ca.crt" ] || complete=no
for svc in "$@"; do
  [ -s "$dir/$svc/tls.crt" ] && [ -s "$dir/$svc/tls.key" ] || complete=no
done
if [ "$complete" = yes ]; then
  echo "make_certs: keeping the certificates in $dir ($*)"
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/.new.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -days "$days" -subj "/CN=agentstream CA" \
  -keyout "$work/ca.key" -out "$work/ca.crt" >/dev/null 2>&1 ||
  die "openssl could not make the CA"
serial=1
for svc in "$@"; do
  mkdir -p "$work/$svc"
  cat >"$work/$svc/ext.cnf" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$svc,DNS:localhost,IP:127.0.0.1
EOF
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=$svc" -keyout "$work/$svc/tls.key" -out "$work/$svc/csr.pem" \
    >/dev/null 2>&1 || die "openssl could not make a key for $svc"
  openssl x509 -req -in "$work/$svc/csr.pem" -days "$days" \
    -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "$serial" \
    -extfile "$work/$svc/ext.cnf" -out "$work/$svc/tls.crt" >/dev/null 2>&1 ||
    die "openssl could not sign $svc's certificate"
  serial=$((serial + 1))
done
rm -f "$work/ca.key"
chmod 0644 "$work/ca.crt"
# Into place: each service's key and certificate together (a rename of its
# directory), the CA last.
for svc in "$@"; do
  rm -f "$work/$svc/ext.cnf" "$work/$svc/csr.pem"
  chmod 0644 "$work/$svc/tls.crt"
  chmod 0700 "$work/$svc"
  rm -rf "$dir/$svc.old"
  if [ -e "$dir/$svc" ]; then mv "$dir/$svc" "$dir/$svc.old"; fi
  mv "$work/$svc" "$dir/$svc"
  rm -rf "$dir/$svc.old"
done
mv "$work/ca.crt" "$dir/ca.crt"
echo "make_certs: made a CA and certificates for $* in $dir"
