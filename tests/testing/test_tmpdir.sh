#!/bin/sh
# The suite's own TMPDIR (ctest sets TMPDIR=/tmp/agentstream-tests-<hash of
# the build directory> for every test,
# tests/CMakeLists.txt): a test leaves nothing behind in it, failing or not
# where it can, and a passing one never (ScopedTempDir in
# tests/testing/subprocess.h, tempfile.TemporaryDirectory or try/finally in
# Python, a trap in shell).
#
#   test_tmpdir.sh setup DIR   the fixture's setup (test_tmpdir_setup): DIR
#                              made, and emptied of what an earlier run left
#                              (listed: a failed test's kept directory, a
#                              test killed at its timeout).
#   test_tmpdir.sh check DIR   the fixture's cleanup (test_tmpdir_empty),
#                              after every other test: fails, listing them,
#                              when files are left in DIR.
#
# DIR is this build tree's alone: nothing but the suite's tests (and what
# they start) writes there, so another process's /tmp files cannot fail the
# check. A test that failed may keep its directory (it prints the path);
# the check then fails too and names it.
set -u
mode=${1:-}
dir=${2:-}
if [ -z "$mode" ] || [ -z "$dir" ]; then
  echo "usage: $0 setup|check DIR" >&2
  exit 2
fi

# The entries of DIR, dot files too, one a line.
entries() {
  find "$dir" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | LC_ALL=C sort
}

case $mode in
  setup)
    mkdir -p "$dir" || exit 1
    left=$(entries)
    if [ -n "$left" ]; then
      echo "test_tmpdir: removing what an earlier run left in $dir:"
      printf '%s\n' "$left" | sed 's/^/  /'
      find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} + || exit 1
    fi
    echo "test_tmpdir: $dir is empty"
    ;;
  check)
    if [ ! -d "$dir" ]; then
      echo "test_tmpdir: $dir is missing (the setup test did not run?)" >&2
      exit 1
    fi
    left=$(entries)
    if [ -z "$left" ]; then
      echo "test_tmpdir: nothing left in $dir"
      exit 0
    fi
    count=$(printf '%s\n' "$left" | wc -l)
    echo "test_tmpdir: $count entries left in $dir by the tests (a test" \
      "that failed may have kept its directory; any other is a leak):" >&2
    # Two levels: the names inside say which test made a directory.
    find "$dir" -mindepth 1 -maxdepth 2 | LC_ALL=C sort | sed "s|^$dir/|  |" |
      head -n 200 >&2
    exit 1
    ;;
  *)
    echo "usage: $0 setup|check DIR" >&2
    exit 2
    ;;
esac
