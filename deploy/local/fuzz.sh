#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME (default 60s), JOBS at a
# time (default 2), and stops at the first failure. A failing input is kept
# under the package's testdata/fuzz/ so `go test` replays it from then on.
#
#   deploy/local/fuzz.sh                 # every target, 60s each
#   FUZZTIME=10s deploy/local/fuzz.sh ./normalize
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZTIME=${FUZZTIME:-60s}
JOBS=${JOBS:-2}
pkgs=("${@:-./...}")
mapfile -t targets < <(go list -f '{{.Dir}}' "${pkgs[@]}" | while read -r dir; do
	grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed "s|^func |./$(realpath --relative-to=. "$dir") |"  || true
done)
echo "fuzz.sh: ${#targets[@]} targets, $FUZZTIME each, $JOBS at a time" >&2
log=$(mktemp -d)
printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -L 1 bash -c '
	pkg=$0 target=$1
	if go test "$pkg" -run "^$" -fuzz "^${target}\$" -fuzztime "'"$FUZZTIME"'" -parallel 1 >"'"$log"'/${target}.log" 2>&1; then
		echo "ok   $pkg $target"
	else
		echo "FAIL $pkg $target (log: '"$log"'/${target}.log)"; tail -20 "'"$log"'/${target}.log"; exit 255
	fi'
