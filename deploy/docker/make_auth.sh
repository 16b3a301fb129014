#!/bin/sh
# Makes the gateway's token file for --auth=token with one operator entry
# (docs/SECURITY.md, "Deployments"), unless there is one already.
#
# Usage: make_auth.sh DIR
#   DIR/tokens           the token file (--auth-token-file): salted hashes
#                        only, never a token (`gateway token add` writes it)
#   DIR/operator.token   the operator's token, for the operator to read once
# The operator entry is named $AGENTSTREAM_OPERATOR_NAME [operator] and has
# the scope agentstream:admin (sees and cancels every run). More entries:
# `gateway token add --file DIR/tokens --name NAME` (the image's `token`
# kind).
#
# Idempotent: when DIR/tokens exists, nothing is made (a restarted compose
# project keeps its tokens; a deleted operator.token is not made again).
# Both files are written mode 0600 for the user that runs this, complete
# before they appear (renamed into place, the token file last).
set -eu

die() { echo "make_auth: $*" >&2; exit 2; }
[ $# -eq 1 ] || die "usage: make_auth.sh DIR"
dir=$1
name=${AGENTSTREAM_OPERATOR_NAME:-operator}
gateway=${AGENTSTREAM_GATEWAY_BIN:-gateway}
command -v "$gateway" >/dev/null 2>&1 || die "no gateway binary ($gateway)"

if [ -e "$dir/tokens" ]; then
  echo "make_auth: keeping the token file $dir/tokens"
  exit 0
fi
mkdir -p "$dir"
umask 077
rm -f "$dir/.tokens.new" "$dir/.operator.token.new"
"$gateway" token add --file "$dir/.tokens.new" --name "$name" \
  --scope agentstream:admin >"$dir/.operator.token.new" ||
  die "gateway token add failed"
grep -Eqx 'ast_[0-9a-f]+_[0-9a-f]+' "$dir/.operator.token.new" ||
  die "gateway token add printed no token"
mv "$dir/.operator.token.new" "$dir/operator.token"
mv "$dir/.tokens.new" "$dir/tokens"
echo "make_auth: made $dir/tokens with the entry '$name' (agentstream:admin);" \
  "its token is in $dir/operator.token"
