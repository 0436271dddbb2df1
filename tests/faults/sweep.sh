#!/bin/bash
# SPDX-License-Identifier: MIT
# make faults: the fault-injection sweep (see tests/faults/lib_faults.sh for
# what one point is and how it is judged).
#
#   tests/faults/sweep.sh [BUILD_DIR]          (default: build)
#
# For each target (T: threads, C: a tree with pipes and sockets) and each
# operation (dump, dump -R, restore), a clean run under strace first counts
# the calls capcr makes, per system call and per thread; then
#   err    every call N of every system call fails (errno by family),
#   kill   capcr gets SIGKILL at every call N of every system call,
#   tkill  the target is killed at every ptrace call N of capcr,
#   disk   (dump only) the image directory is a tmpfs of 4 KiB, 8 KiB, ...
#          up to past the image's size.
# Every N, by default, counted as strace counts for when=N: per thread
# (a dump's worker threads get their Nth call failed too).  The calls of
# the dynamic loader and of libc's start, before capcr's main, are left out
# (failing them tests ld.so, not capcr), and so are the calls that cannot
# fail (getpid, rt_sigprocmask, ...: flt_skip).  Environment:
#   FAULTS_LIMIT=K    at most K points per target, operation and fault kind:
#                     every syscall's first calls, then evenly spaced N
#   FAULTS_ONLY=RE    only the groups "KIND:OP:FAULT" matching RE (grep -E)
#   FAULTS_CALLS=RE   err and kill: only the system calls matching RE
#                     (whole name, e.g. 'read|pread64|openat')
#   FAULTS_OUT=DIR    where points.log and summary.txt go (build/faults)
#   FAULTS_TIME=S     start no point after S seconds (the summary says so)
# Prints each point's outcome as it goes, then the counts per outcome and
# every finding (outcome other than ok-*).  Exit status 1 if any finding.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
CAPCR=$B/bin/capcr
TPROGS=$ROOT/build/tests
for f in "$CAPCR" "$TPROGS/crf_target" "$TPROGS/crr_reaper"; do
	[ -x "$f" ] || { echo "sweep: $f missing (make all)"; exit 2; }
done
command -v strace >/dev/null || { echo "sweep: strace missing (apt-get install strace)"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "sweep: needs root (ptrace, clone3 set_tid, mount)"; exit 2; }
unset CAPCR_FAIL_AT CAPCR_PD LD_PRELOAD
OUT=${FAULTS_OUT:-$ROOT/build/faults}
LIMIT=${FAULTS_LIMIT:-0}
TIME=${FAULTS_TIME:-0}
STOPPED=0
ONLY=${FAULTS_ONLY:-.}
CALLS=${FAULTS_CALLS:-.*}
mkdir -p "$OUT"
W=$(mktemp -d /tmp/capcr-faults.XXXXXX)
. "$ROOT/tests/faults/lib_faults.sh"
trap 'flt_cleanup; rm -rf "$W"' EXIT
# Not bash's notices of the targets capcr dump killed, as it should.
exec 2> >(grep --line-buffered -Ev '^[^ ]*: line [0-9]+: +[0-9]+ Killed ' >&2)
trap 'echo "sweep: interrupted"; exit 143' TERM INT

: >"$OUT/points.log"
declare -A COUNT=()
TRIED=0
T_START=$SECONDS

# points KIND OP FAULT: the "SYSCALL N" lines to try, FAULTS_LIMIT applied.
points() {
	local kind=$1 op=$2 fault=$3 sc m
	case $fault in
	tkill) awk '$1 == "ptrace" { for (i = $2; i <= $3; i++) print "ptrace", i }' \
		"$W/calls-$kind-$op" ;;
	disk)
		local sz
		sz=$(cat "$W/size-$kind" 2>/dev/null || echo 1024)
		{
			for k in 4 8 12 16 24 32 48 64; do echo "tmpfs $k"; done
			for ((k = 128; k <= sz + 192; k += 64)); do echo "tmpfs $k"; done
		} ;;
	*) while read -r sc f m; do
			flt_skip "$sc" && continue
			grep -qE -- "^($CALLS)\$" <<<"$sc" || continue
			for ((i = f; i <= m; i++)); do echo "$sc $i"; done
		done <"$W/calls-$kind-$op" ;;
	esac >"$W/all"
	local total
	total=$(wc -l <"$W/all")
	if [ "$LIMIT" -gt 0 ] && [ "$total" -gt "$LIMIT" ]; then
		# Each syscall's first call, then every STEP-th of the rest.
		awk -v lim="$LIMIT" -v total="$total" '
			!($1 in seen) { seen[$1] = 1; print; kept++; next } { rest[++r] = $0 }
			END { left = lim - kept; if (left < 1) exit
			      step = r / left; if (step < 1) step = 1
			      for (x = 1; x <= r; x += step) print rest[int(x)] }' "$W/all"
	else
		cat "$W/all"
	fi
}

FINDINGS=()
for kind in T C; do
	for op in dump dumpR restore; do
		groups=()
		for fault in err kill tkill disk; do
			[ "$op" = restore ] && [ "$fault" = disk ] && continue
			grep -qE -- "$ONLY" <<<"$kind:$op:$fault" && groups+=("$fault")
		done
		[ ${#groups[@]} -gt 0 ] || continue
		if ! flt_count "$kind" "$op"; then
			FINDINGS+=("$kind $op: the clean run failed")
			continue
		fi
		echo "== $kind $op: $(awk '{ s += $3 - $2 + 1 } END { print s }' "$W/calls-$kind-$op") calls in a clean run after libc's start" \
			"($(wc -l <"$W/calls-$kind-$op") system calls)"
		for fault in "${groups[@]}"; do
			points "$kind" "$op" "$fault" >"$W/points"
			echo "== $kind $op $fault: $(wc -l <"$W/points") points"
			while read -r sc n; do
				if [ "$TIME" -gt 0 ] && [ $((SECONDS - T_START)) -ge "$TIME" ]; then
					STOPPED=1
					break 3
				fi
				er=-
				[ "$fault" = err ] && er=$(flt_errno_for "$sc" "$n")
				[ "$fault" = kill ] && er=SIGKILL
				[ "$fault" = tkill ] && er=SIGKILL
				[ "$fault" = disk ] && er=ENOSPC
				flt_point "$kind" "$op" "$fault" "$sc" "$n" "$er"
				TRIED=$((TRIED + 1))
				COUNT[$OUTCOME]=$((${COUNT[$OUTCOME]:-0} + 1))
				line="$kind $op $fault $sc $n $er $OUTCOME"
				printf '%s | %s\n' "$line" "$WHY" >>"$OUT/points.log"
				case $OUTCOME in
				ok-*) ;;
				*)
					FINDINGS+=("$line | $WHY")
					printf 'FINDING %s | %s\n' "$line" "$WHY"
					;;
				esac
				[ $((TRIED % 50)) = 0 ] &&
					echo "   ... $TRIED points, $((SECONDS - T_START)) s"
			done <"$W/points"
		done
	done
done
[ -n "${TGT:-}" ] && tgt_stop

{
	echo "fault points tried: $TRIED in $((SECONDS - T_START)) s" \
		"(FAULTS_LIMIT=${LIMIT:-0}, FAULTS_ONLY=$ONLY$([ $STOPPED = 1 ] && echo ", stopped by FAULTS_TIME=$TIME"))"
	for o in ok-success ok-failed-with-cause hang crash harmed-target \
		leftover failure-without-cause bad-image setup; do
		printf '  %-24s %d\n' "$o" "${COUNT[$o]:-0}"
	done
	echo "findings: ${#FINDINGS[@]}"
	for f in "${FINDINGS[@]}"; do echo "  $f"; done
} | tee "$OUT/summary.txt"
[ ${#FINDINGS[@]} -eq 0 ]
