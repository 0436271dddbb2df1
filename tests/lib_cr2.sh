# SPDX-License-Identifier: MIT
# Helpers for the checkpoint/restore scenario tests (t_cr_robust.sh,
# t_cr_real.sh).  Sourced, never run.  Self-contained: it does not need
# tests/lib.sh, but follows its conventions ("ok   - ..." / "FAIL - ..."
# lines, a last "NAME: N checks, N failed" line, non-zero status on any
# failure).
#
# From tests/run.sh come CAPCR, TPROGS and BUILD; run alone, a test uses
# build/ (`bash tests/t_cr_robust.sh`).
#
# Every process a test starts is remembered with its command name and,
# when the test ends however it ends, killed by PID if that PID still runs
# that command (a restored process keeps its PID and name).  Nothing is
# ever killed by name.

set -u
CR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${BUILD:=$CR_ROOT/build}"
: "${CAPCR:=$BUILD/bin/capcr}"
: "${TPROGS:=$CR_ROOT/build/tests}"
[ -x "$CAPCR" ] || { echo "FAIL - $CAPCR missing (run make first)"; exit 1; }
for p in crr_counter crr_reaper crr_zombie crr_fill; do
	[ -x "$TPROGS/$p" ] ||
		{ echo "FAIL - $TPROGS/$p missing (run make all first)"; exit 1; }
done
unset CAPCR_FAIL_AT CAPCR_PD LD_PRELOAD

# The system python: the pyenv shim on PATH spawns dozens of processes.
PY=/usr/bin/python3
. "$(dirname "${BASH_SOURCE[0]}")/lib_common.sh"
SHM=""            # a directory on tmpfs, made by cr_shm_dir
CR_TRACK=()       # "PID COMM" of every process started

_cr_cleanup() {
	local e pid comm now
	_cr_stderr
	for e in "${CR_TRACK[@]}"; do
		pid=${e%% *}
		comm=${e#* }
		now=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		[ "$now" = "$comm" ] || continue
		kill -CONT "$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
	[ -n "$SHM" ] && rm -rf "$SHM"
}
trap _cr_cleanup EXIT

# The shell's own stderr goes to a file, shown at the end without bash's
# "PID Killed ..." notices about targets that capcr dump killed (as it
# should).
exec 9>&2 2>"$T/shell.err"
_cr_stderr() {
	[ -f "$T/shell.err" ] || return 0
	grep -Ev '^[^ ]*: line [0-9]+: +[0-9]+ Killed ' "$T/shell.err" >&9
	: >"$T/shell.err"
}
trap 'echo "FAIL - $TNAME: interrupted"; exit 143' TERM INT

ok() {
	CHECKS=$((CHECKS + 1))
	_counts running
	echo "ok   - $*"
}

not_ok() {
	CHECKS=$((CHECKS + 1))
	FAILS=$((FAILS + 1))
	_counts running
	echo "FAIL - $*"
}

# check DESC CMD...: CMD's status decides.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# show FILE...: put the end of files in the log (for failures).
show() {
	local f
	for f in "$@"; do
		echo "      ---- $(basename "$f")"
		tail -n 15 "$f" 2>/dev/null | sed 's/^/      | /'
	done
}

finish() {
	echo "$TNAME: $CHECKS checks, $FAILS failed"
	_counts finished
	[ "$FAILS" -eq 0 ]
	exit $?
}

# cr_track PID COMM: kill PID at the end if it still runs COMM.
cr_track() {
	CR_TRACK+=("$1 $2")
}

# cr_start NAME CMD...: run CMD in the background, stdout to $T/NAME.out,
# stderr to $T/NAME.err, no stdin.  Sets SPID.  CMD may begin with
# `env VAR=VALUE...`.
cr_start() {
	local name=$1 prog a
	shift
	prog=$1
	if [ "$prog" = env ]; then
		for a in "${@:2}"; do
			case $a in *=*) ;; *) prog=$a; break ;; esac
		done
	fi
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	SPID=$!
	prog=$(basename "$prog")
	cr_track "$SPID" "${prog:0:15}"
}

# cr_lines FILE: its number of lines (0 when missing).
cr_lines() {
	local n
	n=$(wc -l 2>/dev/null <"$1") || n=0
	echo "${n:-0}"
}

# cr_wait_lines FILE N [SECONDS]: wait until FILE has N lines or more.
cr_wait_lines() {
	local f=$1 n=$2 secs=$((${3:-20} * TSCALE)) i
	for ((i = 0; i < secs * 100; i++)); do
		[ "$(cr_lines "$f")" -ge "$n" ] && return 0
		sleep 0.01
	done
	echo "      timeout after ${secs}s waiting for $n lines in $(basename "$f")"
	show "$f"
	return 1
}

# cr_alive PID: the process exists and is not a zombie.
cr_alive() {
	local st
	st=$(cr_state "$1") || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# cr_state PID: the one-letter state from /proc/PID/stat.
cr_state() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	echo "${s%% *}"
}

# cr_gone PID: no process at all with that PID (not even a zombie).
cr_gone() {
	[ ! -e "/proc/$1" ]
}

# cr_free_running PID: alive, not traced, not stopped (now and over 0.1 s).
cr_free_running() {
	local i st tr
	for i in 1 2 3 4 5; do
		cr_alive "$1" || { echo "      PID $1 is not running"; return 1; }
		st=$(cr_state "$1")
		tr=$(awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
		if [ "$tr" != 0 ] || [ "$st" = t ] || [ "$st" = T ]; then
			echo "      PID $1: state $st, TracerPid $tr"
			return 1
		fi
		sleep 0.02
	done
}

# cr_wait_gone PID [SECONDS]: wait until PID is no more (for processes
# that are not our children).
cr_wait_gone() {
	local i secs=$((${2:-10} * TSCALE))
	for ((i = 0; i < secs * 100; i++)); do
		cr_gone "$1" && return 0
		sleep 0.01
	done
	return 1
}

# cr_reap PID: wait for our child PID; sets RC to its status.
cr_reap() {
	{ wait "$1"; } 2>/dev/null
	RC=$?
}

# cr_wait_exit PID [SECONDS]: wait for our child PID to end, killing it
# after SECONDS; sets RC (255 after a timeout).
cr_wait_exit() {
	local p=$1 secs=$((${2:-20} * TSCALE)) i
	for ((i = 0; i < secs * 100; i++)); do
		cr_alive "$p" || break
		sleep 0.01
	done
	if cr_alive "$p"; then
		echo "      PID $p still running after ${secs}s: killed"
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
		RC=255
		return 1
	fi
	cr_reap "$p"
	return 0
}

# cr_dump LOG ARGS...: capcr dump ARGS (20 s at most), messages to
# $T/LOG.log; sets RC.  Set CR_ENV=(VAR=VALUE...) for its environment.
CR_ENV=()
cr_dump() {
	local log=$1
	shift
	env ${CR_ENV[@]+"${CR_ENV[@]}"} timeout -k 2 $((20 * TSCALE)) "$CAPCR" dump "$@" \
		>"$T/$log.log" 2>&1 </dev/null
	RC=$?
	LAST_LOG=$T/$log.log
}

# cr_restore LOG ARGS...: capcr restore ARGS in the foreground, run by
# crr_reaper (which reports and kills any process it left behind) within
# 30 s; messages (and the reaper's) to $T/LOG.log; sets RC.
cr_restore() {
	local log=$1
	shift
	env ${CR_ENV[@]+"${CR_ENV[@]}"} timeout -k 2 $((30 * TSCALE)) "$TPROGS/crr_reaper" \
		"$CAPCR" restore "$@" >"$T/$log.log" 2>&1 </dev/null
	RC=$?
	LAST_LOG=$T/$log.log
}

# lsan_note FILE: say so when a sanitized capcr reported leaks in FILE
# (LeakSanitizer then makes it exit 1 whatever it meant to return).
lsan_note() {
	local l
	l=$(grep -m1 '^SUMMARY: AddressSanitizer: .* leaked' "$1" 2>/dev/null) || return 1
	echo "      note: $(basename "$1"): LeakSanitizer: ${l#SUMMARY: AddressSanitizer: }; first direct leak:"
	grep -A4 -m1 '^Direct leak' "$1" | grep ' in .*src/' | grep -v libsanitizer | head -n 2 | sed 's/^ */      |   /'
}

# says LOG REGEX...: $T/LOG.log matches every REGEX (grep -Ei).
says() {
	local log=$T/$1.log re
	shift
	for re in "$@"; do
		if ! grep -Eiq -- "$re" "$log"; then
			echo "      $(basename "$log") lacks /$re/:"
			sed 's/^/      | /' "$log" | head -n 8
			return 1
		fi
	done
}

# no_stray LOG: crr_reaper found nothing left behind.
no_stray() {
	if grep -q 'stray process' "$T/$1.log"; then
		grep 'stray process' "$T/$1.log" | sed 's/^/      | /'
		return 1
	fi
}

# failed_cleanly: RC is a plain failure (not 0, not a crash or timeout).
failed_cleanly() {
	if [ "$RC" -eq 0 ] || [ "$RC" -ge 124 ]; then
		echo "      exit status $RC"
		show "$LAST_LOG"
		return 1
	fi
}

# rc_is N: RC is N; if not, say so (and why, when a sanitized capcr's
# LeakSanitizer changed its status: see lsan_note).
LAST_LOG=/dev/null
rc_is() {
	[ "$RC" -eq "$1" ] && return 0
	echo "      exit status $RC, expected $1"
	lsan_note "$LAST_LOG" || show "$LAST_LOG"
	return 1
}

# counting FILE [N]: FILE holds crr_counter's lines 1, 2, ... (N of them
# when N is given), each with the right running sum: no gap, no repeat.
counting() {
	awk -v want="${2:-}" '
		{ n++; s += n
		  if ($0 != "count " n " sum " s) { print "      line " n ": \"" $0 "\""; bad = 1; exit } }
		END { if (!bad && want != "" && n != want) { print "      " n " lines, expected " want; bad = 1 }
		      exit bad }' "$1"
}

# no_inventory DIR: the image directory holds no inventory.img.
no_inventory() {
	[ ! -e "$1/inventory.img" ] || { echo "      $1/inventory.img exists"; return 1; }
}

# empty_dir DIR: nothing at all in DIR (the partial image was removed).
empty_dir() {
	local l
	l=$(ls -A "$1" 2>/dev/null)
	[ -z "$l" ] || { echo "      left in $(basename "$1"): $(echo $l)"; return 1; }
}

# cr_shm_dir: a fresh directory on tmpfs (/dev/shm), removed at the end;
# sets SHM.
cr_shm_dir() {
	SHM=$(mktemp -d /dev/shm/capcr-$TNAME.XXXXXX)
}

# not_says LOG REGEX: $T/LOG.log does not match REGEX (grep -Ei).
not_says() {
	if grep -Eiq -- "$2" "$T/$1.log"; then
		echo "      $1.log says /$2/:"
		grep -Ei -- "$2" "$T/$1.log" | head -n 3 | sed 's/^/      | /'
		return 1
	fi
}
