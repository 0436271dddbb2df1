#!/bin/bash
# capcr run: exit status passthrough, signals passed on to the target,
# errors, stdin/stdout, the environment it gives, and descendants monitored.
. "$(dirname "$0")/lib.sh"

"$CAPCR" run -- sh -c 'exit 7' </dev/null
check "exit 7 -> 7" [ $? -eq 7 ]
"$CAPCR" run -- sh -c 'exit 0' </dev/null
check "exit 0 -> 0" [ $? -eq 0 ]
"$CAPCR" run -- sh -c 'kill -TERM $$' </dev/null
check "target killed by SIGTERM -> 143" [ $? -eq 143 ]
"$CAPCR" run -- sh -c 'kill -KILL $$' </dev/null
check "target killed by SIGKILL -> 137" [ $? -eq 137 ]
"$CAPCR" run --capinfo=ipc -- sh -c 'exit 9' </dev/null
check "ipc: exit 9 -> 9" [ $? -eq 9 ]
"$CAPCR" run --capinfo=off -- sh -c 'exit 4' </dev/null
check "off: exit 4 -> 4" [ $? -eq 4 ]

"$CAPCR" run -- /nonexistent/program arg </dev/null >"$T/missing.out" 2>&1
rc=$?
check "missing program -> 127 (got $rc)" [ $rc -eq 127 ]
check "missing program: a message names it" grep -q '/nonexistent/program' "$T/missing.out"
"$CAPCR" run -- no-such-command-capcr-test </dev/null >"$T/missing2.out" 2>&1
check "missing command on PATH -> 127" [ $? -eq 127 ]
printf 'x' >"$T/notexec"
chmod 644 "$T/notexec"
"$CAPCR" run -- "$T/notexec" </dev/null >"$T/notexec.out" 2>&1
check "not executable -> 126" [ $? -eq 126 ]
"$CAPCR" run --capinfo=bogus -- true </dev/null >"$T/bogus.out" 2>&1
check "--capinfo=bogus -> 2 with a message" \
	test $? -eq 2 -a -s "$T/bogus.out"
"$CAPCR" run </dev/null >"$T/noprog.out" 2>&1
check "no program -> 2 (usage)" [ $? -eq 2 ]
CAPCR_RUNTIME=/nonexistent/libcapcr.so "$CAPCR" run -- true </dev/null \
	>"$T/nort.out" 2>&1
rc=$?
check "CAPCR_RUNTIME pointing nowhere -> an error, not a run" \
	test $rc -ne 0 -a -s "$T/nort.out"

out=$(echo "through stdin" | "$CAPCR" run -- cat)
check "stdin and stdout pass through" [ "$out" = "through stdin" ]
out=$("$CAPCR" run -- sh -c 'echo to-stderr >&2' 2>&1 >/dev/null </dev/null)
check "stderr passes through" [ "$out" = "to-stderr" ]
out=$("$CAPCR" run -- sh -c 'echo "$1|$2"' sh 'a b' 'c' </dev/null)
check "arguments pass through untouched" [ "$out" = "a b|c" ]
LIBC=$(ldd /bin/sh | awk '/libc.so/ {print $3}')
# (An ASan-built capcr must be told not to mind a preload of its own.)
# An ASan runtime (make SAN=1) comes after libasan, which must be first.
out=$(LD_PRELOAD=$LIBC ASAN_OPTIONS=verify_asan_link_order=0 "$CAPCR" run -- sh -c \
	'p=$LD_PRELOAD; [ -n "$1" ] && [ "${p%%:*}" = "$1" ] && { echo asan; p=${p#*:}; }
	echo "${p%%:*}"; echo "${p#*:}"; [ -n "$CAPCR_PD" ] && echo pd' sh "$RT_ASAN" \
	</dev/null)
if [ -n "$RT_ASAN" ]; then
	check "LD_PRELOAD: $RT_ASAN first (the runtime needs it)" \
		[ "$(head -n 1 <<<"$out")" = asan ]
	out=$(tail -n +2 <<<"$out")
fi
first=$(head -n 1 <<<"$out")
check "LD_PRELOAD: the runtime first ($first)" \
	[ "$(realpath "$first" 2>/dev/null)" = "$(realpath "$CAPCR_LIB")" ]
check "LD_PRELOAD: the user's preload kept, CAPCR_PD set" \
	[ "$(tail -n 2 <<<"$out" | tr '\n' ' ')" = "$LIBC pd " ]

# Signals sent to capcr reach the target.
for sig in TERM HUP; do
	start "sig$sig" "$CAPCR" run -- "$TPROGS/sigecho"
	if line=$(wait_line "sig$sig" '^ready pid=' 10); then
		kill -"$sig" "$SPID"
		wait_exit "$SPID" 10
		num=$(kill -l "$sig")
		check "SIG$sig to capcr reaches the target (exit $((10 + num)), got $RC)" \
			[ "$RC" -eq $((10 + num)) ]
		check "SIG$sig: the target saw it" grep -q "got SIG$sig" "$T/sig$sig.out"
	else
		not_ok "sigecho did not start"
	fi
done
start sigdef "$CAPCR" run -- sh -c 'echo "ready pid=$$"; exec sleep 30'
if line=$(wait_line sigdef '^ready pid=' 10); then
	tpid=$(field "$line" pid)
	sleep 0.2
	kill -TERM "$SPID"
	wait_exit "$SPID" 10
	check "SIGTERM to capcr, target without a handler: capcr exits 143 (got $RC)" \
		[ "$RC" -eq 143 ]
	check "the target is gone" sh -c "! kill -0 $tpid 2>/dev/null"
else
	not_ok "sh target did not start"
fi

# Descendants: a child and an exec'd grandchild are monitored with regions
# of their own.
start tree "$CAPCR" run -- sh -c \
	'exec 3</etc/hostname; sleep 20 & echo "ready pid=$$ kid=$!"; wait'
if line=$(wait_line tree '^ready pid=' 10); then
	sleep 0.3
	caps treep "$(field "$line" pid)"
	caps treec "$(field "$line" kid)"
	for w in treep treec; do
		jcheck "descendants: $w monitored, fd 3 inherited and reported" \
			"$T/$w.json" '
expect(d["monitored"] is True and d.get("region") == "shm", "not monitored: %s" % d.get("problem"))
c = cap(3)
expect(c["reported"] and c["kernel"] and c["object"] == "/etc/hostname", "fd 3: %s" % c)
'
	done
	kill -TERM "$SPID"
	wait_exit "$SPID" 10
else
	not_ok "tree did not start"
fi
finish
