#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/run.sh BUILD_DIR: capcr's benchmarks (`make bench`).
#
# Each benchmark is a section: a shell function section_NAME that prints
# its own table and leaves its one-line summary for the end.  Summaries are
# printed last, after every table, in section order; the capinfo summary
# line is kept apart and printed as the very last line of output, which
# scripts read:
#
#   capinfo ns/op: none=N shm=N ipc=N
#
# A missed aim is reported, never a failure: the script exits 0 whenever it
# measured.  It exits non-zero only when it could not measure (a program
# missing or failing, a run that did not end up in the mode it was meant to
# measure), and then prints no figures for that section.
#
# Knobs (environment), for quick or longer runs:
#   BENCH_SECTIONS    sections to run, in order        (default: capinfo cr tree)
#   BENCH_ROUNDS      processes per mode, interleaved  (default: 7)
#   CAPINFO_PAIRS     open+close pairs per repetition  (default: 50000)
#   CAPINFO_IPC_PAIRS the same under --capinfo=ipc     (default: 2000)
#   CAPINFO_REPS      timed repetitions per process    (default: 3)
#   CAPINFO_THREADS   threads in the multi phase       (default: 4)
#   CR_SIZES_MIB      target sizes for section cr      (default: 64 256 1024)
#   CR_ROUNDS         dump/restore rounds per size     (default: 5)
#   TREE_ROUNDS       dump/restore rounds per tree     (default: 5)
set -eu

BUILD=${1:-build}
if [ ! -x "$BUILD/bin/capcr" ] || [ ! -f "$BUILD/lib/libcapcr.so" ]; then
	echo "bench: $BUILD/bin/capcr or $BUILD/lib/libcapcr.so missing; run make first" >&2
	exit 1
fi
BUILD=$(cd "$BUILD" && pwd)
CAPCR=$BUILD/bin/capcr
RUNTIME=$BUILD/lib/libcapcr.so

SECTIONS=${BENCH_SECTIONS:-capinfo cr tree}
ROUNDS=${BENCH_ROUNDS:-7}

# Nothing from the caller's environment may turn a "not monitored" run into
# a monitored one, or preload something else into every run.
unset CAPCR_PD LD_PRELOAD CAPCR_RUNTIME

TMP=$(mktemp -d "${TMPDIR:-/tmp}/capcr-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
SUMMARY=$TMP/summary    # summary lines of all sections, in order
LAST=$TMP/last          # the line that must end the output
: >"$SUMMARY"
: >"$LAST"

fail() {
	echo "bench: $*" >&2
	exit 1
}

progress() {
	printf '%s' "$*" >&2
}

# stats FILE: "median min max" of the numbers in FILE, one per line.
stats() {
	sort -g "$1" | awk '{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", m, v[1], v[NR]
		}'
}

# fig MODE PHASE median|min|max: one figure of the capinfo section.
fig() {
	case $3 in
	median) f=1 ;;
	min) f=2 ;;
	max) f=3 ;;
	esac
	cut -d' ' -f"$f" "$TMP/capinfo/$1.$2.stats"
}

# ratio A B: A / B with two decimals.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", ((b > 0) ? a / b : 0) }'
}

int() {
	awk -v a="$1" 'BEGIN { printf "%d", a + 0.5 }'
}

# run_as MODE CMD...: run CMD the way MODE says.
#   bare  no runtime at all (reference)
#   none  runtime preloaded, no monitor: it must fall straight through
#   shm   under capcr run, reporting through the shared region
#   ipc   under capcr run, one request/reply to the monitor per change
#   ipc1  the same with target and monitor pinned to one CPU: every round
#         trip is a direct switch, with no cross-CPU wake-up (shown for
#         reference: the scheduler normally puts them on different CPUs)
run_as() {
	mode=$1
	shift
	case $mode in
	bare) "$@" ;;
	none) LD_PRELOAD=$RUNTIME "$@" ;;
	shm | ipc) "$CAPCR" run --capinfo="$mode" -- "$@" ;;
	ipc1) taskset -c "$ONE_CPU" "$CAPCR" run --capinfo=ipc -- "$@" ;;
	*) fail "unknown mode $mode" ;;
	esac
}

# What bench/capinfo must say about itself in each mode, or the figure
# would carry the wrong label.
expected_state() {
	case $1 in
	bare) echo "runtime=no monitored=no region=none" ;;
	none) echo "runtime=yes monitored=no region=none" ;;
	shm) echo "runtime=yes monitored=yes region=shm" ;;
	ipc | ipc1) echo "runtime=yes monitored=yes region=none" ;;
	esac
}

system_line() {
	cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
	model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
	echo "system: ${cpus} CPUs${model:+ ($model)}, Linux $(uname -r)"
}

# ---------------------------------------------------------------------------
# Section capinfo: what reporting the capability space costs a target.
# ---------------------------------------------------------------------------
section_capinfo() {
	prog=$BUILD/bench/capinfo
	[ -x "$prog" ] || fail "$prog missing; run make first"
	pairs=${CAPINFO_PAIRS:-50000}
	ipc_pairs=${CAPINFO_IPC_PAIRS:-2000}
	reps=${CAPINFO_REPS:-3}
	threads=${CAPINFO_THREADS:-4}
	[ "$threads" -ge 1 ] 2>/dev/null || fail "CAPINFO_THREADS must be at least 1"
	modes="bare none shm ipc"
	ONE_CPU=$(taskset -cp $$ 2>/dev/null | sed -n 's/.*: *\([0-9]*\).*/\1/p')
	if [ -n "$ONE_CPU" ] && [ "$(getconf _NPROCESSORS_ONLN)" -gt 1 ]; then
		modes="$modes ipc1"
	fi
	d=$TMP/capinfo
	mkdir -p "$d"

	echo
	echo "== capinfo: open(\"/dev/null\") + close(), nanoseconds per pair =="
	echo "   one pair = one insertion into and one removal from the cap map"
	echo "   $ROUNDS processes per mode, interleaved; each: 1 warm-up + $reps timed repetitions"
	echo "   of $pairs pairs ($ipc_pairs under ipc); figures: median of all repetitions,"
	echo "   range: their minimum-maximum; x none: ratio to the runtime preloaded unmonitored"
	progress "capinfo: measuring"
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		for mode in $modes; do
			n=$pairs
			case $mode in ipc*) n=$ipc_pairs ;; esac
			progress " $mode"
			out=$d/$mode.$r.out
			if ! run_as "$mode" "$prog" -n "$n" -r "$reps" \
				-t "$threads" >"$out" 2>"$d/$mode.$r.err"; then
				progress "
"
				cat "$d/$mode.$r.err" "$out" >&2
				fail "capinfo: the $mode run failed"
			fi
			want=$(expected_state "$mode")
			got=$(sed -n 's/^capinfo state //p' "$out")
			[ "$got" = "$want" ] ||
				fail "capinfo: the $mode run reports '$got', expected '$want'"
			for phase in single multi; do
				sed -n "s/^capinfo phase=$phase .* ns=//p" "$out" |
					tr ',' '\n' >>"$d/$mode.$phase"
			done
		done
		r=$((r + 1))
	done
	progress "
"

	for mode in $modes; do
		for phase in single multi; do
			stats "$d/$mode.$phase" >"$d/$mode.$phase.stats" ||
				fail "capinfo: no $phase figures for $mode"
		done
	done
	none_single=$(fig none single median)
	none_multi=$(fig none multi median)
	shm_single=$(fig shm single median)
	ipc_single=$(fig ipc single median)

	echo
	printf '%-28s %28s   %28s\n' "" "single thread" \
		"$threads threads (aggregate)"
	printf '%-28s %9s %7s %11s   %9s %7s %11s\n' "mode" "ns/pair" "x none" \
		"range" "ns/pair" "x none" "range"
	for mode in $modes; do
		case $mode in
		bare) label="bare (no runtime)" ;;
		none) label="none (preloaded, no monitor)" ;;
		shm) label="shm (capcr run)" ;;
		ipc) label="ipc (capcr run)" ;;
		ipc1) label="ipc, one CPU (reference)" ;;
		esac
		s=$(fig "$mode" single median)
		m=$(fig "$mode" multi median)
		printf '%-28s %9d %7s %11s   %9d %7s %11s\n' "$label" \
			"$(int "$s")" "$(ratio "$s" "$none_single")" \
			"$(int "$(fig "$mode" single min)")-$(int "$(fig "$mode" single max)")" \
			"$(int "$m")" "$(ratio "$m" "$none_multi")" \
			"$(int "$(fig "$mode" multi min)")-$(int "$(fig "$mode" multi max)")"
	done

	case $modes in *ipc1*)
		echo "ipc, one CPU: target and monitor pinned to one CPU (taskset), so a round"
		echo "trip is a direct switch, not a cross-CPU wake-up; not in the summary line" ;;
	esac

	# The aims, judged on the figures above; reported, never enforced.
	shm_x=$(ratio "$shm_single" "$none_single")
	ipc_x=$(ratio "$ipc_single" "$shm_single")
	shm_ok=$(awk -v x="$shm_x" 'BEGIN { print ((x <= 1.3) ? "met" : "MISSED") }')
	ipc_ok=$(awk -v x="$ipc_x" 'BEGIN { print ((x >= 10) ? "met" : "MISSED") }')
	echo
	echo "aim: shm within 1.3x of none (single thread): ${shm_x}x, $shm_ok"
	echo "aim: ipc at least 10x shm (single thread):    ${ipc_x}x, $ipc_ok"
	echo "capinfo ns/op: none=$(int "$none_single") shm=$(int "$shm_single") ipc=$(int "$ipc_single")" >"$LAST"
}

# ---------------------------------------------------------------------------
# Section cr: capcr dump and capcr restore of touched, incompressible
# memory, next to bounds measured in the same run on the same machine.
# ---------------------------------------------------------------------------

# cr_cleanup: end the section's processes (by PID) and remove its image.
CR_PIDS=""
CR_IMG=""
CR_MOUNT=""
cr_cleanup() {
	for p in $CR_PIDS; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in $CR_PIDS; do
		wait "$p" 2>/dev/null || true
	done
	CR_PIDS=""
	[ -n "$CR_MOUNT" ] && umount "$CR_MOUNT" 2>/dev/null
	[ -n "$CR_IMG" ] && rm -rf "$CR_IMG"
	CR_IMG=""
	CR_MOUNT=""
}

# cr_fail MSG: the section cannot measure.
cr_fail() {
	progress "
"
	cr_cleanup
	fail "cr: $*"
}

now_ns() {
	date +%s%N
}

# gbps BYTES SECONDS: 10^9 bytes per second, two decimals.
gbps() {
	awk -v b="$1" -v s="$2" 'BEGIN { printf "%.2f", (s > 0) ? b / s / 1e9 : 0 }'
}

# stats3 FILE: "median min max" of the numbers in FILE, six decimals.
stats3() {
	sort -g "$1" | awk '{ v[NR] = $1 }
		END {
			if (NR == 0) { print "0 0 0"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.6f %.6f %.6f\n", m, v[1], v[NR]
		}'
}

# target_check OUT PID WHAT: bench/cr fill (PID, its output OUT) checks
# all its memory (SIGUSR1); fails the bench unless it answers "ok".
target_check() {
	n=$(grep -c '^check ' "$1" || true)
	kill -USR1 "$2"
	i=0
	while [ "$(grep -c '^check ' "$1" || true)" -le "$n" ]; do
		i=$((i + 1))
		[ "$i" -le 3000 ] && kill -0 "$2" 2>/dev/null ||
			cr_fail "the $3 target did not answer its check"
		sleep 0.02
	done
	tail -n 1 "$1" | grep -q ' ok$' ||
		cr_fail "the $3 target's memory is wrong: $(tail -n 1 "$1")"
}

# lazy_server_up PID: PID (a capcr restore --lazy-pages) still has its
# page server (capcr-lazy) as a child.
lazy_server_up() {
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		[ "$(cat /proc/"$c"/comm 2>/dev/null)" = capcr-lazy ] && return 0
	done
	return 1
}

# cr_wait_for FILE REGEX SECONDS [PID]: until FILE has a line matching
# REGEX; fails after SECONDS, or at once if PID is given and has ended.
cr_wait_for() {
	i=0
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le $(($3 * 50)) ] || return 1
		if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
			return 1
		fi
		sleep 0.02
	done
}

section_cr() {
	prog=$BUILD/bench/cr
	[ -x "$prog" ] || fail "$prog missing; run make first"
	sizes=${CR_SIZES_MIB:-64 256 1024}
	rounds=${CR_ROUNDS:-5}
	[ "$rounds" -ge 1 ] 2>/dev/null || fail "CR_ROUNDS must be at least 1"
	d=$TMP/cr
	mkdir -p "$d"
	trap 'cr_cleanup; rm -rf "$TMP"' EXIT

	# The image goes to tmpfs, so the figures are capcr's, not a disk's.
	if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
		CR_IMG=$(mktemp -d /dev/shm/capcr-bench.XXXXXX); then
		where="/dev/shm (tmpfs)"
	else
		CR_IMG=$d/tmpfs
		mkdir -p "$CR_IMG"
		mount -t tmpfs -o size=90% capcr-bench "$CR_IMG" ||
			cr_fail "no tmpfs for the image: /dev/shm is not one and mounting one failed"
		CR_MOUNT=$CR_IMG
		where="a tmpfs mounted at $CR_IMG"
	fi
	thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)

	echo
	echo "== cr: capcr dump and capcr restore of touched, incompressible memory =="
	echo "   target: bench/cr fill, N MiB of private anonymous memory filled with"
	echo "   pseudo-random data, then waiting; image on $where"
	echo "   dump: wall time of capcr dump (seize, read, write, commit, kill);"
	echo "   frozen: how long the target was stopped (capcr -v); restore: capcr -v's"
	echo "   time from reading the image to the process running; each restore is"
	echo "   checked (the restored target re-reads all its memory) before it counts."
	echo "   $rounds rounds per size, medians; GB/s = 10^9 bytes/s; transparent huge pages: ${thp:-?}"
	echo "   bounds, same run, medians of $rounds: /proc/PID/mem = pread of the target's"
	echo "   area in 16 MiB blocks; memcpy = between two touched buffers; first touch ="
	echo "   faulting in fresh anonymous memory, one write per 4 KiB page; tmpfs write ="
	echo "   writing as many bytes into a new file next to the image (16 MiB writes);"
	echo "   dump -R: capcr -v dump -R of the same target in each round (it goes on)"
	progress "cr: measuring"

	: >"$d/rows"
	for mib in $sizes; do
		bytes=$((mib * 1048576))
		# Room for the target, its image, and the bounds' two buffers.
		avail=$(awk '/^MemAvailable:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo)
		room=$(df -k "$CR_IMG" | awk 'NR == 2 { printf "%.0f\n", $4 * 1024 }')
		if [ "$avail" -lt $((bytes * 4)) ] || [ "$room" -lt $((bytes + 16777216)) ]; then
			echo "$mib skipped" >>"$d/rows"
			continue
		fi
		progress " ${mib}MiB"
		out=$d/fill.$mib.out
		"$prog" fill "$mib" >"$out" 2>"$d/fill.$mib.err" </dev/null &
		holder=$!
		pid=$holder
		CR_PIDS="$pid"
		cr_wait_for "$out" '^ready ' 120 "$pid" ||
			cr_fail "bench/cr fill $mib did not get ready: $(cat "$d/fill.$mib.err")"
		addr=$(sed -n 's/^ready .*addr=\([0-9a-fx]*\).*/\1/p' "$out")
		"$prog" bounds -r "$rounds" -w "$CR_IMG" "$pid" "$addr" "$bytes" >"$d/bounds.$mib" \
			2>"$d/bounds.$mib.err" ||
			cr_fail "bench/cr bounds failed: $(cat "$d/bounds.$mib.err")"
		: >"$d/dump.$mib"
		: >"$d/frozen.$mib"
		: >"$d/restore.$mib"
		: >"$d/frozenR.$mib"
		: >"$d/frozenI.$mib"
		: >"$d/wroteI.$mib"
		: >"$d/lazy.$mib"
		r=1
		while [ "$r" -le "$rounds" ]; do
			# dump -R first: the pre-copy, then a freeze that copies
			# only what was written since; the target goes on.
			img=$CR_IMG/imgR.$mib.$r
			mkdir "$img"
			log=$d/dumpR.$mib.$r.log
			"$CAPCR" -v dump -R -t "$pid" -D "$img" >"$log" 2>&1 </dev/null ||
				cr_fail "capcr dump -R of $mib MiB failed: $(cat "$log")"
			frozen=$(sed -n 's/.*frozen \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
			[ -n "$frozen" ] || cr_fail "capcr -v dump -R printed no 'frozen N ms': $(cat "$log")"
			echo "$frozen" >>"$d/frozenR.$mib"
			rm -rf "$img"

			# An incremental dump -R: a pre-dump, one page in 100
			# written again (SIGUSR2), then dump -R after it.
			imgP=$CR_IMG/imgP.$mib.$r
			img=$CR_IMG/imgI.$mib.$r
			mkdir "$imgP" "$img"
			log=$d/predump.$mib.$r.log
			"$CAPCR" -v pre-dump -t "$pid" -D "$imgP" >"$log" 2>&1 </dev/null ||
				cr_fail "capcr pre-dump of $mib MiB failed: $(cat "$log")"
			n=$(grep -c '^touched ' "$out" || true)
			kill -USR2 "$pid"
			i=0
			while [ "$(grep -c '^touched ' "$out" || true)" -le "$n" ]; do
				i=$((i + 1))
				[ "$i" -le 3000 ] || cr_fail "bench/cr fill did not touch its pages"
				sleep 0.01
			done
			log=$d/dumpI.$mib.$r.log
			"$CAPCR" -v dump -R -t "$pid" -D "$img" --prev-images-dir "$imgP" >"$log" 2>&1 </dev/null ||
				cr_fail "capcr dump --prev-images-dir of $mib MiB failed: $(cat "$log")"
			grep -q '^capcr: incremental:' "$log" ||
				cr_fail "capcr dump --prev-images-dir was not incremental: $(cat "$log")"
			sed -n 's/.*frozen \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1 >>"$d/frozenI.$mib"
			sed -n 's/.* \([0-9.]*\) MiB written to the image in all.*/\1/p' "$log" >>"$d/wroteI.$mib"
			rm -rf "$imgP" "$img"

			img=$CR_IMG/img.$mib.$r
			mkdir "$img"
			log=$d/dump.$mib.$r.log
			t0=$(now_ns)
			"$CAPCR" -v dump -t "$pid" -D "$img" >"$log" 2>&1 </dev/null ||
				cr_fail "capcr dump of $mib MiB failed: $(cat "$log")"
			t1=$(now_ns)
			wait "$holder" 2>/dev/null || true
			frozen=$(sed -n 's/.*frozen \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
			[ -n "$frozen" ] || cr_fail "capcr -v dump printed no 'frozen N ms': $(cat "$log")"
			awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }' >>"$d/dump.$mib"
			echo "$frozen" >>"$d/frozen.$mib"

			log=$d/restore.$mib.$r.log
			"$CAPCR" -v restore -D "$img" >"$log" 2>&1 </dev/null &
			holder=$!
			CR_PIDS="$pid $holder"
			cr_wait_for "$log" 'restored .* in [0-9.]+ ms' 120 "$holder" ||
				cr_fail "capcr restore of $mib MiB failed: $(cat "$log")"
			ms=$(sed -n 's/.*restored .* in \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
			[ -n "$ms" ] || cr_fail "capcr -v restore printed no time: $(cat "$log")"
			awk -v m="$ms" 'BEGIN { printf "%.6f\n", m / 1e3 }' >>"$d/restore.$mib"

			# The restored process checks all its memory.
			target_check "$out" "$pid" "restored $mib MiB"
			rm -rf "$img"

			# Lazy: dumped again, restored with --lazy-pages: the
			# time until it runs, then its check pulls every page.
			img=$CR_IMG/imgL.$mib.$r
			mkdir "$img"
			"$CAPCR" dump -t "$pid" -D "$img" >"$d/dumpL.$mib.$r.log" 2>&1 </dev/null ||
				cr_fail "capcr dump of $mib MiB failed: $(cat "$d/dumpL.$mib.$r.log")"
			wait "$holder" 2>/dev/null || true
			log=$d/lazy.$mib.$r.log
			"$CAPCR" -v restore --lazy-pages -D "$img" >"$log" 2>&1 </dev/null &
			holder=$!
			CR_PIDS="$pid $holder"
			cr_wait_for "$log" 'restored .* in [0-9.]+ ms' 120 "$holder" ||
				cr_fail "capcr restore --lazy-pages of $mib MiB failed: $(cat "$log")"
			sed -n 's/.*restored .* in \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1 |
				awk '{ printf "%.6f\n", $1 / 1e3 }' >>"$d/lazy.$mib"
			target_check "$out" "$pid" "lazily restored $mib MiB"
			# Until its page server is done (every page in), so the
			# next round's dump finds no userfaultfd registered.
			i=0
			while lazy_server_up "$holder"; do
				i=$((i + 1))
				[ "$i" -le 6000 ] || cr_fail "the page server of a lazy restore did not end"
				sleep 0.01
			done
			rm -rf "$img"
			r=$((r + 1))
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$holder" 2>/dev/null || true
		CR_PIDS=""
		echo "$mib $(stats3 "$d/dump.$mib") $(stats3 "$d/frozen.$mib") $(stats3 "$d/frozenR.$mib") $(stats3 "$d/restore.$mib") $(sed 's/[a-z]*=//g' "$d/bounds.$mib") $(stats3 "$d/frozenI.$mib") $(stats3 "$d/wroteI.$mib") $(stats3 "$d/lazy.$mib")" >>"$d/rows"
	done
	progress "
"
	trap 'rm -rf "$TMP"' EXIT
	cr_cleanup

	echo
	fmt='%-8s | %6s %5s %11s %6s %9s | %6s %9s | %6s %5s %11s | %12s %12s %12s %12s %10s\n'
	printf '%-8s | %-41s | %-16s | %-24s | %s\n' "" "capcr dump (the target killed)" \
		"dump -R" "capcr restore" "bounds, GB/s (seconds)"
	printf "$fmt" "size" "s" "GB/s" "range s" "frozen" "range" "frozen" "range" \
		"s" "GB/s" "range s" "/proc/PID/mem" "memcpy" "first touch" \
		"tmpfs write" "scan"
	printf "$fmt" "" "" "" "" "ms" "ms" "ms" "ms" "" "" "" "" "" "" "" "ms"
	summary=""
	: >"$d/incr"
	: >"$d/lazyrows"
	while read -r mib dump dlo dhi frozen flo fhi frr frlo frhi rest rlo rhi pm mc tt wr sc fi filo fihi wi wilo wihi la lalo lahi; do
		if [ "$dump" = skipped ]; then
			printf '%-8s | skipped: not enough free memory or tmpfs space\n' "$mib MiB"
			continue
		fi
		bytes=$((mib * 1048576))
		label="$mib MiB"
		[ "$mib" -ge 1024 ] && [ $((mib % 1024)) -eq 0 ] && label="$((mib / 1024)) GiB"
		bound() { printf '%s (%.3f)' "$(gbps "$bytes" "$1")" "$1"; }
		printf "$fmt" "$label" \
			"$(printf '%.3f' "$dump")" "$(gbps "$bytes" "$dump")" \
			"$(printf '%.3f-%.3f' "$dlo" "$dhi")" \
			"$(printf '%.0f' "$frozen")" "$(printf '%.0f-%.0f' "$flo" "$fhi")" \
			"$(printf '%.1f' "$frr")" "$(printf '%.1f-%.1f' "$frlo" "$frhi")" \
			"$(printf '%.3f' "$rest")" "$(gbps "$bytes" "$rest")" \
			"$(printf '%.3f-%.3f' "$rlo" "$rhi")" \
			"$(bound "$pm")" "$(bound "$mc")" "$(bound "$tt")" "$(bound "$wr")" \
			"$(awk -v s="$sc" 'BEGIN { printf "%.2f", s * 1e3 }')"
		# the pages written since the pre-dump: one in 100
		pw=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", int((b / 4096 + 99) / 100) * 4096 / 1048576 }')
		printf '  %-8s | frozen %s ms (%s-%s), %s MiB written (%s-%s) | bounds: %s MiB of pages written, scan %s ms\n' \
			"$label" "$(printf '%.1f' "$fi")" "$(printf '%.1f' "$filo")" "$(printf '%.1f' "$fihi")" \
			"$(printf '%.2f' "$wi")" "$(printf '%.2f' "$wilo")" "$(printf '%.2f' "$wihi")" "$pw" \
			"$(awk -v s="$sc" 'BEGIN { printf "%.2f", s * 1e3 }')" >>"$d/incr"
		printf '  %-8s | running after %s s (%s-%s) | eager restore %s s: %s of it\n' \
			"$label" "$(printf '%.3f' "$la")" "$(printf '%.3f' "$lalo")" "$(printf '%.3f' "$lahi")" \
			"$(printf '%.3f' "$rest")" \
			"$(awk -v a="$la" -v b="$rest" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')" >>"$d/lazyrows"
		summary="$label: dump $(printf '%.3f' "$dump") s ($(gbps "$bytes" "$dump") GB/s, frozen $(printf '%.0f' "$frozen") ms), dump -R frozen $(printf '%.1f' "$frr") ms, after a pre-dump (1% written) frozen $(printf '%.1f' "$fi") ms and $(printf '%.2f' "$wi") MiB written, restore $(printf '%.3f' "$rest") s ($(gbps "$bytes" "$rest") GB/s)"
		last="$pm $mc $tt $wr $dump $rest $sc $frr"
	done <"$d/rows"
	if [ -n "$summary" ]; then
		set -- $last
		echo
		echo "dump -R after capcr pre-dump, one page in 100 written since (incremental):"
		cat "$d/incr"
		echo "restore --lazy-pages: from the start of capcr restore to the process running"
		echo "  (its pages come at first touch and in the background afterwards):"
		cat "$d/lazyrows"
		echo "dump -R: frozen = the freeze after the live pre-copy (only what was written"
		echo "  since is copied frozen); scan = one PAGEMAP_SCAN of the area, the page-table"
		echo "  walk that finding the written pages costs at least"
		echo "largest size, time of the bound / time of capcr (1.00 = as fast as the bound):"
		echo "  dump:    $(ratio "$1" "$5") of the /proc/PID/mem read alone;" \
			"$(awk -v a="$1" -v b="$4" -v c="$5" 'BEGIN { printf "%.2f", (c > 0) ? (a + b) / c : 0 }') of read + tmpfs write"
		echo "  dump -R: the freeze is $(awk -v a="$7" -v b="$8" 'BEGIN { printf "%.1f", (a > 0) ? b / (a * 1e3) : 0 }') times the scan"
		echo "  restore: $(ratio "$3" "$6") of first touch alone;" \
			"$(awk -v a="$3" -v b="$2" -v c="$6" 'BEGIN { printf "%.2f", (c > 0) ? (a + b) / c : 0 }') of first touch + memcpy"
		echo "cr: $summary" >>"$SUMMARY"
	fi
}

# ---------------------------------------------------------------------------
# Section tree: capcr dump and capcr restore of process trees and of
# threads: how long the tree is stopped, the whole dump, the restore.
# ---------------------------------------------------------------------------

TREE_HOLDER=""
TREE_ROOT=""
TREE_IMG=""

# tree_pids PID: PID and all its descendants.
tree_pids() {
	todo=$1
	while [ -n "$todo" ]; do
		set -- $todo
		[ $# -gt 0 ] || break
		p=$1
		shift
		todo="$*"
		[ -d "/proc/$p" ] || continue
		echo "$p"
		todo="$todo $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"
	done
}

# tree_end: kill the tree (by PID) and its holder, remove the image.
tree_end() {
	if [ -n "$TREE_ROOT" ]; then
		for p in $(tree_pids "$TREE_ROOT"); do
			kill -KILL "$p" 2>/dev/null || true
		done
	fi
	if [ -n "$TREE_HOLDER" ]; then
		kill -KILL "$TREE_HOLDER" 2>/dev/null || true
		wait "$TREE_HOLDER" 2>/dev/null || true
	fi
	TREE_ROOT=""
	TREE_HOLDER=""
	[ -n "$TREE_IMG" ] && rm -rf "$TREE_IMG"
	TREE_IMG=""
}

tree_fail() {
	progress "
"
	tree_end
	fail "tree: $*"
}

# tree_measure LABEL ARGS...: crt_many ARGS under crt_sub (a subreaper, so
# the processes a dump kills are reaped at once and their PIDs are free for
# the restore), then TREE_ROUNDS times: capcr -v dump (which kills it),
# wait for the holder, capcr -v restore under a new crt_sub, wait until it
# says the tree runs.  One row into $d/rows.
tree_measure() {
	label=$1
	shift
	tag=$(echo "$label" | tr -c 'a-z0-9\n' '_')
	out=$d/$tag.out
	: >"$d/$tag.frozen"
	: >"$d/$tag.dump"
	: >"$d/$tag.wall"
	: >"$d/$tag.restore"
	CR_GO=$d/$tag.go "$sub" "$prog" "$@" >"$out" 2>"$d/$tag.err" </dev/null &
	TREE_HOLDER=$!
	cr_wait_for "$out" '^ready pid=' 30 "$TREE_HOLDER" ||
		tree_fail "crt_many $* did not get ready: $(cat "$d/$tag.err")"
	TREE_ROOT=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' "$out")
	nproc=$(tree_pids "$TREE_ROOT" | wc -l)
	nthr=0
	for p in $(tree_pids "$TREE_ROOT"); do
		nthr=$((nthr + $(ls "/proc/$p/task" | wc -l)))
	done
	r=1
	while [ "$r" -le "$rounds" ]; do
		img=$TREE_IMG/$tag.$r
		mkdir "$img"
		log=$d/$tag.dump.$r.log
		t0=$(now_ns)
		"$CAPCR" -v dump -t "$TREE_ROOT" -D "$img" >"$log" 2>&1 </dev/null ||
			tree_fail "capcr dump of $label failed: $(cat "$log")"
		t1=$(now_ns)
		wait "$TREE_HOLDER" 2>/dev/null || true
		fr=$(sed -n 's/.*frozen \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
		al=$(sed -n 's/.* \([0-9.]*\) ms in all.*/\1/p' "$log" | head -n 1)
		[ -n "$fr" ] && [ -n "$al" ] ||
			tree_fail "capcr -v dump printed no 'N ms in all, frozen N ms': $(cat "$log")"
		echo "$fr" >>"$d/$tag.frozen"
		echo "$al" >>"$d/$tag.dump"
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$d/$tag.wall"
		log=$d/$tag.restore.$r.log
		"$sub" "$CAPCR" -v restore -D "$img" >"$log" 2>&1 </dev/null &
		TREE_HOLDER=$!
		cr_wait_for "$log" 'restored .* in [0-9.]+ ms' 60 "$TREE_HOLDER" ||
			tree_fail "capcr restore of $label failed: $(cat "$log")"
		ms=$(sed -n 's/.*restored \([0-9]*\) process.* in \([0-9.]*\) ms.*/\1 \2/p' "$log" | head -n 1)
		[ "${ms%% *}" = "$nproc" ] ||
			tree_fail "capcr restore of $label restored ${ms%% *} processes, not $nproc: $(cat "$log")"
		echo "${ms#* }" >>"$d/$tag.restore"
		rm -rf "$img"
		r=$((r + 1))
	done
	tree_end
	TREE_IMG=$(mktemp -d "$imgbase/capcr-bench-tree.XXXXXX")
	echo "$label|$nproc|$nthr|$(stats "$d/$tag.frozen")|$(stats "$d/$tag.dump")|$(stats "$d/$tag.wall")|$(stats "$d/$tag.restore")" >>"$d/rows"
}

section_tree() {
	prog=$BUILD/tests/crt_many
	sub=$BUILD/tests/crt_sub
	[ -x "$prog" ] && [ -x "$sub" ] || fail "$prog or $sub missing; run make first"
	rounds=${TREE_ROUNDS:-5}
	[ "$rounds" -ge 1 ] 2>/dev/null || fail "TREE_ROUNDS must be at least 1"
	d=$TMP/tree
	mkdir -p "$d"
	imgbase=${TMPDIR:-/tmp}
	where="$imgbase"
	if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
		imgbase=/dev/shm
		where="/dev/shm (tmpfs)"
	fi
	TREE_IMG=$(mktemp -d "$imgbase/capcr-bench-tree.XXXXXX") ||
		fail "tree: no directory for the images"
	trap 'tree_end; rm -rf "$TMP"' EXIT

	echo
	echo "== tree: capcr dump and capcr restore of process trees and of threads =="
	echo "   target: tests/progs/crt_many, idle: N processes in a tree (each the parent of"
	echo "   up to 4, waiting in pause()), or one process with N threads (waiting in"
	echo "   pthread_cond_wait); run under a child subreaper (crt_sub); image on $where"
	echo "   frozen: how long the tree stayed stopped, from the moment all of it was"
	echo "   frozen to its kill (capcr -v); dump: capcr -v's time for the whole dump"
	echo "   (freezing included); wall: the capcr dump command, start to exit; restore:"
	echo "   capcr -v's time from reading the image to every process running."
	echo "   $rounds rounds per target (dump, restore, dump the restored tree, ...);"
	echo "   median, and min-max"
	progress "tree: measuring"
	: >"$d/rows"
	for t in "1 process, 1 thread|-i -t 0" "10 processes|-i -t 0 -P 10" \
		"50 processes|-i -t 0 -P 50" "10 threads|-i -t 9" \
		"100 threads|-i -t 99"; do
		label=${t%%|*}
		progress " [$label]"
		# shellcheck disable=SC2086
		tree_measure "$label" ${t#*|}
	done
	progress "
"
	trap 'rm -rf "$TMP"' EXIT
	tree_end

	echo
	fmt='%-20s %5s %7s | %7s %13s | %7s %13s | %7s %13s | %7s %13s\n'
	printf "$fmt" "target" "procs" "threads" "frozen" "" "dump" "" "wall" "" \
		"restore" ""
	printf "$fmt" "" "" "" "ms" "range" "ms" "range" "ms" "range" "ms" "range"
	summary=""
	while IFS='|' read -r label np nt fr du wa re; do
		set -- $fr $du $wa $re
		printf "$fmt" "$label" "$np" "$nt" "$1" "$2-$3" "$4" "$5-$6" \
			"$7" "$8-$9" "${10}" "${11}-${12}"
		case $label in
		"50 processes" | "100 threads")
			summary="$summary${summary:+; }$label: dump $4 ms (frozen $1 ms), restore ${10} ms" ;;
		esac
	done <"$d/rows"
	echo "tree: $summary" >>"$SUMMARY"
}

echo "capcr benchmarks ($BUILD)"
system_line
for s in $SECTIONS; do
	command -v "section_$s" >/dev/null 2>&1 || fail "no benchmark section '$s'"
	"section_$s"
done
echo
cat "$SUMMARY" "$LAST"
