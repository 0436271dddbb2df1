#!/bin/bash
# SPDX-License-Identifier: MIT
# A fixed slice of the fault-injection sweep (make faults,
# tests/faults/sweep.sh): system calls of capcr dump, dump -R and restore
# failed with a realistic errno, capcr killed, the target killed while
# capcr is held at a ptrace call, a nearly full image file system.  Each
# point must end in bounded time without a crash, either succeed or fail
# naming its cause, and leave the target running untraced with its memory
# intact (it checks itself), or after a restore, nothing behind and the
# same restore working.  Which call N is failed is chosen from a clean
# run's counts (the first call after libc's start, or one at a fixed
# fraction of them), so the slice is the same for the same build.
. "$(dirname "$0")/lib.sh"

for p in crf_target crr_reaper; do
	[ -x "$TPROGS/$p" ] || { not_ok "$TPROGS/$p missing (make all)"; finish; }
done
if ! command -v strace >/dev/null || [ "$(id -u)" != 0 ]; then
	# Without strace, or not root, there is nothing to inject with.
	echo "ok   - fault injection skipped: needs strace and root"
	finish
fi
unset CAPCR_FAIL_AT CAPCR_PD LD_PRELOAD
W=$T/faults
mkdir -p "$W"
. "$(dirname "$0")/faults/lib_faults.sh"
FLT_TMO=20
trap 'flt_cleanup; _cleanup' EXIT

# nth KIND OP SYSCALL FRACTION: the call of SYSCALL at FRACTION (0..1) of
# its range in the clean run (0: the first after libc's start).
nth() {
	awk -v s="$3" -v f="$4" '$1 == s { print $2 + int(($3 - $2) * f); found = 1 }
		END { if (!found) print 0 }' "$W/calls-$1-$2"
}

# pt KIND OP FAULT SYSCALL FRACTION [ERRNO]
pt() {
	local kind=$1 op=$2 fault=$3 sc=$4 fr=$5 er=${6:-}
	local n
	if [ "$fault" = disk ]; then
		n=$fr
	else
		n=$(nth "$kind" "$op" "$sc" "$fr")
	fi
	if [ "$n" = 0 ]; then
		not_ok "$kind $op: no call of $sc in the clean run"
		return
	fi
	[ -n "$er" ] || er=$(flt_errno_for "$sc" "$n")
	[ "$fault" = disk ] && er=ENOSPC
	[ "$fault" = kill ] || [ "$fault" = tkill ] && er=SIGKILL
	flt_point "$kind" "$op" "$fault" "$sc" "$n" "$er"
	case $OUTCOME in
	ok-*) ok "$kind $op, $fault $sc #$n $er: $OUTCOME" ;;
	*)
		not_ok "$kind $op, $fault $sc #$n $er: $OUTCOME"
		echo "      $WHY"
		;;
	esac
}

for kd in T:dumpR C:dumpR T:restore; do
	check "clean ${kd/:/ } under strace (counting calls)" flt_count "${kd%:*}" "${kd#*:}"
done
[ -n "${TGT:-}" ] && tgt_stop

# Dump -R of the threads: the target must go on untouched.
pt T dumpR err openat 0 EMFILE
pt T dumpR err read 0 EIO
pt T dumpR err pread64 0 EIO
pt T dumpR err ptrace 0 ESRCH
pt T dumpR err write 0.5 ENOSPC
pt T dumpR err getdents64 0 EIO
pt T dumpR err ioctl 0.5 EIO
pt T dumpR kill ptrace 0.5
pt T dumpR kill openat 0.7
pt T dumpR disk tmpfs 8
pt T dumpR disk tmpfs 48
# The tree: pipes and sockets.
pt C dumpR err pidfd_getfd 0.5 EMFILE
pt C dumpR err kcmp 0.5 ESRCH
pt C dumpR err tee 0 ENOMEM
pt C dumpR kill write 0.5
pt C dumpR tkill ptrace 0.3
# Restore of the threads.
pt T restore err openat 0.5 EMFILE
# a read of /proc in the middle, a ptrace call that breaks off in the
# middle of an injected call, the last descriptor moved above the image's
# numbers (the status pipe: without it the restore waited for ever)
pt T restore err read 0.5 EIO
pt T restore err ptrace 0.5 ESRCH
pt T restore err fcntl 1 EMFILE

finish
