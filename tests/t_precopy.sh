#!/bin/bash
# SPDX-License-Identifier: MIT
# dump -R with the live pre-copy (src/dump/precopy.c): memory copied while
# the process runs, then only what it wrote since, frozen.
#
#  1. cr_writer (two threads writing their memory all the time, one word
#     per page, each checking the word holds what it wrote one round
#     before; a ring of small areas mapped and unmapped all the time):
#     after dump -R the process goes on and passes its own checks; the
#     dump left nothing in it (no tracer, no userfaultfd descriptor, no
#     area still registered for write protection).
#  2. The same, killed after dump -R and restored from the image: every
#     page is as at the freeze (its checks pass), with the same PID.
#  3. cr_memory (every kind of area) through dump -R, kill, restore.
#  4. --no-pre-copy: nothing copied while running, the image restores.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_writer cr_memory

# left_clean WHAT PID: nothing of the dump stays in the running process.
left_clean() {
	local what=$1 pid=$2 tracer uffd uw
	tracer=$(awk '/^TracerPid:/ { print $2 }' "/proc/$pid/status")
	check "$what: not traced after dump -R (TracerPid $tracer)" \
		[ "$tracer" = 0 ]
	uffd=$(ls -l "/proc/$pid/fd" 2>/dev/null | grep -c userfaultfd)
	check "$what: no userfaultfd descriptor left ($uffd)" [ "$uffd" = 0 ]
	uw=$(grep -c '^VmFlags:.* uw' "/proc/$pid/smaps")
	check "$what: no area still write-protected for the dump ($uw)" \
		[ "$uw" = 0 ]
}

# dump_R TAG PID WHAT [OPTS...]: dump -R -v, must succeed.
dump_R() {
	local tag=$1 pid=$2 what=$3
	shift 3
	cr_dump "$tag" "$pid" -R -v "$@"
	if [ "$DRC" -ne 0 ]; then
		not_ok "$what: capcr dump -R exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		return 1
	fi
	ok "$what: capcr dump -R exits 0"
	grep '^capcr: dumped' "$T/$tag.dump.err" | sed 's/^/      /'
}

# live TAG PROG [ARGS...]: dump -R, then the original goes on and passes.
live() {
	local tag=$1 prog=$2 what
	shift 2
	what="$prog after dump -R"
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/$prog" "$@"
	cr_ready "$tag" "$what" || return 1
	if dump_R "$tag" "$PID" "$what"; then
		left_clean "$what" "$PID"
	fi
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "$what (the original)"
}

# cycle_R TAG PROG [DUMP OPTS...] -- [ARGS...]: dump -R, kill, restore.
cycle_R() {
	local tag=$1 prog=$2 pid what opts=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	what="$prog, dump -R ${opts[*]}, restored"
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/$prog" "$@"
	cr_ready "$tag" "$what" || return 1
	pid=$PID
	if ! dump_R "$tag" "$pid" "$what" "${opts[@]}"; then
		touch "$T/$tag.go"
		cr_reap "$SPID"
		return 1
	fi
	kill -KILL "$pid"
	cr_reap "$SPID"
	if ! cr_restore "$tag"; then
		not_ok "$what: capcr restore starts the process (status $RC)"
		sed 's/^/      /' "$T/$tag.rst.err"
		return 1
	fi
	check "$what: the same PID ($NPID, was $pid)" [ "$NPID" = "$pid" ]
	touch "$T/$tag.go"
	cr_reap "$RPID"
	cr_end "$tag" "$what"
}

echo "# 1. a process writing all the time goes on after dump -R"
live w.live cr_writer 32

echo "# 2. and comes back from the image as it was at the freeze"
cycle_R w.cycle cr_writer -- 32
grep -q 'MiB copied while running' "$T/w.cycle.dump.err" &&
	! grep -q ' 0\.0 MiB copied while running' "$T/w.cycle.dump.err"
check "cr_writer: memory was copied while it ran" [ $? -eq 0 ]

echo "# 3. every kind of area through the pre-copy"
cycle_R m.cycle cr_memory --

echo "# 4. --no-pre-copy"
cycle_R w.plain cr_writer --no-pre-copy -- 32
check "--no-pre-copy: nothing copied while running" \
	grep -q ' 0\.0 MiB copied while running' "$T/w.plain.dump.err"

finish
