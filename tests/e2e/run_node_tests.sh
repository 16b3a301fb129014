#!/bin/sh
# Runs the web client's unit tests with Node's built-in test runner.
# Without node: exit 77 (ctest's SKIP_RETURN_CODE), or 1 under CI
# (tests/e2e/ci_policy.sh).
# usage: run_node_tests.sh TEST_FILE...
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/ci_policy.sh"
if ! command -v node >/dev/null 2>&1; then
  skip_or_fail web_client_unit "node is not on PATH: the web client's unit tests did not run (apt-get install nodejs)"
fi
exec node --test "$@"
