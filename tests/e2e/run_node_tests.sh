#!/bin/sh
# Runs the web client's unit tests with Node's built-in test runner.
# Exits 77 (ctest's SKIP_RETURN_CODE) when node is not installed.
# usage: run_node_tests.sh TEST_FILE...
if ! command -v node >/dev/null 2>&1; then
  echo "node not found on PATH: skipping the web client's unit tests" >&2
  exit 77
fi
exec node --test "$@"
