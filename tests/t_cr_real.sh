#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoint/restore of real programs that nobody here wrote: python3, bash
# (builtins only) and perl, each dumped in the middle of a run, killed,
# restored, and finishing with output byte-identical to an uninterrupted
# run; then python3 dumped and restored 20 times over.
#
# Each program writes to a regular file (descriptor 1), which the restore
# opens again at the saved position.  The reference run is made the same
# way (same interpreter, same script, output to a file).
. "$(dirname "$0")/lib_cr2.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"
# python's output to a file is block-buffered, as it usually is.
unset PYTHONUNBUFFERED

# cr_mid NAME STREAM LINES TOTAL CMD...: run CMD twice: once uninterrupted
# ($T/NAME.ref, $T/NAME.referr), once dumped when its STREAM (out or err)
# has LINES lines, killed, restored in the foreground and left to finish
# ($T/NAME.out, $T/NAME.err).  TOTAL is the number of lines on stdout of
# a complete run.  Both stdout and stderr must come out byte-identical.
cr_mid() {
	local name=$1 stream=$2 lines=$3 total=$4 at
	shift 4
	"$@" >"$T/$name.ref" 2>"$T/$name.referr" </dev/null
	check "$name: the uninterrupted run ends with status 0" test $? -eq 0
	check "$name: the uninterrupted run prints $total lines" \
		test "$(cr_lines "$T/$name.ref")" -eq "$total"
	cr_start "$name" "$@"
	local p=$SPID
	if ! cr_wait_lines "$T/$name.$stream" "$lines" 20; then
		not_ok "$name: reached line $lines of std$stream"
		return
	fi
	mkdir "$T/$name.img"
	cr_dump "$name-dump" -t "$p" -D "$T/$name.img"
	check "$name: dump mid-run succeeds" rc_is 0
	at=$(cr_lines "$T/$name.$stream")
	local of=$T/$name.ref
	[ "$stream" = err ] && of=$T/$name.referr
	of=$(cr_lines "$of")
	cr_reap "$p"
	check "$name: it was killed by the dump (SIGKILL)" rc_is 137
	check "$name: it was mid-run when dumped (std$stream: $at of $of lines)" \
		test "$at" -lt "$of"
	cr_restore "$name-restore" -D "$T/$name.img"
	check "$name: restored, it runs to its end with status 0" rc_is 0
	check "$name: nothing left behind" no_stray "$name-restore"
	local a b
	for a in out err; do
		b=ref
		[ $a = err ] && b=referr
		if cmp -s "$T/$name.$b" "$T/$name.$a"; then
			ok "$name: std$a byte-identical to the uninterrupted run's"
		else
			not_ok "$name: std$a byte-identical to the uninterrupted run's"
			diff "$T/$name.$b" "$T/$name.$a" | head -n 10 | sed 's/^/      | /'
		fi
	done
}

# ---------------------------------------------------------------------------
# python3: a deterministic computation of about 2 s, half of it sleeping.
# Its stdout goes to a file, so python keeps it in its buffer until the
# end: the restored process must carry the buffer.  Progress goes to
# stderr, unbuffered, and tells when to dump.  With a fourth argument, a
# file, step N waits until that file holds a number >= N (a leash: the
# test lets it run only so far ahead of its dumps, however slow the test
# itself is); the output is the same.
cat >"$T/comp.py" <<'EOF'
import hashlib, sys, time
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
work = int(sys.argv[2]) if len(sys.argv) > 2 else 150000
flush = len(sys.argv) > 3 and sys.argv[3] == "flush"
leash = sys.argv[4] if len(sys.argv) > 4 else None
def allowed():
    try:
        return int(open(leash).read().strip() or 0)
    except (OSError, ValueError):
        return 0
h = hashlib.sha256(b"capcr")
x, acc, table = 1, [], {}
for step in range(steps):
    while leash and allowed() < step:
        time.sleep(0.005)
    for i in range(work):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    h.update(x.to_bytes(8, "little"))
    acc.append(x % 1000)
    table[step] = [x >> k for k in range(0, 64, 4)]
    print(step, x, h.hexdigest()[:16], sum(acc), sum(map(sum, table.values())) % 1000003,
          flush=flush)
    print("progress", step, file=sys.stderr, flush=True)
    time.sleep(0.025)
print("done", h.hexdigest(), len(table))
EOF
cr_mid python err 18 41 "$PY" "$T/comp.py"

# ---------------------------------------------------------------------------
# bash, builtins only: `read -t` on a FIFO opened read-write is the delay
# (an external sleep would be a child, which capcr does not dump).
mkfifo "$T/fifo"
cat >"$T/loop.sh" <<'EOF'
s=0
declare -a hist=()
for ((i = 1; i <= 40; i++)); do
	s=$(( (s * 31 + i * i) % 1000003 ))
	hist+=("$s")
	printf 'step %d sum %d hist %d last %s\n' "$i" "$s" "${#hist[@]}" "${hist[-1]}"
	read -r -t 0.05 <>"$FIFO"
done
echo "done $s ${hist[*]:0:5}"
EOF
cr_mid bash out 18 41 env FIFO="$T/fifo" /bin/bash "$T/loop.sh"

# ---------------------------------------------------------------------------
# perl: a hash grows, 4-arg select sleeps.
cat >"$T/comp.pl" <<'EOF'
use strict; use warnings;
$| = 1;
my ($x, $s) = (1, 0);
my %h;
for my $step (1 .. 40) {
    for my $i (1 .. 30000) {
        $x = ($x * 1103515245 + 12345) % 2147483648;
        $h{$x % 4999}++;
    }
    $s = ($s + $x) % 1000000007;
    printf "step %d x %d s %d keys %d\n", $step, $x, $s, scalar(keys %h);
    select(undef, undef, undef, 0.03);
}
my $t = 0; $t += $h{$_} * $_ for sort { $a <=> $b } keys %h;
print "done $s $t\n";
EOF
if [ -x /usr/bin/perl ]; then
	cr_mid perl out 20 41 /usr/bin/perl "$T/comp.pl"
else
	SKIPS=$((SKIPS + 1))
	echo "skip - perl: /usr/bin/perl is not installed"
fi

# ---------------------------------------------------------------------------
# python3, dumped and restored 20 times: each cycle waits for one more line
# of output, dumps (which kills), waits for the holder (the original, then
# each capcr restore) to end, and restores in the foreground in the
# background.  The last restore runs it to its end.  The leash file lets
# it run at most two lines past the lines seen when the cycle began, so
# that it is still mid-run at the 20th dump however slow this test is.
STEPS=150
WORK=20000
"$PY" "$T/comp.py" $STEPS $WORK flush >"$T/cyc.ref" 2>"$T/cyc.referr" </dev/null
echo 1 >"$T/cyc.leash"
cr_start cyc "$PY" "$T/comp.py" $STEPS $WORK flush "$T/cyc.leash"
P=$SPID
holder=$P
cycles=0
lines_at=()
statuses=()
cr_wait_lines "$T/cyc.out" 2 20
for ((c = 1; c <= 20; c++)); do
	n0=$(cr_lines "$T/cyc.out")
	echo $((n0 + 1)) >"$T/cyc.leash"
	cr_wait_lines "$T/cyc.out" $((n0 + 1)) 10 || break
	mkdir "$T/cyc$c.img"
	cr_dump "cyc$c-dump" -t "$P" -D "$T/cyc$c.img"
	if [ "$RC" -ne 0 ]; then
		echo "      cycle $c: dump failed (status $RC)"
		show "$T/cyc$c-dump.log"
		break
	fi
	lines_at+=("$(cr_lines "$T/cyc.out")")
	cr_reap "$holder"
	statuses+=("$RC")
	if [ "$RC" -ne 137 ] && [ -z "${first_bad:-}" ]; then
		first_bad="cycle $c: the holder of PID $P ended with status $RC"
		[ $c -gt 1 ] && first_bad_log=$T/cyc$((c - 1))-restore.err
	fi
	cr_start "cyc$c-restore" timeout -k 2 $((30 * TSCALE)) "$CAPCR" restore -D "$T/cyc$c.img"
	holder=$SPID
	cycles=$c
done
check "python3: 20 dump/restore cycles went through" test "$cycles" -eq 20
echo "      lines at each dump: ${lines_at[*]}"
check "python3: dumps were taken at 20 different points" \
	test "$(printf '%s\n' "${lines_at[@]}" | sort -u | wc -l)" -eq 20
check "python3: still mid-run at the 20th dump" \
	test "${lines_at[19]:-999}" -lt $((STEPS + 1))
if [ -n "${first_bad:-}" ]; then
	not_ok "python3: each holder (original, then capcr restore) ended with 137"
	echo "      statuses: ${statuses[*]}"
	echo "      first: $first_bad"
	lsan_note "${first_bad_log:-/dev/null}"
else
	ok "python3: each holder (original, then capcr restore) ended with 137"
fi
echo $((STEPS + 1)) >"$T/cyc.leash"
cr_wait_exit "$holder" 30
LAST_LOG=$T/cyc$cycles-restore.err
check "python3: the last restore runs it to its end (status 0)" rc_is 0
for a in out err; do
	b=ref
	[ $a = err ] && b=referr
	if cmp -s "$T/cyc.$b" "$T/cyc.$a"; then
		ok "python3 after 20 cycles: std$a byte-identical to the uninterrupted run's"
	else
		not_ok "python3 after 20 cycles: std$a byte-identical to the uninterrupted run's"
		diff "$T/cyc.$b" "$T/cyc.$a" | head -n 10 | sed 's/^/      | /'
	fi
done

finish
