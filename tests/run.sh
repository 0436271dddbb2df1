#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every test against one or more build directories.
#
#   tests/run.sh [BUILD_DIR...]        (default: build build-san)
#
# For each build directory that exists: every unit test binary in
# BUILD/unit/, then every tests/t_*.sh with CAPCR, CAPCR_LIB, TPROGS and
# BUILD set.  Test programs always come from build/tests (they are targets,
# never sanitized).  Each test gets 60 seconds and no stdin; a failed one
# shows the end of its output.  The last line is "N passed, N failed"; the
# status is non-zero if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

TIMEOUT=${CAPCR_TEST_TIMEOUT:-60}
TPROGS=$ROOT/build/tests
dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(build build-san)

passed=0
failed=0
ran_dirs=0
if [ ! -d "$TPROGS" ]; then
	echo "note: $TPROGS is missing: the shell tests need the test programs (make all)"
fi
LOG=$(mktemp /tmp/capcr-run.XXXXXX)
trap 'rm -f "$LOG"' EXIT

# run_one LABEL CMD...: run, time, report.
run_one() {
	local label=$1 rc t0 t1
	shift
	t0=$(date +%s%N)
	timeout -k 5 "$TIMEOUT" "$@" </dev/null >"$LOG" 2>&1
	rc=$?
	t1=$(date +%s%N)
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-36s %5ss\n' "$label" "$secs"
	else
		failed=$((failed + 1))
		local why="exit $rc"
		[ $rc -eq 124 ] && why="timed out after ${TIMEOUT}s"
		[ $rc -gt 128 ] && [ $rc -ne 255 ] && why="killed by signal $((rc - 128))"
		printf 'FAIL  %-36s %5ss  (%s)\n' "$label" "$secs" "$why"
		tail -n 30 "$LOG" | sed 's/^/      | /'
	fi
}

for B in "${dirs[@]}"; do
	B=${B%/}
	if [ ! -d "$B" ]; then
		echo "skip  $B (no such build directory)"
		continue
	fi
	case $B in /*) BA=$B ;; *) BA=$ROOT/$B ;; esac
	ran_dirs=$((ran_dirs + 1))
	if [ ! -x "$BA/bin/capcr" ] || [ ! -f "$BA/lib/libcapcr.so" ]; then
		failed=$((failed + 1))
		echo "FAIL  $B: no bin/capcr or lib/libcapcr.so (run make first)"
		continue
	fi
	for u in "$BA"/unit/*; do
		[ -f "$u" ] && [ -x "$u" ] || continue
		case $u in *.d | *.o) continue ;; esac
		run_one "$B/unit/$(basename "$u")" "$u"
	done
	for t in "$ROOT"/tests/t_*.sh; do
		[ -f "$t" ] || continue
		run_one "$B/$(basename "$t" .sh)" env \
			CAPCR="$BA/bin/capcr" CAPCR_LIB="$BA/lib/libcapcr.so" \
			TPROGS="$TPROGS" BUILD="$BA" bash "$t"
	done
done

if [ $ran_dirs -eq 0 ]; then
	echo "no build directory found among: ${dirs[*]} (run make first)"
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
