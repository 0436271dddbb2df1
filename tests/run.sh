#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every test against one or more build directories.
#
#   tests/run.sh [BUILD_DIR...]        (default: build build-san)
#
# For each build directory that exists: every unit test binary in
# BUILD/unit/, then every tests/t_*.sh with CAPCR, CAPCR_LIB, TPROGS and
# BUILD set.  The test programs come from BUILD/tests (build-san's are
# built with the sanitizers too), or from build/tests when BUILD has none.
#
# The counts are of checks, not of scripts: each shell test writes its
# counts to the file named by CAPCR_TEST_COUNTS (tests/lib.sh, lib_cr2.sh)
# after every check; a unit test's come from cmocka's "[  PASSED  ] N
# test(s)." lines.  A script that ends without reaching `finish` (or
# `skip`) counts one failure more; one that cannot run here (`skip`) counts
# as skipped, never as passed.  The last line is
#
#   N passed, N failed, N skipped
#
# and the status is non-zero if anything failed.
#
# Every test runs under tests/tools/reaper (BUILD/tests-tools/reaper): in
# a session and process group of its own, as the child of a subreaper, so
# that everything it starts stays below the reaper, even what calls setsid
# or double-forks.  At the time limit the whole process group gets SIGTERM,
# then SIGKILL; once the test has ended, any process it left behind is
# reported, killed by PID and reaped, and the test fails ("left N processes
# behind: ...").  Nothing is ever killed by name.
#
# CAPCR_TESTS="t_lock t_run unit" runs only the tests named (unit: the unit
# tests).
#
# Time limit: CAPCR_TEST_TIMEOUT seconds per test (default 300), times
# CAPCR_TEST_TIMEOUT_SCALE (default 1), times 2 when the load average is
# above the number of CPUs as the test starts (times 3 above twice that,
# times 4 above four times).  The scale is passed on to
# the tests, whose waits grow with it (TSCALE in tests/lib.sh).  A test that
# reached `finish` with every check passed and then ran into the limit (its
# cleanup hung) is not failed: it is reported as a cleanup timeout, counted
# apart at the end.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

BASE_TIMEOUT=${CAPCR_TEST_TIMEOUT:-300}
BASE_SCALE=${CAPCR_TEST_TIMEOUT_SCALE:-1}
NCPU=$(nproc 2>/dev/null || echo 1)
dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(build build-san)

passed=0
failed=0
skipped=0
cleanup_timeouts=0
ran_dirs=0
failed_names=()
TMPD=$(mktemp -d /tmp/capcr-run.XXXXXX)
LOG=$TMPD/log
trap 'rm -rf "$TMPD"' EXIT
# A ^C or a TERM reaches the reaper too (same process group), which ends
# the test's group; then stop here.
trap 'echo "interrupted"; exit 130' INT TERM

# wanted NAME: NAME is among CAPCR_TESTS (or that is unset).
wanted() {
	[ -z "${CAPCR_TESTS:-}" ] && return 0
	case " $CAPCR_TESTS " in *" $1 "*) return 0 ;; esac
	return 1
}

# scale: CAPCR_TEST_TIMEOUT_SCALE, times 2, 3 or 4 when the machine is
# overloaded (load average above 1, 2 or 4 times the number of CPUs).
scale() {
	awk -v s="$BASE_SCALE" -v n="$NCPU" '
		{ l = $1 }
		END { s += 0; if (s <= 0) s = 1
		      if (l > 4 * n) s *= 4; else if (l > 2 * n) s *= 3
		      else if (l > n) s *= 2
		      print s }' /proc/loadavg
}

# The reaper: from this build, else from build/, else compiled here.
find_reaper() {
	local r
	for r in "$1/tests-tools/reaper" "$ROOT/build/tests-tools/reaper"; do
		[ -x "$r" ] && { echo "$r"; return 0; }
	done
	r=$TMPD/reaper
	if [ ! -x "$r" ]; then
		${CC:-cc} -std=gnu11 -O2 -o "$r" "$ROOT/tests/tools/reaper.c" \
			>"$TMPD/reaper.cc" 2>&1 || { cat "$TMPD/reaper.cc" >&2; return 1; }
	fi
	echo "$r"
}

# kv FILE KEY: the value of "KEY VALUE" in FILE (empty when none).
kv() {
	awk -v k="$2" '$1 == k { print $2; exit }' "$1" 2>/dev/null
}

# show_log: the failed checks of the last test, each with what it said
# after it, then the end of its output.
show_log() {
	if grep -q '^FAIL - ' "$LOG"; then
		grep -A6 '^FAIL - ' "$LOG" | grep -v '^ok   - ' | head -n 80 |
			sed 's/^/      | /'
		echo "      | ...... the end:"
	fi
	tail -n 12 "$LOG" | sed 's/^/      | /'
}

# run_one KIND LABEL CMD...: run CMD under the reaper, count, report.
# KIND is "unit" (a cmocka binary) or "sh" (a shell test).
run_one() {
	local kind=$1 label=$2 rc s limit grace st=$TMPD/status cnt=$TMPD/counts
	shift 2
	s=$(scale)
	limit=$(awk -v a="$BASE_TIMEOUT" -v s="$s" 'BEGIN { printf "%d", a * s }')
	grace=$(awk -v s="$s" 'BEGIN { printf "%d", 5 * s }')
	rm -f "$st" "$cnt"
	"$REAPER" -t "$limit" -g "$grace" -s "$st" -- \
		env CAPCR_TEST_COUNTS="$cnt" CAPCR_TEST_TIMEOUT_SCALE="$s" "$@" \
		</dev/null >"$LOG" 2>&1
	rc=$?

	local secs timedout nleft left checks fails skips state
	secs=$(kv "$st" seconds)
	timedout=$(kv "$st" timeout)
	nleft=$(kv "$st" leftovers)
	[ -n "$nleft" ] || nleft=0
	[ -n "$timedout" ] || timedout=0
	[ -f "$st" ] || { timedout=0; secs=?; }
	left=$(awk '$1 == "left" { printf "%s%s %s (%s)", sep, $2, $3, $4; sep = ", " }' \
		"$st" 2>/dev/null)
	if [ "$kind" = unit ]; then
		# cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)"
		checks=0 fails=0 skips=0 state=finished
		local p f k
		p=$(awk '/^\[  PASSED  \] [0-9]+ test/ { n += $4 } END { print n + 0 }' "$LOG")
		f=$(awk '/^\[  FAILED  \] [0-9]+ test/ { n += $4 } END { print n + 0 }' "$LOG")
		k=$(awk '/^\[  SKIPPED \] [0-9]+ test/ { n += $4 } END { print n + 0 }' "$LOG")
		checks=$((p + f))
		fails=$f
		skips=$k
		if [ "$checks" -eq 0 ] && [ "$skips" -eq 0 ]; then
			# nothing said: the status decides, as one check
			checks=1
			[ "$rc" -eq 0 ] || fails=1
		fi
	else
		checks=$(kv "$cnt" checks)
		fails=$(kv "$cnt" fails)
		skips=$(kv "$cnt" skips)
		state=$(kv "$cnt" state)
		checks=${checks:-0} fails=${fails:-0} skips=${skips:-0}
		state=${state:-none}
	fi

	# What went wrong beyond the checks, each counted as one failure.
	local why=() extra=0 note=""
	if [ "$timedout" = 1 ]; then
		if [ "$state" = finished ] && [ "$fails" -eq 0 ]; then
			note="its cleanup ran into the ${limit}s limit after all its checks passed"
			cleanup_timeouts=$((cleanup_timeouts + 1))
		else
			why+=("timed out after ${limit}s, $checks checks done")
			extra=$((extra + 1))
		fi
	elif [ "$kind" = sh ] && [ "$state" != finished ] && [ "$state" != skipped ]; then
		local how="exit $rc"
		[ "$rc" -gt 128 ] && [ "$rc" -lt 160 ] && how="killed by signal $((rc - 128))"
		why+=("ended without finishing ($how) after $checks checks")
		extra=$((extra + 1))
	elif [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
		local how="exit $rc"
		[ "$rc" -gt 128 ] && [ "$rc" -lt 160 ] && how="killed by signal $((rc - 128))"
		why+=("$how although no check failed")
		extra=$((extra + 1))
	fi
	if [ "$nleft" -gt 0 ]; then
		why+=("left $nleft processes behind: $left")
		extra=$((extra + 1))
	fi
	[ "$fails" -gt 0 ] && why=("$fails of $checks checks failed" "${why[@]}")

	passed=$((passed + checks - fails))
	failed=$((failed + fails + extra))
	skipped=$((skipped + skips))

	local summary="$((checks - fails))/$checks"
	[ "$skips" -gt 0 ] && summary="$summary, $skips skipped"
	if [ ${#why[@]} -gt 0 ]; then
		failed_names+=("$label")
		local w all=""
		for w in "${why[@]}"; do all="$all${all:+; }$w"; done
		printf 'FAIL  %-36s %6ss  %s  (%s)\n' "$label" "$secs" "$summary" "$all"
		show_log
	elif [ "$state" = skipped ] || { [ "$checks" -eq 0 ] && [ "$skips" -gt 0 ]; }; then
		printf 'SKIP  %-36s %6ss  %s  (%s)\n' "$label" "$secs" "$summary" \
			"$(grep -m1 '^skip - ' "$LOG" | sed 's/^skip - [^:]*: //')"
	else
		printf 'PASS  %-36s %6ss  %s\n' "$label" "$secs" "$summary"
	fi
	if [ -n "$note" ]; then
		printf 'WARN  %-36s  %s\n' "$label" "$note"
		tail -n 8 "$LOG" | sed 's/^/      | /'
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
	if ! REAPER=$(find_reaper "$BA"); then
		failed=$((failed + 1))
		echo "FAIL  $B: no tests-tools/reaper and it does not build"
		continue
	fi
	TPROGS=$BA/tests
	if [ ! -d "$TPROGS" ]; then
		TPROGS=$ROOT/build/tests
		echo "note: $B has no tests/: test programs from build/tests"
	fi
	[ -d "$TPROGS" ] ||
		echo "note: $TPROGS is missing: the shell tests need the test programs (make all)"
	for u in "$BA"/unit/*; do
		[ -f "$u" ] && [ -x "$u" ] || continue
		case $u in *.d | *.o) continue ;; esac
		wanted unit || continue
		run_one unit "$B/unit/$(basename "$u")" "$u"
	done
	for t in "$ROOT"/tests/t_*.sh; do
		[ -f "$t" ] || continue
		wanted "$(basename "$t" .sh)" || continue
		run_one sh "$B/$(basename "$t" .sh)" env \
			CAPCR="$BA/bin/capcr" CAPCR_LIB="$BA/lib/libcapcr.so" \
			TPROGS="$TPROGS" BUILD="$BA" bash "$t"
	done
done

if [ $ran_dirs -eq 0 ]; then
	echo "no build directory found among: ${dirs[*]} (run make first)"
	failed=$((failed + 1))
fi
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
line="$passed passed, $failed failed, $skipped skipped"
[ $cleanup_timeouts -gt 0 ] &&
	line="$line ($cleanup_timeouts cleanup timeouts after all checks passed)"
echo "$line"
[ $failed -eq 0 ]
