#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of tests/fuzz/ (docs/FUZZING.md).
#
#   run_fuzz.sh build                   configure + build the clang fuzz tree
#   run_fuzz.sh smoke [TARGET...]       each target for a few seconds
#   run_fuzz.sh campaign [TARGET...]    build, then each target, one at a
#                                       time, until 10 million executions
#                                       or 30 minutes
#   run_fuzz.sh list                    the targets
#
# Options (any subcommand):
#   --build-dir DIR   the fuzz tree (default: build-fuzz/ in the repository)
#   --minutes N       campaign: time limit per target (default 30)
#   --runs N          campaign: execution limit per target (default 10000000)
#   --seconds N       smoke: time per target (default 5)
#   --jobs N          build parallelism (default 2)
# No TARGET means every target. A campaign keeps its growing corpus and any
# crash in DIR/campaign/TARGET/ and ends with a table of executions,
# executions per second, coverage (cov, ft) and crashes per target.
#
# Needs clang++ with libFuzzer (Debian: clang, libclang-rt-dev). Without it
# the script exits 77 (a skip for ctest), unless CI=true: then it fails.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_DIR="$SRC_DIR/tests/fuzz"
BUILD_DIR="$SRC_DIR/build-fuzz"
MINUTES=30
RUNS=10000000
SECONDS_PER_SMOKE=5
JOBS=2
MAX_LEN=4096

# The comment block at the top of this file.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

(($# > 0)) || { usage >&2; exit 2; }
COMMAND=$1
shift
TARGETS=()
while (($#)); do
  case "$1" in
    --build-dir) BUILD_DIR=$(realpath -m "$2"); shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECONDS_PER_SMOKE=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run_fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done

# Whether clang++ can build and link a libFuzzer target; 77 (skip) if not,
# a failure under CI.
require_clang() {
  local why=""
  if ! command -v clang++ >/dev/null 2>&1; then
    why="clang++ is not installed"
  else
    local probe
    probe=$(mktemp -d)
    printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
      'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' \
      >"$probe/probe.cc"
    if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cc" \
        -o "$probe/probe" 2>"$probe/err"; then
      why="clang++ cannot link libFuzzer: $(head -c 300 "$probe/err")"
    fi
    rm -rf "$probe"
  fi
  [[ -z "$why" ]] && return 0
  echo "run_fuzz.sh: $why (Debian: apt-get install clang libclang-rt-dev," \
    "or deploy/local/install_deps.sh test)" >&2
  if [[ "${CI:-}" == "true" ]]; then exit 1; fi
  exit 77
}

do_build() {
  require_clang
  local args=(-S "$SRC_DIR" -B "$BUILD_DIR" -DAGENTSTREAM_FUZZ=ON
              -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  if command -v ccache >/dev/null 2>&1; then
    args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  local start=$SECONDS
  cmake "${args[@]}" >/dev/null
  cmake --build "$BUILD_DIR" --target fuzz_all -j"$JOBS"
  echo "run_fuzz.sh: fuzz tree built in $((SECONDS - start)) s: $BUILD_DIR/bin" >&2
}

load_targets() {
  local list="$BUILD_DIR/fuzz_targets.txt"
  if [[ ! -f "$list" ]]; then
    echo "run_fuzz.sh: no fuzz tree in $BUILD_DIR (run_fuzz.sh build)" >&2
    exit 1
  fi
  local known
  mapfile -t known <"$list"
  if ((${#TARGETS[@]} == 0)); then
    TARGETS=("${known[@]}")
    return
  fi
  for t in "${TARGETS[@]}"; do
    if ! printf '%s\n' "${known[@]}" | grep -qx -- "$t"; then
      echo "run_fuzz.sh: unknown target $t (known: ${known[*]})" >&2
      exit 2
    fi
  done
}

# Runs one target: run_target TARGET WORK_DIR LIBFUZZER_FLAG...
# New inputs go to WORK_DIR/corpus (the committed seeds are only read),
# crashes to WORK_DIR/artifacts/.
run_target() {
  local target=$1 work=$2
  shift 2
  local bin="$BUILD_DIR/bin/fuzz_$target"
  [[ -x "$bin" ]] || { echo "run_fuzz.sh: $bin is missing" >&2; return 1; }
  mkdir -p "$work/corpus" "$work/artifacts"
  local dict=()
  [[ -f "$FUZZ_DIR/dict/$target.dict" ]] &&
    dict=(-dict="$FUZZ_DIR/dict/$target.dict")
  # libFuzzer's own failure exit code is 77, which ctest would read as a
  # skip: every finding exits 1.
  "$bin" "${dict[@]}" -max_len="$MAX_LEN" -timeout=10 -print_final_stats=1 \
    -error_exitcode=1 -timeout_exitcode=1 \
    -artifact_prefix="$work/artifacts/" "$@" \
    "$work/corpus" "$FUZZ_DIR/corpus/$target"
}

stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

summarize() {
  local target=$1 log=$2 work=$3 status=$4
  local execs rate cov ft crashes
  execs=$(stat_of number_of_executed_units "$log")
  rate=$(stat_of average_exec_per_sec "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$work/artifacts" -type f | wc -l)
  printf '%-14s %12s %8s %6s %7s %8s %s\n' "$target" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes" \
    "$( ((status == 0)) && echo ok || echo "FAILED (exit $status)")"
}

header() {
  printf '%-14s %12s %8s %6s %7s %8s %s\n' target executions exec/s cov ft \
    crashes result
}

do_smoke() {
  require_clang
  load_targets
  local failed=0 table=()
  for t in "${TARGETS[@]}"; do
    local work="$BUILD_DIR/smoke/$t" status=0
    rm -rf "$work"
    mkdir -p "$work"
    echo "run_fuzz.sh: smoke $t (${SECONDS_PER_SMOKE} s)" >&2
    run_target "$t" "$work" -max_total_time="$SECONDS_PER_SMOKE" \
      >"$work/log" 2>&1 || status=$?
    if ((status != 0)); then
      failed=1
      tail -60 "$work/log" >&2
    fi
    table+=("$(summarize "$t" "$work/log" "$work" "$status")")
  done
  header
  printf '%s\n' "${table[@]}"
  return "$failed"
}

do_campaign() {
  do_build
  load_targets
  local failed=0 table=()
  echo "run_fuzz.sh: campaign of ${TARGETS[*]}: each up to $RUNS runs or" \
    "$MINUTES min, one at a time" >&2
  for t in "${TARGETS[@]}"; do
    local work="$BUILD_DIR/campaign/$t" status=0
    mkdir -p "$work"
    echo "run_fuzz.sh: campaign $t ($(date -u +%FT%TZ)), log $work/log" >&2
    # The whole log goes to the file; progress lines to the terminal.
    set +e
    run_target "$t" "$work" -runs="$RUNS" -max_total_time=$((MINUTES * 60)) \
      2>&1 | tee "$work/log" | grep --line-buffered -E \
      'pulse|DONE|ERROR|SUMMARY|Test unit written|FUZZ_CHECK' >&2
    status=${PIPESTATUS[0]}
    set -e
    ((status == 0)) || failed=1
    table+=("$(summarize "$t" "$work/log" "$work" "$status")")
  done
  header
  printf '%s\n' "${table[@]}"
  return "$failed"
}

case "$COMMAND" in
  build) do_build ;;
  smoke) do_smoke ;;
  campaign) do_campaign ;;
  list) load_targets; printf '%s\n' "${TARGETS[@]}" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
