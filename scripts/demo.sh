#!/bin/sh
# SPDX-License-Identifier: MIT
#
# scripts/demo.sh BUILD_DIR: `make demo`.
#
# Starts tests/progs/demo_counter under `capcr run` and watches its
# capability space change with `capcr caps PID` while it runs, checking
# every snapshot against what the program says it did.  Unattended: no
# stdin, no terminal, about 10 seconds.  Exits 0 only if every check held.
#
# The demo is a list of steps (the step_* functions, run in order by the
# STEPS line at the bottom); checkpoint/restore steps go in the same way.
set -eu

BUILD=${1:-build}
if [ ! -x "$BUILD/bin/capcr" ] || [ ! -x "$BUILD/tests/demo_counter" ]; then
	echo "demo: $BUILD/bin/capcr or $BUILD/tests/demo_counter missing; run make first" >&2
	exit 1
fi
BUILD=$(cd "$BUILD" && pwd)
CAPCR=$BUILD/bin/capcr
PROG=$BUILD/tests/demo_counter
unset CAPCR_PD LD_PRELOAD CAPCR_RUNTIME

WORK=$(mktemp -d "${TMPDIR:-/tmp}/capcr-demo.XXXXXX")
OUT=$WORK/target.out    # what demo_counter prints
CAPS=$WORK/caps.out     # the last `capcr caps` output
MON_PID=                # capcr run
PID=                    # demo_counter, the target
SHOWN=0                 # lines of $OUT already shown
FAILED=0

cleanup() {
	for p in $PID $MON_PID; do
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '%s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
fatal() {
	say "demo: FAILED: $*" >&2
	exit 1
}
check() { # check CONDITION-TEXT COMMAND...: run a check, report a failure
	what=$1
	shift
	if "$@"; then
		:
	else
		say "   CHECK FAILED: $what" >&2
		FAILED=$((FAILED + 1))
	fi
}

# The target's new output lines, indented.
show_target() {
	total=$(wc -l <"$OUT")
	if [ "$total" -gt "$SHOWN" ]; then
		tail -n +"$((SHOWN + 1))" "$OUT" | head -n "$((total - SHOWN))" |
			sed 's/^/   target| /'
		SHOWN=$total
	fi
}

# wait_tick N: until the target has printed "tick N:", at most N+5 seconds.
wait_tick() {
	n=0
	limit=$((($1 + 5) * 10))
	while ! grep -q "^tick $1:" "$OUT"; do
		if ! kill -0 "$PID" 2>/dev/null; then
			[ ! -s "$WORK/restore.err" ] || cat "$WORK/restore.err" >&2
			fatal "the target exited early"
		fi
		n=$((n + 1))
		[ "$n" -le "$limit" ] || fatal "no tick $1 from the target"
		sleep 0.1
	done
}

# fd NAME: the descriptor the target named NAME=FD (its last mention).
fd() {
	v=$(sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" "$OUT" | tail -n 1)
	[ -n "$v" ] || fatal "the target never said $1=FD"
	echo "$v"
}

# caps: show `capcr caps PID` and keep it for the checks.
caps() {
	say "   \$ capcr caps $PID"
	if ! "$CAPCR" caps "$PID" >"$CAPS" 2>"$WORK/caps.err"; then
		sed 's/^/   | /' "$CAPS" "$WORK/caps.err"
		fatal "capcr caps $PID failed"
	fi
	sed 's/^/   | /' "$CAPS" "$WORK/caps.err"
	# The region may lag or lead the kernel only inside an update; a
	# snapshot that lists a descriptor the kernel lacks is a bug.
	check "capcr caps printed no warnings" test ! -s "$WORK/caps.err"
}

# field FD COLUMN: a column of FD's row in the last caps output
# (1 FD, 2 KIND, 3 BADGE, 4 REP, 5 KER, 6 ORIGIN, 7 provenance...).
field() {
	awk -v fd="$1" -v col="$2" '$1 == fd && NR > 2 {
		if (col < 7) { print $col; exit }
		s = ""; for (i = 7; i <= NF; i++) s = s (i > 7 ? " " : "") $i
		print s; exit }' "$CAPS"
}
has_row() { [ -n "$(field "$1" 1)" ]; }
no_row() { [ -z "$(field "$1" 1)" ]; }
is() { [ "$(field "$1" "$2")" = "$3" ]; }
contains() { case $(field "$1" 7) in *"$2"*) return 0 ;; esac; return 1; }
row_is() { # row_is FD KIND REP KER ORIGIN
	is "$1" 2 "$2" && is "$1" 4 "$3" && is "$1" 5 "$4" && is "$1" 6 "$5"
}
same() { [ "$1" = "$2" ]; }
differ() { [ "$1" != "$2" ]; }

# ---------------------------------------------------------------------------
step_start() {
	say "== Step 1: start a program under capcr run =="
	note "\$ capcr run -- demo_counter $WORK"
	note "capcr run becomes the program's parent, serves it a PD channel and"
	note "preloads libcapcr.  At startup the runtime asks the PD service for its"
	note "capability-space region (cap_space_info), maps the memfd it gets back"
	note "(MAP_SHARED), and enters every descriptor it already holds.  From then"
	note "on every open, pipe, socket, dup and close updates the region: a few"
	note "stores under a spinlock and a sequence counter, no system call."
	"$CAPCR" run -- "$PROG" "$WORK" </dev/null >"$OUT" 2>&1 &
	MON_PID=$!
	n=0
	while ! grep -q '^demo_counter: pid=' "$OUT"; do
		kill -0 "$MON_PID" 2>/dev/null || { cat "$OUT" >&2; fatal "capcr run exited"; }
		n=$((n + 1))
		[ "$n" -le 50 ] || fatal "the target did not start"
		sleep 0.1
	done
	PID=$(sed -n 's/^demo_counter: pid=\([0-9]*\).*/\1/p' "$OUT")
	ppid=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$PID/stat")
	check "the target ($PID) is a child of capcr run ($MON_PID)" same "$ppid" "$MON_PID"
	wait_tick 1
	show_target
	note ""
	note "capcr caps copies the region out of the running target without"
	note "stopping it (a sequence lock: it never takes the target's lock),"
	note "follows each entry's badge_ptr into the target's private cap map for"
	note "the badge and provenance, and reconciles the result with the kernel's"
	note "descriptor table (/proc/PID/fd, fdinfo), which stays the truth:"
	note "  FD      the slot (kcap);  KIND  what the object is"
	note "  BADGE   the runtime's 64-bit name for the kernel object: a new object"
	note "          gets a new badge, a dup or a fork keeps it"
	note "  REP     the runtime reported it in the region;  KER  the kernel has it"
	note "  ORIGIN, PROVENANCE  how it came to be (path, address, ...), which only"
	note "          the target knows; [brackets]: the kernel's name, when it differs"
	note "Descriptors held before the runtime attached (0-2, and any the parent"
	note "leaked) are entered as inherited."
	caps
	log=$(fd log)
	check "fd 0-2 are inherited and reported" \
		row_is 0 chardev yes yes inherited
	check "the log (fd $log) is a file opened by path" \
		row_is "$log" file yes yes open
	check "the log's provenance is its path" contains "$log" counter.log
}

step_pipe_socket() {
	say ""
	say "== Step 2: a pipe and a listening socket appear =="
	wait_tick 3
	show_target
	caps
	pr=$(fd pipe_r)
	pw=$(fd pipe_w)
	ls=$(fd listen)
	PIPE_R_BADGE=$(field "$pr" 3)
	note "Both pipe ends are reported with origin pipe, each with its own badge"
	note "(--json also shows each naming the other as peer_badge); the socket"
	note "carries the address it was bound to, which the kernel does not name."
	check "pipe read end fd $pr" row_is "$pr" pipe yes yes pipe
	check "pipe write end fd $pw" row_is "$pw" pipe yes yes pipe
	check "the two pipe ends have their own badges" \
		differ "$PIPE_R_BADGE" "$(field "$pw" 3)"
	check "listening socket fd $ls" row_is "$ls" socket yes yes socket
	check "the socket's provenance is its bound address" \
		contains "$ls" "unix:$WORK/demo.sock"
}

step_dup_raw() {
	say ""
	say "== Step 3: a dup, and a descriptor made behind the runtime's back =="
	wait_tick 5
	show_target
	caps
	log=$(fd log)
	dup=$(fd dup)
	raw=$(fd raw)
	note "fd $dup is a dup of the log: same open file, so the same badge."
	note "fd $raw was opened by a raw openat system call, which no wrapper saw:"
	note "the kernel has it (KER yes), the region does not (REP no, no badge)."
	note "A checkpoint still takes it, from the kernel's side."
	check "the dup (fd $dup) has origin dup" row_is "$dup" file yes yes dup
	check "the dup shares the log's badge" \
		same "$(field "$dup" 3)" "$(field "$log" 3)"
	check "the raw descriptor (fd $raw) is the kernel's only" \
		row_is "$raw" file no yes -
	check "the raw descriptor has no badge" is "$raw" 3 -
}

step_close_reuse() {
	say ""
	say "== Step 4: closes, and a slot reused for a new object =="
	wait_tick 7
	show_target
	caps
	pr=$(fd pipe_r)
	dup=$(fd dup)
	udp=$(fd udp)
	note "The closed pipe end and the dup left the region before the kernel"
	note "closed them.  Descriptor numbers are reused at once; badges are not:"
	note "the UDP socket in fd $udp is a new object with a new badge."
	if [ "$udp" = "$pr" ]; then
		check "fd $pr now holds the UDP socket, with a new badge" \
			differ "$(field "$udp" 3)" "$PIPE_R_BADGE"
	else
		check "the closed pipe end (fd $pr) is gone" no_row "$pr"
	fi
	[ "$udp" = "$dup" ] || check "the closed dup (fd $dup) is gone" no_row "$dup"
	check "the UDP socket (fd $udp) is reported" \
		row_is "$udp" socket yes yes socket
}

step_checkpoint() {
	say ""
	say "== Step 5: checkpoint the target, kill it, restore it =="
	wait_tick 8
	show_target
	log=$(fd log)
	LOG_BADGE=$(field "$log" 3)
	note "\$ capcr dump -t $PID -D \$WORK/img"
	note "capcr seizes the target with ptrace (no signal), reads its registers,"
	note "asks it for its handlers and timers by system calls run inside it,"
	note "saves its touched pages, copies every descriptor with pidfd_getfd and"
	note "reads its capability-space region; then it kills it."
	mkdir "$WORK/img"
	"$CAPCR" -v dump -t "$PID" -D "$WORK/img" 2>&1 | sed 's/^/   | /'
	status=0
	wait "$MON_PID" || status=$?
	check "capcr run saw its target killed after the dump" same "$status" 137
	check "the target is gone" eval "! kill -0 $PID 2>/dev/null"
	note "\$ capcr show -D \$WORK/img   (excerpt)"
	"$CAPCR" show -D "$WORK/img" | grep -v '^    [0-9a-f]\{12\}-' | sed 's/^/   | /'
	note "\$ capcr restore -D \$WORK/img"
	note "The process comes back with its PID (clone3 set_tid), its descriptors,"
	note "its memory and registers, from the image alone; capcr restore stays its"
	note "parent and serves its PD channel as capcr run did."
	"$CAPCR" -v restore -D "$WORK/img" 2>"$WORK/restore.err" &
	MON_PID=$!
	n=0
	until kill -0 "$PID" 2>/dev/null; do # until the restore made it
		if ! kill -0 "$MON_PID" 2>/dev/null || [ "$n" -ge 50 ]; then
			cat "$WORK/restore.err" >&2
			fatal "capcr restore did not bring the target back"
		fi
		n=$((n + 1))
		sleep 0.1
	done
	wait_tick 10
	sed 's/^/   | /' "$WORK/restore.err"
	show_target
	check "the target runs again with PID $PID" kill -0 "$PID"
	caps
	check "the log kept its badge ($LOG_BADGE) across the restore" \
		is "$log" 3 "$LOG_BADGE"
	check "the log is still reported by the region" \
		row_is "$log" file yes yes open
}

step_stop() {
	say ""
	say "== Step 6: stop the target =="
	note "\$ kill -TERM $PID"
	kill -TERM "$PID"
	status=0
	wait "$MON_PID" || status=$?
	MON_PID=
	show_target
	note "capcr restore exited with status $status (128 + SIGTERM: the target's fate)"
	check "capcr restore passed on the target's death by SIGTERM" same "$status" 143
	check "the target is gone" eval "! kill -0 $PID 2>/dev/null"
	PID=
}

step_pipeline() {
	say ""
	say "== Step 7: a process tree: a shell pipeline, checkpointed mid-stream =="
	fifo=$WORK/delay.fifo
	mkfifo "$fifo"
	script='i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); read -t 0.01 <> '"$fifo"'; done | tr a-z A-Z | md5sum'
	note "\$ bash -c 'producer | tr a-z A-Z | md5sum' &   (200 lines, 10 ms apart)"
	bash -c "$script" >"$WORK/pipe.out" 2>&1 </dev/null &
	PID=$!
	sleep 0.8
	note "\$ capcr dump -t $PID -D \$WORK/tree   (bash, its subshell, tr, md5sum)"
	mkdir "$WORK/tree"
	"$CAPCR" -v dump -t "$PID" -D "$WORK/tree" 2>&1 | sed 's/^/   | /'
	wait "$PID" 2>/dev/null || true
	"$CAPCR" show -D "$WORK/tree" | sed -n '/^process tree/,/^process [0-9]/p' |
		grep -v '^process [0-9]' | sed 's/^/   | /'
	note "\$ capcr restore -D \$WORK/tree"
	status=0
	"$CAPCR" -v restore -D "$WORK/tree" 2>&1 | sed 's/^/   | /' || status=$?
	PID=
	want=$(bash -c "$(echo "$script" | sed 's/; read -t 0.01 <> [^;]*//')" </dev/null)
	note "restored pipeline printed:   $(cat "$WORK/pipe.out")"
	note "an uninterrupted run prints: $want"
	check "the restored pipeline ends with the same checksum" \
		same "$(cat "$WORK/pipe.out")" "$want"
}

STEPS="step_start step_pipe_socket step_dup_raw step_close_reuse step_checkpoint step_stop step_pipeline"
say "capcr demo: a program's capability space, live, across a checkpoint"
for step in $STEPS; do
	"$step"
done
say ""
if [ "$FAILED" -ne 0 ]; then
	say "demo: FAILED ($FAILED checks)"
	exit 1
fi
say "demo: OK, every snapshot matched what the program did, before and after its restore"
