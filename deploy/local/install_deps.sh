#!/usr/bin/env bash
# Installs the Debian packages agentstream needs, only those missing.
#   install_deps.sh build   what building and running needs
#   install_deps.sh redis   plus redis-server, for ./run.sh --redis (the Redis
#                           run store and two orchestrator replicas)
#   install_deps.sh test    plus what the test suite needs (browser, node;
#                           Docker engine, compose and debootstrap for the
#                           compose test, which starts its own dockerd;
#                           nginx for the edge test; kubectl for the
#                           manifests' kustomize rendering; clang with
#                           libFuzzer and llvm-symbolizer for the fuzz
#                           targets, docs/FUZZING.md; FastAPI, uvicorn
#                           and gnuplot for the benchmark's peer and plot,
#                           docs/BENCHMARKS.md; the openssl tool for the
#                           mTLS tests' certificates; Python's jwt and
#                           cryptography, which make the JWTs and keys of
#                           the authentication tests, docs/SECURITY.md;
#                           gRPC and protobuf for Python, which the Python
#                           specialist's tests run, docs/SPECIALISTS.md;
#                           tmux for the terminal client's test;
#                           redis-server for the Redis run store's tests,
#                           which start their own on loopback)
# Uses sudo when not root. Safe to run repeatedly: does nothing when all is
# there.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libcpp-httplib-dev nlohmann-json3-dev libabsl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libsqlite3-dev zlib1g-dev libssl-dev
  libbrotli-dev libjwt-dev libhiredis-dev sqlite3 python3
)
TEST_PACKAGES=(chromium chromium-driver nodejs npm
               docker.io docker-compose debootstrap iptables
               nginx python3-yaml curl kubernetes-client
               clang libclang-rt-dev llvm
               python3-fastapi python3-uvicorn python3-uvloop
               python3-httptools gnuplot-nox openssl
               python3-jwt python3-cryptography
               python3-grpcio python3-protobuf tmux redis-server)

want=("${BUILD_PACKAGES[@]}")
if [[ "${1:-build}" == "test" ]]; then
  want+=("${TEST_PACKAGES[@]}")
elif [[ "${1:-build}" == "redis" ]]; then
  want+=(redis-server)
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    # A command that is already on PATH counts (e.g. a node from elsewhere).
    if [[ "$pkg" == nodejs ]] && command -v node >/dev/null 2>&1; then
      continue
    fi
    # Any npm does (a node from elsewhere ships its own; react_e2e uses it).
    if [[ "$pkg" == npm ]] && command -v npm >/dev/null 2>&1; then
      continue
    fi
    # Any kubectl does (another package may own /usr/bin/kubectl).
    if [[ "$pkg" == kubernetes-client ]] && command -v kubectl >/dev/null 2>&1; then
      continue
    fi
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "agentstream: missing packages: ${missing[*]}" >&2
    echo "agentstream: run as root or install sudo" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

# The tests start their own dockerd, nginx and redis-server on loopback and
# stop them by PID; installing the packages must not also start Debian's
# services (nginx on :80, a system dockerd, a system redis-server on :6379).
# Unless the machine already has a policy (Docker images ship one that
# denies every start), a temporary policy-rc.d denies starting exactly those
# services during this install and is removed after. (redis-server's
# maintainer scripts start it through deb-systemd-invoke / invoke-rc.d, as
# its unit redis-server.service, alias redis.service, or the init script
# redis-server: all four names are denied.)
POLICY=/usr/sbin/policy-rc.d
own_policy=0
cleanup() {
  if ((own_policy)); then
    "${SUDO[@]}" rm -f "$POLICY"
  fi
}
trap cleanup EXIT
if [[ "${1:-build}" == "test" || "${1:-build}" == "redis" ]] &&
    [[ ! -e "$POLICY" ]]; then
  policy=$(mktemp)
  cat >"$policy" <<'POLICY_EOF'
#!/bin/sh
# Written by agentstream's install_deps.sh for the length of one apt-get
# install: the test suite (and ./run.sh --redis) starts its own nginx,
# dockerd and redis-server.
for arg in "$@"; do
  case "$arg" in
    --*) ;;
    nginx | nginx.service | docker | docker.service | docker.socket | \
      containerd | containerd.service | redis-server | \
      redis-server.service | redis | redis.service) exit 101 ;;
    *) exit 0 ;;
  esac
done
exit 0
POLICY_EOF
  "${SUDO[@]}" install -m 0755 "$policy" "$POLICY"
  rm -f "$policy"
  own_policy=1
fi

echo "agentstream: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
