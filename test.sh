#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with ctest.
#   ./test.sh                  the whole suite (unit, integration, e2e)
#   ./test.sh --sanitize       the same under ASan+UBSan (build-asan/)
#   ./test.sh -L unit          extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=build
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release)
INSTALL=1
CTEST_ARGS=()
while (($#)); do
  case "$1" in
    --sanitize)
      BUILD_DIR=build-asan
      CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DAGENTSTREAM_SANITIZE=ON)
      shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help)
      sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
      exit 0 ;;
    *) CTEST_ARGS+=("$1"); shift ;;
  esac
done

if ((INSTALL)); then
  deploy/local/install_deps.sh test
fi
cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j2
# Half of the tests start several processes: two at a time on two cores.
cd "$BUILD_DIR"
exec ctest --output-on-failure --timeout 600 -j2 "${CTEST_ARGS[@]}"
