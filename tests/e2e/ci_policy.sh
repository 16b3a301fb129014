# The suite's one rule for a missing dependency, for its shell scripts
# (POSIX sh; sourced, not run): outside CI a test whose dependency is not
# installed is skipped (exit 77, ctest's SKIP_RETURN_CODE) with the reason;
# under CI it fails (exit 1), since CI installs everything
# (deploy/local/install_deps.sh test) and a suite that passes without running
# its tests would lie. CI counts as set when it is non-empty and not "false"
# or "0" (any case).
#
# The Python scripts' copy of this rule is tests/e2e/ci_policy.py; keep the
# two in step.
#
#   . "$HERE/ci_policy.sh"
#   command -v node >/dev/null 2>&1 || skip_or_fail web_client_unit "node is not installed"

# Exit status 0 when CI says this is a CI run.
under_ci() {
  case $(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]') in
    '' | false | 0) return 1 ;;
    *) return 0 ;;
  esac
}

# skip_or_fail TAG MESSAGE: logs why and exits the script, 1 under CI, 77
# otherwise.
skip_or_fail() {
  if under_ci; then
    echo "[$1] FAIL: $2 (a missing dependency fails under CI=$CI)" >&2
    exit 1
  fi
  echo "[$1] SKIP: $2" >&2
  exit 77
}
