#!/bin/bash
# capcr killed while it works, and the process killed while capcr restores
# it (issues #8 and #12).
#
#  1. capcr dump (with and without -R) is killed with SIGKILL at its Nth
#     ptrace call, for N spread over every call a dump makes (strace's
#     fault injection), and at moments spread over a dump's duration.
#     After each, the target runs on untraced and unstopped, its memory,
#     registers, FPU state, signal mask and handlers intact, every blocked
#     thread still inside its call; the partial image is refused by
#     restore as unfinished.  At the end every thread wakes and returns
#     what it should.
#  2. The target is dumped, then restored 16 times, the restored process
#     killed at moments from 0 to 400 ms into the restore: capcr restore
#     always ends, says why, and leaves no process behind; a last restore
#     then succeeds and the process passes its own checks.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || skip "strace is not installed"
# LeakSanitizer stops the world with ptrace, which it cannot do under
# strace: no leak check for the runs under strace (the others keep it).
NOLSAN="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

mkfifo "$T/cmd"
start victim "$TPROGS/crk_victim" 32 "$T/cmd"
line=$(wait_line victim '^ready pid=' 30) || {
	not_ok "crk_victim started"
	finish
}
pid=$(field "$line" pid)
exec 7<>"$T/cmd"
nchecks=0

# victim_ok LABEL: untraced, not stopped, and its own check passes.
victim_ok() {
	local st tr n
	st=$(_stat_field "$pid" 1)
	tr=$(awk '/^TracerPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	if [ -z "$st" ] || [ "$st" = Z ]; then
		echo "$1: the target is gone"
		return 1
	fi
	if [ "$st" = T ] || [ "$st" = t ] || [ "$tr" != 0 ]; then
		echo "$1: the target is left stopped ($st) or traced ($tr)"
		return 1
	fi
	nchecks=$((nchecks + 1))
	echo check >&7
	n=$nchecks
	wait_line victim "^check $n " 30 >/dev/null || return 1
	grep -q "^check $n ok" "$T/victim.out" || {
		grep "^check $n " "$T/victim.out"
		return 1
	}
}

# A clean dump -R first: how many ptrace calls a dump makes.
mkdir "$T/img0"
env "$NOLSAN" strace -f -qq -o "$T/calls" -e trace=ptrace \
	"$CAPCR" dump -t "$pid" -D "$T/img0" -R 2>"$T/dump0.err"
check "a dump -R under strace works" [ $? -eq 0 ]
calls=$(grep -c 'ptrace(' "$T/calls")
check "the dump made ptrace calls ($calls)" [ "$calls" -gt 20 ]
check "the target is fine after a dump -R" victim_ok "clean"

echo "# 1. capcr dump killed at its Nth ptrace call"
# Every one of the first 30 calls (seizing, the first injected calls, the
# rescue frame), then 30 more spread over the rest; CAPCR_KILL_ALL=1 tries
# every call.
points=$(seq 1 30)
step=$(((calls - 30) / 30 + 1))
[ "${CAPCR_KILL_ALL:-0}" = 1 ] && step=1
for ((n = 31; n <= calls; n += step)); do points="$points $n"; done
bad=0 tried=0 partial_bad=0
for n in $points; do
	tried=$((tried + 1))
	# Without -R only where the dump cannot get to its end (it would
	# kill the target).
	R=-R
	[ $((n % 2)) -eq 0 ] && [ "$n" -lt $((calls / 2)) ] && R=
	rm -rf "$T/img"
	mkdir "$T/img"
	timeout -s KILL "$(tsecs 60)" env "$NOLSAN" \
		strace -qq -o /dev/null -e trace=ptrace \
		-e inject=ptrace:signal=SIGKILL:when="$n" \
		"$CAPCR" dump -t "$pid" -D "$T/img" $R >/dev/null 2>&1
	rc=$?
	if ! out=$(victim_ok "killed at ptrace call $n ${R:-without -R}"); then
		bad=$((bad + 1))
		echo "$out"
		alive "$pid" || break
	fi
	# A dump that did not get to its end is no image, and says so.
	"$CAPCR" show -D "$T/img" >"$T/partial.out" 2>&1
	src=$?
	if [ $rc -eq 0 ] && [ $src -ne 0 ]; then
		partial_bad=$((partial_bad + 1))
		echo "dump $n completed, but show refuses it:"
		cat "$T/partial.out"
	elif [ $rc -ne 0 ] && ! grep -q "no complete image" "$T/partial.out"; then
		partial_bad=$((partial_bad + 1))
		echo "dump $n was killed, but show does not call it partial:"
		cat "$T/partial.out"
	fi
done
check "killed at $tried ptrace calls of $calls: the target always ran on, intact" \
	[ $bad -eq 0 ]
check "every partial image is refused as one" [ $partial_bad -eq 0 ]

echo "# 2. capcr dump killed at moments spread over a dump"
t0=$(now_ms)
rm -rf "$T/img"
mkdir "$T/img"
"$CAPCR" dump -t "$pid" -D "$T/img" -R >/dev/null 2>&1
dur=$(($(now_ms) - t0))
bad=0
for k in $(seq 0 19); do
	rm -rf "$T/img"
	mkdir "$T/img"
	"$CAPCR" dump -t "$pid" -D "$T/img" -R >/dev/null 2>&1 &
	dp=$!
	sleep "$(awk -v d="$dur" -v k="$k" 'BEGIN { printf "%.3f", d * k / 20000 }')"
	kill -KILL "$dp" 2>/dev/null
	wait "$dp" 2>/dev/null
	out=$(victim_ok "killed at moment $k of 20") || {
		bad=$((bad + 1))
		echo "$out"
	}
done
check "killed at 20 moments of a ${dur} ms dump: the target always ran on, intact" \
	[ $bad -eq 0 ]

echo "# 3. the restored process killed during its restore"
rm -rf "$T/img"
mkdir "$T/img"
"$CAPCR" dump -t "$pid" -D "$T/img" 2>"$T/dump.err"
check "capcr dump" [ $? -eq 0 ]
wait_exit "$pid" 10
hang=0 left=0 nocause=0
for k in $(seq 0 15); do
	ms=$((k * 27))
	"$CAPCR" restore -D "$T/img" >"$T/r$k.out" 2>"$T/r$k.err" </dev/null &
	rp=$!
	sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
	# At that moment, or as soon as the process exists.
	while ! kill -KILL "$pid" 2>/dev/null && kill -0 "$rp" 2>/dev/null; do
		sleep 0.005
	done
	for ((i = 0; i < $(tsecs 15) * 10; i++)); do
		kill -0 "$rp" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$rp" 2>/dev/null; then
		hang=$((hang + 1))
		echo "restore $k (kill at $ms ms) did not end"
		kill -KILL "$rp"
	fi
	wait "$rp" 2>/dev/null
	rc=$?
	if [ -d "/proc/$pid" ]; then
		left=$((left + 1))
		echo "restore $k: process $pid left behind"
	fi
	# Failed: the cause is named; or it was restored and then killed.
	if [ $rc -ne 137 ] && ! grep -q "killed\|was stopped" "$T/r$k.err"; then
		nocause=$((nocause + 1))
		echo "restore $k: status $rc, $(cat "$T/r$k.err")"
	fi
done
check "16 restores killed at 0-400 ms: none hung" [ $hang -eq 0 ]
check "16 restores killed at 0-400 ms: nothing left behind" [ $left -eq 0 ]
check "16 restores killed at 0-400 ms: each failure says why" [ $nocause -eq 0 ]

"$CAPCR" restore -D "$T/img" --restore-detached 2>"$T/rlast.err"
check "the same restore then succeeds" [ $? -eq 0 ]
PIDS+=("$pid")
echo end >&7
check "every thread wakes and returns what it should" \
	wait_line victim '^(PASS|FAIL)' 30
check "the process passes its own checks (PASS)" grep -q '^PASS' "$T/victim.out"

echo "# 4. a member of a 20-process tree killed while the tree is restored"
# Several processes taken over at once (restore/pool.c): a death anywhere
# ends the restore, with nothing left, whichever thread waited for it.
mkdir "$T/timg"
start tree env "CR_GO=$T/tree.go" "$TPROGS/crt_many" -i -t 1 -P 20
line=$(wait_line tree '^ready pid=' 30) || not_ok "crt_many -P 20 started"
tpid=$(field "$line" pid)
tpids=$(cat "/proc/$tpid/task/"*/children 2>/dev/null)
for p in $tpids; do
	tpids="$tpids $(cat "/proc/$p/task/"*/children 2>/dev/null)"
done
tpids="$tpid $(echo $tpids | tr ' ' '\n' | sort -un | tr '\n' ' ')"
"$CAPCR" dump -t "$tpid" -D "$T/timg" 2>"$T/tdump.err"
check "capcr dump of the tree ($(echo $tpids | wc -w) processes)" [ $? -eq 0 ]
wait_exit "$tpid" 10
set -- $tpids
n=$#
hang=0 left=0 nocause=0 ended=0
for k in $(seq 0 9); do
	ms=$((k * 4))
	shift $(( (k * 7) % n ))
	victim=${1:-$tpid}
	set -- $tpids
	"$CAPCR" restore -D "$T/timg" --restore-detached >"$T/t$k.out" \
		2>"$T/t$k.err" </dev/null &
	rp=$!
	# From the moment it exists, ms later.
	for ((i = 0; i < 2000; i++)); do
		[ -d "/proc/$victim" ] || ! kill -0 "$rp" 2>/dev/null && break
		sleep 0.002
	done
	sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
	kill -KILL "$victim" 2>/dev/null
	for ((i = 0; i < $(tsecs 15) * 10; i++)); do
		kill -0 "$rp" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$rp" 2>/dev/null; then
		hang=$((hang + 1))
		echo "tree restore $k (kill $victim at $ms ms) did not end"
		kill -KILL "$rp"
	fi
	wait "$rp" 2>/dev/null
	rc=$?
	# Restored before the kill: the tree is ended here.
	[ $rc -eq 0 ] && for p in $tpids; do kill -KILL "$p" 2>/dev/null; done
	for p in $tpids; do
		for ((i = 0; i < 50; i++)); do
			[ -d "/proc/$p" ] || break
			sleep 0.1
		done
		if [ -d "/proc/$p" ]; then
			left=$((left + 1))
			echo "tree restore $k: process $p left behind"
		fi
	done
	[ $rc -ne 0 ] && ended=$((ended + 1))
	if [ $rc -ne 0 ] && ! grep -q "killed" "$T/t$k.err"; then
		nocause=$((nocause + 1))
		echo "tree restore $k: status $rc, $(cat "$T/t$k.err")"
	fi
done
echo "# $ended of 10 tree restores were ended by the kill, the others done before it"
check "10 tree restores with a member killed: none hung" [ $hang -eq 0 ]
check "10 tree restores with a member killed: nothing left behind" \
	[ $left -eq 0 ]
check "10 tree restores with a member killed: each failure says why" \
	[ $nocause -eq 0 ]
"$CAPCR" restore -D "$T/timg" --restore-detached 2>"$T/tlast.err"
check "the tree's restore then succeeds" [ $? -eq 0 ]
for p in $tpids; do PIDS+=("$p"); done
touch "$T/tree.go"
finish
