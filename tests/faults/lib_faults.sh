# SPDX-License-Identifier: MIT
# Fault injection into capcr dump and capcr restore: one fault point at a
# time, judged.  Sourced by tests/faults/sweep.sh (make faults) and
# tests/t_faults.sh (a fixed slice in make test).  Never run.
#
# The caller sets CAPCR (the CLI under test), TPROGS (build/tests) and W (a
# scratch directory of its own, removed by the caller), and calls
# flt_cleanup when it ends, however it ends.
#
# A fault point is one run of one operation on one target:
#
#   targets   T  crf_target -t: one process, five threads
#             C  crf_target -c: a tree of three processes (the root with a
#                second thread), pipes, a socketpair, a listener and its
#                connection, datagrams queued
#   ops       dump, dumpR (dump --leave-running), restore
#   faults    err   SYSCALL's Nth call fails with ERRNO
#                   (strace -e inject=SYSCALL:error=ERRNO:when=N)
#             kill  capcr gets SIGKILL at its Nth call of SYSCALL
#                   (strace -e inject=SYSCALL:signal=SIGKILL:when=N)
#             tkill the target (dump: the root, or in C child 1; restore:
#                   every process of the image that exists) is killed while
#                   capcr is held at the entry of its Nth ptrace call
#                   (strace -e inject=ptrace:when=N:delay_enter=...)
#             disk  the image directory is a tmpfs of N KiB, mounted in a
#                   private mount namespace (unshare -m)
#
# flt_point sets OUTCOME to one of
#   ok-success ok-failed-with-cause hang crash harmed-target leftover
#   failure-without-cause bad-image
# and WHY to what the judgement rests on (capcr's message, or what is wrong).

FLT_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# LeakSanitizer stops the world with ptrace, which it cannot do under
# strace: a sanitized capcr checks leaks in the other tests, not here.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
FLT_WRAP=()
FLT_TMO=${FLT_TMO:-30}       # seconds a capcr run may take
FLT_DELAY_US=${FLT_DELAY_US:-150000} # tkill: how long capcr is held

# strerror texts, and the other ways of naming a cause precisely.
declare -A FLT_TEXT=(
	[EIO]="Input/output error" [ENOMEM]="Cannot allocate memory"
	[EINTR]="Interrupted system call"
	[EAGAIN]="Resource temporarily unavailable"
	[ENOSPC]="No space left on device" [EMFILE]="Too many open files"
	[ENFILE]="Too many open files in system"
	[ENOENT]="No such file or directory" [EACCES]="Permission denied"
	[ESRCH]="No such process" [ECHILD]="No child processes"
	[ENOBUFS]="No buffer space available" [EPERM]="Operation not permitted"
	[EBADF]="Bad file descriptor" [EINVAL]="Invalid argument"
)
declare -A FLT_ALSO=(
	[ENOMEM]="out of memory" [ENOSPC]="disk is full|full"
	[ESRCH]="exited|was killed|died|is gone|vanished"
	[SIGKILL]="."
)

# The errnos a call of each family can realistically fail with.  The Nth
# call gets the (N mod count)th of its list, so a sweep over every N tries
# each of them.  Calls that cannot fail (getpid, exit_group, rt_sigreturn,
# rt_sigprocmask, ...) are left out: see flt_skip.
flt_errnos() {
	case $1 in
	read | pread64 | readv | preadv | preadv2) echo "EIO EINTR" ;;
	write | pwrite64 | writev | pwritev | fsync | fdatasync | ftruncate | \
		fallocate | sync_file_range) echo "ENOSPC EIO" ;;
	open | openat | openat2 | creat) echo "EMFILE ENOENT EACCES" ;;
	mmap | mprotect | munmap | mremap | madvise) echo "ENOMEM" ;;
	ptrace) echo "ESRCH EIO" ;;
	wait4 | waitid) echo "EINTR ECHILD" ;;
	futex) echo "EINTR EAGAIN" ;;
	getdents64) echo "EIO ENOENT" ;;
	readlink | readlinkat) echo "ENOENT EACCES ENOMEM" ;;
	newfstatat | fstat | stat | lstat | statx | statfs | fstatfs) echo "EIO ENOENT ENOMEM" ;;
	close) echo "EIO EINTR" ;;
	ioctl) echo "EIO ENOMEM EINTR" ;;
	socket | socketpair) echo "EMFILE ENOBUFS" ;;
	sendto | sendmsg | recvfrom | recvmsg) echo "EAGAIN EINTR ENOBUFS" ;;
	getsockopt | setsockopt | getsockname | getpeername | bind | connect | \
		listen | accept | accept4) echo "ENOBUFS ENOMEM" ;;
	pidfd_open | pidfd_getfd) echo "ESRCH EMFILE" ;;
	kcmp | prlimit64 | kill | tgkill | tkill | pidfd_send_signal) echo "ESRCH EPERM" ;;
	renameat | renameat2 | rename | unlinkat | unlink | mkdirat | linkat) echo "EIO ENOSPC EACCES" ;;
	clone | clone3 | fork | vfork) echo "EAGAIN ENOMEM" ;;
	poll | ppoll | select | pselect6 | epoll_wait | epoll_pwait) echo "EINTR ENOMEM" ;;
	fcntl | dup | dup2 | dup3 | pipe | pipe2 | eventfd2 | memfd_create | \
		timerfd_create | signalfd4 | inotify_init1 | epoll_create1) echo "EMFILE ENFILE" ;;
	tee | splice | vmsplice | copy_file_range | sendfile) echo "EAGAIN EINTR ENOMEM" ;;
	lseek) echo "EIO" ;;
	*) echo "EIO ENOMEM" ;;
	esac
}

# futex: glibc's own (locks, joins); it aborts, by design, on an error a
# futex call cannot return (EAGAIN from FUTEX_WAKE...).
# (brk never returns an errno: it fails by returning the old break, which
# strace cannot inject; an injected -ENOMEM looks to malloc like success.)
flt_skip() { # SYSCALL: calls that cannot fail, or that end the process
	case $1 in
	getpid | gettid | getppid | getuid | geteuid | getgid | getegid | \
		exit | exit_group | rt_sigreturn | execve | rt_sigprocmask | \
		rt_sigaction | sched_yield | uname | set_tid_address | \
		arch_prctl | set_robust_list | rseq | getrandom | umask | \
		sigaltstack | restart_syscall | clock_gettime | gettimeofday | \
		futex | brk | \
		sched_getaffinity | getpgid | getsid | getcwd) return 0 ;;
	esac
	return 1
}

flt_errno_for() { # SYSCALL N
	local l
	read -ra l <<<"$(flt_errnos "$1")"
	echo "${l[$(($2 % ${#l[@]}))]}"
}

# ---- processes ---------------------------------------------------------

# No process is forked for these (the machine may be loaded): they set
# FST / FTR instead of printing.
# (mapfile reads a /proc file in one read(); the read builtin would read
# it in pieces, each from a newer version of the file: torn lines.)
_flt_st() { # PID: FST = its state letter
	local s l=()
	FST=""
	mapfile -t l 2>/dev/null <"/proc/$1/stat" || return 1
	s=${l[0]:-}
	[ -n "$s" ] || return 1
	s=${s##*) }
	FST=${s%% *}
}
_flt_tr() { # FILE: FTR = the TracerPid of a status file
	local l=() x
	FTR=""
	mapfile -t l 2>/dev/null <"$1" || return 1
	for x in "${l[@]}"; do
		case $x in TracerPid:*)
			x=${x#TracerPid:}
			FTR=${x//[[:space:]]/}
			return 0 ;;
		esac
	done
	return 1
}
_flt_stat() { # PID FIELD (after the command name)
	local s f
	read -r s 2>/dev/null <"/proc/$1/stat" || return 1
	s=${s##*) }
	read -ra f <<<"$s"
	echo "${f[$(($2 - 1))]}"
}
_flt_tracer() { _flt_tr "$1" && echo "$FTR"; }
flt_alive() {
	_flt_st "$1" || return 1
	[ "$FST" != Z ] && [ "$FST" != X ]
}
flt_gone() { [ ! -e "/proc/$1" ]; }

# Every PID this library made or restored, for flt_cleanup.
FLT_ALL=()
flt_killall() { # PID...: kill, then wait (up to 5 s) until gone
	local p i
	for p in "$@"; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	for p in "$@"; do
		wait "$p" 2>/dev/null
		for ((i = 0; i < 500; i++)); do
			flt_alive "$p" || break
			sleep 0.01
		done
		wait "$p" 2>/dev/null
	done
}
flt_cleanup() {
	local p live=()
	for p in "${FLT_ALL[@]}"; do
		# Only ours: a crf_target (restored ones too), or a session
		# flt_run started (capcr, strace).
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		crf_target | capcr | strace | crr_reaper | timeout) live+=("$p") ;;
		esac
	done
	[ ${#live[@]} -gt 0 ] && flt_killall "${live[@]}"
	return 0
}

_flt_close_rest() { # in a subshell: close every descriptor above 2
	local f n
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null
	done
	return 0
}

# tgt_start T|C [DIR]: a fresh target in DIR ($W/tgt-KIND); sets TGT (root PID) and
# TPIDS (all its processes).  Returns non-zero if it did not come up.
tgt_start() {
	local kind=$1 d=${2:-$W/tgt-$1} i line
	mkdir -p "$d"
	rm -f "$d/out"
	# Only 0, 1 and 2: a descriptor inherited from whoever runs the
	# sweep would be one pointing outside the image.
	if [ "$kind" = T ]; then
		(_flt_close_rest; cd "$d" && exec "$TPROGS/crf_target" -t) >"$d/out" 2>&1 </dev/null &
	else
		(_flt_close_rest; cd "$d" && exec "$TPROGS/crf_target" -c "$d") >"$d/out" 2>&1 </dev/null &
	fi
	TGT=$!
	FLT_ALL+=("$TGT")
	for ((i = 0; i < 500; i++)); do
		line=$(grep -m1 '^ready pid=' "$d/out" 2>/dev/null) && break
		sleep 0.01
	done
	[ -n "$line" ] || { echo "crf_target -$kind did not start" >&2; return 1; }
	TPIDS=("$TGT")
	case $line in *kids=*)
		local k=${line##*kids=}
		TPIDS+=("${k%%,*}" "${k##*,}")
		FLT_ALL+=("${k%%,*}" "${k##*,}") ;;
	esac
	TGT_KIND=$kind
	TGT_DIR=$d
}

# tgt_free PID...: each alive, not traced, not stopped.  Sets WHY if not.
tgt_free() {
	local p st tr
	for p in "$@"; do
		if ! flt_alive "$p"; then
			WHY="process $p is gone"
			return 1
		fi
		_flt_st "$p"
		st=$FST
		_flt_tr "/proc/$p/status"
		tr=$FTR
		if [ "$tr" != 0 ] || [ "$st" = t ] || [ "$st" = T ]; then
			WHY="process $p left state $st, TracerPid $tr"
			return 1
		fi
		local t
		for t in /proc/"$p"/task/*; do
			_flt_tr "$t/status" || continue
			tr=$FTR
			[ "$tr" = 0 ] || { WHY="thread ${t##*/} of $p is still traced by $tr"; return 1; }
			_flt_st "$p/task/${t##*/}"
			st=$FST
			case $st in t | T) WHY="thread ${t##*/} of $p left in state $st"; return 1 ;; esac
		done
	done
}

# tgt_check ROOT DIR: SIGUSR2 to the root; its next check must PASS.
tgt_check() {
	local root=$1 out=$2/out n0 i l lines
	mapfile -t lines 2>/dev/null <"$out"
	n0=${#lines[@]}
	kill -USR2 "$root" 2>/dev/null || { WHY="cannot signal $root"; return 1; }
	for ((i = 0; i < 800; i++)); do
		mapfile -t lines 2>/dev/null <"$out"
		for ((l = n0; l < ${#lines[@]}; l++)); do
			case ${lines[$l]} in
			"PASS check"*) return 0 ;;
			*check*) WHY="the target's self-check: ${lines[$l]}"; return 1 ;;
			esac
		done
		sleep 0.01
	done
	WHY="the target did not answer its self-check in 8 s"
	return 1
}

tgt_stop() { # kill the current target (or what is left of it)
	flt_killall "${TPIDS[@]}"
	TGT=""
	TPIDS=()
}

# ---- one capcr run under strace ------------------------------------------

# flt_run LOG STRACEOPTS... -- CAPCR_ARGS...: runs capcr (in a session of
# its own, through crr_reaper for restore) under strace; RC is the status
# (124 after FLT_TMO s, when the whole session is killed), LOG.err its
# messages, LOG.st the strace log.  FLT_BG=1: return at once with FLT_PID
# set (flt_wait does the rest).
flt_run() {
	local log=$1 sopt=() a
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		sopt+=("$1")
		shift
	done
	shift
	local pre=()
	[ "$1" = restore ] && pre=("$TPROGS/crr_reaper")
	# dump: -f, for the worker threads; restore: not, since the processes
	# it makes must be its tracees, not strace's: so it takes them over on
	# its main thread (CAPCR_RESTORE_THREADS=1), where strace sees and
	# fails its calls (its pool, src/restore/pool.c, is swept by
	# tests/t_killed.sh instead).
	local f=() env=()
	[ "$1" = restore ] || f=(-f)
	[ "$1" = restore ] && env=(env CAPCR_RESTORE_THREADS=1)
	setsid ${FLT_WRAP[@]+"${FLT_WRAP[@]}"} ${pre[@]+"${pre[@]}"} ${env[@]+"${env[@]}"} strace "${f[@]}" -qq -s 400 -o "$log.st" ${sopt[@]+"${sopt[@]}"} \
		"$CAPCR" "$@" >"$log.err" 2>&1 </dev/null &
	FLT_PID=$!
	FLT_ALL+=("$FLT_PID")
	FLT_T0=$SECONDS
	[ "${FLT_BG:-0}" = 1 ] && return 0
	flt_wait
}

flt_wait() { # wait for FLT_PID, FLT_TMO s at most; sets RC
	while flt_alive "$FLT_PID"; do
		if [ $((SECONDS - FLT_T0)) -ge "$FLT_TMO" ]; then
			kill -KILL -- "-$FLT_PID" 2>/dev/null
			wait "$FLT_PID" 2>/dev/null
			RC=124
			return
		fi
		sleep 0.01
	done
	wait "$FLT_PID" 2>/dev/null
	RC=$?
}

# What capcr said: its error lines, one line.  A message whose own write
# to stderr failed (the injected write error hit it too: strace counts
# calls per thread) is taken from the strace log.
flt_msg() {
	{
		grep -E 'error|warning|crr_reaper' "$1.err" 2>/dev/null
		sed -n 's/^\([0-9]* *\)\{0,1\}write(2, "\(capcr: error:[^"]*\)\\n".*INJECTED.*/\2 [its write failed]/p' \
			"$1.st" 2>/dev/null
	} | head -n 3 | tr '\n' ' ' | cut -c1-400
}

# flt_crashed LOG [EXPECTED_SIGNAL]: capcr died of a signal (other than
# the one injected), or a sanitizer spoke.
flt_crashed() {
	local l
	if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$1.err"; then
		WHY="sanitizer: $(grep -m1 -E 'Sanitizer|runtime error' "$1.err")"
		return 0
	fi
	l=$(grep -m1 -E '^([0-9]+ +)?\+\+\+ killed by SIG' "$1.st" 2>/dev/null) || return 1
	case $l in *"killed by ${2:-NONE}"*) return 1 ;; esac
	WHY="capcr ${l#*+++ }"
	return 0
}

# flt_names_cause LOG ERRNO: capcr's message names the cause.
flt_names_cause() {
	local m re
	m=$(flt_msg "$1" | grep -E 'error')
	[ -n "$m" ] || return 1
	re=${FLT_TEXT[$2]:-$2}
	[ -n "${FLT_ALSO[$2]:-}" ] && re="$re|${FLT_ALSO[$2]}"
	# What capcr must never say while the process runs.
	if grep -qiE 'unknown error|no process with PID' <<<"$m"; then
		return 1
	fi
	grep -qiE -- "$re" <<<"$m"
}

# ---- the image of a target, for restore --------------------------------

# flt_image KIND: a good image of a fresh target of KIND in $W/img-KIND
# (kept across points; made again when its PIDs are taken).  Sets IMG,
# IPIDS (the image's PIDs) and IDIR (the target's directory).
flt_image() {
	local kind=$1 p
	IMG=$W/img-$kind
	if [ -f "$IMG/inventory.img" ] && [ -f "$IMG/pids" ]; then
		read -ra IPIDS <"$IMG/pids"
		IDIR=$W/itgt-$kind
		for p in "${IPIDS[@]}"; do
			flt_gone "$p" || { rm -rf "$IMG"; break; }
		done
		[ -d "$IMG" ] && return 0
	fi
	mkdir -p "$IMG"
	# A directory of its own: its output file is reopened at restore,
	# at the position it had.
	rm -rf "$W/itgt-$kind"
	tgt_start "$kind" "$W/itgt-$kind" || return 1
	"$CAPCR" dump -t "$TGT" -D "$IMG" >"$W/img-$kind.log" 2>&1 || {
		echo "cannot make the image of -$kind: $(cat "$W/img-$kind.log")" >&2
		tgt_stop
		return 1
	}
	IPIDS=("${TPIDS[@]}")
	tgt_stop
	echo "${IPIDS[*]}" >"$IMG/pids"
	# Its output as it was: each restore writes on from the position the
	# image holds, so the file is put back first (flt_out_reset).
	cp "$W/itgt-$kind/out" "$IMG/out.orig"
	IDIR=$W/itgt-$kind
	# What restore may touch outside the image: the target's directory.
	(cd "$IDIR" && ls -A | grep -v '^out$' | sort) >"$IMG/files"
}

flt_out_reset() {
	[ -f "$IMG/out.orig" ] && cp "$IMG/out.orig" "$IDIR/out"
	return 0
}

# flt_restored_up: every process of the image runs, untraced.
flt_restored_up() {
	local p
	for p in "${IPIDS[@]}"; do
		flt_alive "$p" || return 1
		_flt_tr "/proc/$p/status" && [ "$FTR" = 0 ] || return 1
	done
}

# flt_restore_wait: after flt_run FLT_BG=1 of a restore: wait until it
# failed (RC set, UP=0) or its processes run (UP=1, RC unset yet).
flt_restore_wait() {
	UP=0
	while flt_alive "$FLT_PID"; do
		if [ -s "$W/pidfile" ] && flt_restored_up; then
			UP=1
			return
		fi
		if [ $((SECONDS - FLT_T0)) -ge "$FLT_TMO" ]; then
			flt_wait
			return
		fi
		sleep 0.01
	done
	flt_wait
}

# flt_restore_end: the restored tree passes its check, then is stopped
# (SIGTERM to the root; capcr restore must then end). Sets WHY on failure.
flt_restore_end() {
	local good=0
	tgt_check "${IPIDS[0]}" "$IDIR" && good=1
	kill -TERM "${IPIDS[0]}" 2>/dev/null
	local t0=$SECONDS
	while flt_alive "$FLT_PID" && [ $((SECONDS - t0)) -lt 10 ]; do
		sleep 0.01
	done
	flt_alive "$FLT_PID" && kill -KILL -- "-$FLT_PID" 2>/dev/null
	wait "$FLT_PID" 2>/dev/null
	flt_killall "${IPIDS[@]}"
	[ $good = 1 ]
}

# flt_restore_clean: the plain restore of IMG works (after a failed one).
flt_restore_clean() {
	rm -f "$W/pidfile"
	flt_out_reset
	FLT_BG=1 flt_run "$W/clean" -e trace=none -- restore -D "$IMG" --pidfile "$W/pidfile"
	flt_restore_wait
	if [ $UP = 1 ]; then
		flt_restore_end && return 0
		return 1
	fi
	WHY="the restore without the fault failed: $(flt_msg "$W/clean")"
	return 1
}

# flt_restore_leftovers LOG: nothing of a failed restore remains.
flt_restore_leftovers() {
	local p i
	for p in "${IPIDS[@]}"; do
		for ((i = 0; i < 200; i++)); do
			flt_gone "$p" && break
			sleep 0.01
		done
		if ! flt_gone "$p"; then
			WHY="PID $p of the image still exists ($(_flt_stat "$p" 1))"
			flt_killall "$p"
			return 0
		fi
	done
	if grep -q 'stray process' "$1.err"; then
		WHY=$(grep -m1 'stray process' "$1.err")
		return 0
	fi
	if [ "$(cd "$IDIR" && ls -A | grep -v '^out$' | sort)" != "$(cat "$IMG/files")" ]; then
		WHY="files left in the target's directory: $(cd "$IDIR" && ls -A | tr '\n' ' ')"
		return 0
	fi
	return 1
}

# flt_count KIND OP: a clean run under strace; writes $W/calls-KIND-OP
# ("SYSCALL MAXCALLS" per line: the most calls one thread made).
flt_count() {
	local kind=$1 op=$2
	local log=$W/count-$kind-$op opt=()
	[ "$op" = dumpR ] && opt=(-R)
	if [ "$op" = restore ]; then
		flt_image "$kind" || return 1
		rm -f "$W/pidfile"
		flt_out_reset
		FLT_BG=1 flt_run "$log" -- restore -D "$IMG" --pidfile "$W/pidfile"
		flt_restore_wait
		[ "$UP" = 1 ] && flt_restore_end
	else
		[ -n "${TGT:-}" ] && tgt_stop
		tgt_start "$kind" || return 1
		mkdir -p "$W/cimg" && rm -rf "${W:?}/cimg/"*
		flt_run "$log" -- dump "${opt[@]}" -t "$TGT" -D "$W/cimg"
		[ "$op" = dumpR ] || { TGT=""; TPIDS=(); }
		if [ "$RC" != 0 ]; then
			echo "sweep: clean $op of -$kind failed: $(flt_msg "$log")"
			return 1
		fi
		du -sk "$W/cimg" | awk '{print $1}' >"$W/size-$kind"
	fi
	# "SYSCALL FIRST LAST": the calls of the dynamic loader and libc's
	# start (up to the munmap after prlimit64(RLIMIT_STACK)) are not
	# capcr's: FIRST is the first call after them.
	awk '{
		tid = "main"; line = $0
		if (match(line, /^[0-9]+ +/)) { tid = substr(line, 1, RLENGTH); line = substr(line, RLENGTH + 1) }
		if (line ~ /^<\.\.\./ || line ~ /^\+\+\+/ || line ~ /^---/) next
		if (!match(line, /^[a-z_0-9]+\(/)) next
		sc = substr(line, 1, RLENGTH - 1)
		n[sc, tid]++
		if (n[sc, tid] > max[sc]) max[sc] = n[sc, tid]
		if (!started) {
			pre[sc]++
			if (line ~ /^prlimit64\(0, RLIMIT_STACK/) lim = 1
			else if (lim && sc == "munmap") started = 1
		}
	} END { for (s in max) if (max[s] > pre[s]) print s, pre[s] + 1, max[s] }' \
		"$log.st" | sort >"$W/calls-$kind-$op"
}

# ---- a fault point -------------------------------------------------------

# flt_strace_opts FAULT SYSCALL N ERRNO: sets SOPT.
flt_strace_opts() {
	case $1 in
	# (strace tampers only with the calls it traces)
	err) SOPT=(-e "trace=$2" -e "inject=$2:error=$4:when=$3") ;;
	kill) SOPT=(-e "trace=$2" -e "inject=$2:signal=SIGKILL:when=$3") ;;
	tkill) SOPT=(-e trace=ptrace -e "inject=ptrace:when=$3:delay_enter=$FLT_DELAY_US") ;;
	*) SOPT=(-e trace=none) ;;
	esac
}

# While capcr is held at its Nth ptrace call: kill the victims.
_flt_tkill_at() { # LOG N VICTIM...
	local log=$1 n=$2 i c
	shift 2
	for ((i = 0; i < FLT_TMO * 200; i++)); do
		c=$(grep -cE '^([0-9]+ +)?ptrace\(' "$log.st" 2>/dev/null)
		if [ "${c:-0}" -ge "$n" ]; then
			local v
			for v in "$@"; do
				case $(cat "/proc/$v/comm" 2>/dev/null) in
				crf_target | capcr) kill -KILL "$v" 2>/dev/null ;;
				esac
			done
			return 0
		fi
		flt_alive "$FLT_PID" || return 1
		sleep 0.005
	done
	return 1
}

# flt_point KIND OP FAULT SYSCALL N ERRNO
flt_point() {
	local kind=$1 op=$2 fault=$3 sc=$4 n=$5 er=$6
	local log=$W/pt
	OUTCOME="" WHY=""
	rm -f "$log".*
	flt_strace_opts "$fault" "$sc" "$n" "$er"
	[ "$fault" = kill ] && er=SIGKILL
	case $op in
	dump | dumpR) _flt_dump "$@" ;;
	restore) _flt_restore "$@" ;;
	esac
}

_flt_dump() {
	local kind=$1 op=$2 fault=$3 sc=$4 n=$5 er=$6
	local d=$W/dimg opt=() victim
	[ "$fault" = kill ] && er=SIGKILL
	[ "$op" = dumpR ] && opt=(-R)
	if [ -z "${TGT:-}" ] || [ "$TGT_KIND" != "$kind" ] ||
		! tgt_free "${TPIDS[@]}"; then
		[ -n "${TGT:-}" ] && tgt_stop
		tgt_start "$kind" || { OUTCOME=setup; WHY="target"; return; }
	fi
	rm -rf "$d"
	mkdir -p "$d"
	victim=$TGT
	[ "$kind" = C ] && victim=${TPIDS[1]}
	if [ "$fault" = disk ]; then
		# A tmpfs of N KiB over the image directory, in a mount
		# namespace of its own (tests/faults/in_tmpfs.sh).
		rm -rf "$d.copy"
		FLT_WRAP=(unshare -m --propagation private
			"$FLT_LIBDIR/in_tmpfs.sh" "$d" "$n" "$log.left" "$d.copy" --)
		flt_run "$log" "${SOPT[@]}" -- dump "${opt[@]}" -t "$TGT" -D "$d"
		FLT_WRAP=()
	elif [ "$fault" = tkill ]; then
		FLT_BG=1 flt_run "$log" "${SOPT[@]}" -- dump "${opt[@]}" -t "$TGT" -D "$d"
		_flt_tkill_at "$log" "$n" "$victim"
		flt_wait
	else
		flt_run "$log" "${SOPT[@]}" -- dump "${opt[@]}" -t "$TGT" -D "$d"
	fi
	_flt_judge_dump "$kind" "$op" "$fault" "$er" "$victim" "$d"
}

# The image of a dump that succeeded restores, and the tree passes its
# check.  Needs the dumped PIDs free (the dump killed them).
_flt_image_restores() { # DIR
	local keep=("${IPIDS[@]+"${IPIDS[@]}"}") kimg=${IMG:-} kdir=${IDIR:-}
	IPIDS=("${TPIDS[@]}")
	IMG=$1
	IDIR=$TGT_DIR
	local r=0
	flt_restore_clean || r=1
	IPIDS=("${keep[@]+"${keep[@]}"}")
	IMG=$kimg
	IDIR=$kdir
	return $r
}

_flt_judge_dump() {
	local kind=$1 op=$2 fault=$3 er=$4 victim=$5 d=$6 log=$W/pt
	local left img=$d
	if [ "$fault" = disk ]; then
		left=$(cat "$log.left" 2>/dev/null)
		img=$d.copy
	else
		left=$(ls -A "$d" 2>/dev/null)
	fi
	local msg
	msg=$(flt_msg "$log")
	if [ "$RC" = 124 ]; then
		OUTCOME=hang
		WHY="capcr dump did not end in ${FLT_TMO}s; $msg"
		tgt_stop
		return
	fi
	if flt_crashed "$log" "$([ "$fault" = kill ] && echo SIGKILL)"; then
		OUTCOME=crash
		tgt_stop
		return
	fi
	local others=()
	local p
	for p in "${TPIDS[@]}"; do
		[ "$fault" = tkill ] && [ "$p" = "$victim" ] && continue
		others+=("$p")
	done
	local killed=0
	[ "$fault" = kill ] && grep -qE '\+\+\+ killed by SIGKILL' "$log.st" && killed=1
	local committed=0
	[ -e "$img/inventory.img" ] && committed=1
	if [ "$killed" = 1 ]; then
		# capcr died: the processes go on as they were, unless the
		# image was committed and they were to be killed anyway.
		if [ "$op" = dump ] && [ $committed = 1 ]; then
			OUTCOME=ok-failed-with-cause
			WHY="capcr killed after the commit"
			tgt_stop
			return
		fi
		if ! tgt_free "${TPIDS[@]}" || ! tgt_check "$TGT" "$TGT_DIR"; then
			OUTCOME=harmed-target
			WHY="after capcr was killed: $WHY"
			tgt_stop
			return
		fi
		OUTCOME=ok-failed-with-cause
		WHY="capcr killed; target unharmed"
		return
	fi
	if [ "$RC" = 0 ]; then
		if [ $committed = 0 ]; then
			OUTCOME=bad-image
			WHY="dump succeeded without an inventory.img"
			tgt_stop
			return
		fi
		if [ "$op" = dumpR ]; then
			if ! tgt_free "${others[@]}" ||
				{ [ "$fault" != tkill ] && ! tgt_check "$TGT" "$TGT_DIR"; }; then
				OUTCOME=harmed-target
				WHY="after dump -R succeeded: $WHY"
				tgt_stop
				return
			fi
			[ "$fault" = tkill ] && tgt_stop
			OUTCOME=ok-success
			return
		fi
		for p in "${TPIDS[@]}"; do
			local i
			for ((i = 0; i < 300; i++)); do
				flt_gone "$p" && break
				wait "$p" 2>/dev/null
				sleep 0.01
			done
		done
		for p in "${TPIDS[@]}"; do
			if ! flt_gone "$p"; then
				OUTCOME=harmed-target
				WHY="dump succeeded but process $p still exists"
				tgt_stop
				return
			fi
		done
		# A victim killed before the freeze is in the image as the
		# zombie it was: its tree cannot pass its check once restored.
		if [ "$fault" != tkill ] && ! _flt_image_restores "$img"; then
			OUTCOME=bad-image
			WHY="dump succeeded, its image does not restore: $WHY"
			tgt_stop
			return
		fi
		TGT=""
		TPIDS=()
		OUTCOME=ok-success
		return
	fi
	# Failed.
	if [ "$fault" = tkill ]; then
		er=ESRCH
		grep -q 'error' "$log.err" && ! flt_names_cause "$log" ESRCH &&
			flt_names_cause "$log" EIO && er=EIO
	fi
	[ "$fault" = disk ] && er=ENOSPC
	# A committed image of processes one of which could not be ended
	# after it is kept, said so: the work is not thrown away (the others
	# were ended, as asked).
	if [ "$op" = dump ] && [ "$committed" = 1 ] &&
		grep -q 'the image is complete' "$log.err" &&
		flt_names_cause "$log" "$er"; then
		OUTCOME=ok-failed-with-cause
		WHY="image kept: $msg"
		tgt_stop
		return
	fi
	if ! tgt_free "${others[@]}"; then
		OUTCOME=harmed-target
		WHY="after a failed dump: $WHY; capcr said: $msg"
		tgt_stop
		return
	fi
	if [ "$fault" != tkill ] && ! tgt_check "$TGT" "$TGT_DIR"; then
		OUTCOME=harmed-target
		WHY="after a failed dump: $WHY; capcr said: $msg"
		tgt_stop
		return
	fi
	[ "$fault" = tkill ] && tgt_stop
	if [ -n "$left" ]; then
		OUTCOME=leftover
		WHY="left in the image directory: $(echo $left); capcr said: $msg"
		return
	fi
	if ! flt_names_cause "$log" "$er"; then
		OUTCOME=failure-without-cause
		WHY=$msg
		return
	fi
	OUTCOME=ok-failed-with-cause
	WHY=$msg
}

_flt_restore() {
	local kind=$1 op=$2 fault=$3 sc=$4 n=$5 er=$6 log=$W/pt
	[ "$fault" = kill ] && er=SIGKILL
	[ -n "${TGT:-}" ] && tgt_stop
	flt_image "$kind" || { OUTCOME=setup; WHY="no image"; return; }
	rm -f "$W/pidfile"
	flt_out_reset
	FLT_BG=1 flt_run "$log" "${SOPT[@]}" -- restore -D "$IMG" --pidfile "$W/pidfile"
	[ "$fault" = tkill ] && _flt_tkill_at "$log" "$n" "${IPIDS[@]}"
	flt_restore_wait
	local msg
	if [ "$UP" = 1 ]; then
		if flt_restore_end; then
			OUTCOME=ok-success
		else
			OUTCOME=harmed-target
			WHY="restored, but: $WHY"
		fi
		if flt_crashed "$log" "$([ "$fault" = kill ] && echo SIGKILL)"; then
			OUTCOME=crash
		fi
		return
	fi
	msg=$(flt_msg "$log")
	if [ "$RC" = 124 ]; then
		OUTCOME=hang
		WHY="capcr restore did not end in ${FLT_TMO}s; $msg"
		flt_killall "${IPIDS[@]}"
		return
	fi
	if flt_crashed "$log" "$([ "$fault" = kill ] && echo SIGKILL)"; then
		OUTCOME=crash
		flt_killall "${IPIDS[@]}"
		return
	fi
	if flt_restore_leftovers "$log"; then
		OUTCOME=leftover
		WHY="$WHY; capcr said: $msg"
		flt_killall "${IPIDS[@]}"
		return
	fi
	if ! flt_restore_clean; then
		OUTCOME=leftover
		WHY="after the failed restore ($msg): $WHY"
		return
	fi
	if [ "$fault" = kill ] && grep -qE '\+\+\+ killed by SIGKILL' "$log.st"; then
		OUTCOME=ok-failed-with-cause
		WHY="capcr killed; nothing left"
		return
	fi
	if [ "$fault" = tkill ]; then
		er=ESRCH
		FLT_ALSO[KILLED]="exited|was killed|died|is gone|vanished|signal|status"
		er=KILLED
	fi
	if [ "$RC" = 0 ]; then
		OUTCOME=failure-without-cause
		WHY="restore ended 0 but its processes did not run; $msg"
		return
	fi
	if ! flt_names_cause "$log" "$er"; then
		OUTCOME=failure-without-cause
		WHY=$msg
		return
	fi
	OUTCOME=ok-failed-with-cause
	WHY=$msg
}
