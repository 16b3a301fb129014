"""The suite's one rule for a missing dependency, for its Python scripts.

Outside CI a test whose dependency (a browser, nginx, Docker, PyYAML...) is
not installed is skipped: ctest's SKIP_RETURN_CODE 77, with the reason. Under
CI it fails: CI installs everything (deploy/local/install_deps.sh test), so a
missing dependency there means a test that did not run, and a suite that
passes without running its tests would lie. `CI` counts as set when it is
non-empty and not "false" or "0" (any case); CI systems set CI=true.

The shell scripts' copy of this rule is tests/e2e/ci_policy.sh; keep the two
in step.

Scripts in subdirectories (compose/, edge/, k8s/) import this module with
tests/e2e on sys.path (see their imports).
"""

import os

SKIP = 77


def under_ci():
  """True when the environment variable CI says this is a CI run."""
  value = os.environ.get('CI', '').lower()
  return value not in ('', 'false', '0')


def skip_or_fail(tag, msg):
  """Logs why a dependency is missing; returns the exit status to use:
  1 under CI (a failure), 77 otherwise (a skip)."""
  if under_ci():
    print(f'[{tag}] FAIL: {msg} (a missing dependency fails under '
          f'CI={os.environ.get("CI")})', flush=True)
    return 1
  print(f'[{tag}] SKIP: {msg}', flush=True)
  return SKIP
