#!/bin/bash
# Hostile or broken targets: whatever a target does to its region, its cap
# map or its PD session, `capcr caps` answers (without waiting for the
# target: no check here on how long it takes, which depends on the load;
# the time is printed), exits 0, prints valid JSON, warns when the region cannot be trusted, lists the
# kernel's descriptors and never crashes.  A stopped target is read without
# its help; a dead one gives a clear error and a non-zero status.
. "$(dirname "$0")/lib.sh"

# strict_json NAME: the document is valid JSON in strict UTF-8 (RFC 8259).
strict_json() {
	"$PY" -c '
import json, sys
json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
' "$T/$1.json" >"$T/$1.strict" 2>&1
}

# plain_clean NAME PID: `capcr caps PID` (text) exits 0 and prints no control
# character a target could use to forge lines or drive the terminal.
plain_clean() {
	timeout $((10 * TSCALE)) "$CAPCR" caps "$2" >"$T/$1.txt" 2>/dev/null || return 1
	"$PY" -c '
import sys
b = open(sys.argv[1], "rb").read()
bad = sorted({c for c in b if (c < 0x20 and c != 0x0a) or c == 0x7f})
if bad:
    print("control bytes in the text output: %s" % [hex(c) for c in bad])
    sys.exit(1)
' "$T/$1.txt"
}

# What each mode must look like, beyond the common checks.
declare -A EXPECT=(
	[garbage]=untrusted [count]=untrusted [seq]=untrusted [spin]=either
	[pid]=untrusted [version]=untrusted [fake]=untrusted
	[lock]=trusted [badptr]=lying [kcap]=lying [entry]=lying
	[unmap]=none
)

# A target that scribbles over its own lock word does not hang in its
# runtime: the region is given up and flagged lost.
start hscribble "$CAPCR" run -- "$TPROGS/hostile" scribble
if line=$(wait_line hscribble '^ready pid=' 30); then
	ok "scribble: the target went on after scribbling its lock word"
	pid=$(field "$line" pid)
	"$CAPCR" caps "$pid" >"$T/hscribble.caps" 2>&1
	check "scribble: caps says the region is incomplete" \
		grep -q "the region is incomplete" "$T/hscribble.caps"
	kill -USR2 "$pid"
else
	not_ok "scribble: the target went on after scribbling its lock word"
fi

for mode in garbage lock count seq spin badptr kcap pid version fake unmap entry; do
	start "h$mode" "$CAPCR" run -- "$TPROGS/hostile" "$mode"
	if ! line=$(wait_line "h$mode" '^ready pid=' 20); then
		not_ok "$mode: hostile did not get ready"
		continue
	fi
	pid=$(field "$line" pid)
	marker=$(field "$line" marker)
	caps "h$mode" "$pid"
	check "$mode: caps exits 0 (exit $CRC, $CMS ms)" test "$CRC" -eq 0
	if strict_json "h$mode"; then
		ok "$mode: valid JSON (strict UTF-8)"
	else
		not_ok "$mode: valid JSON (strict UTF-8)"
		sed 's/^/      /' "$T/h$mode.strict" | tail -n 3
	fi
	jcheck "$mode: the kernel's descriptors are all listed, no bogus rows" \
		"$T/h$mode.json" '
import os
marker, pid = int(args[0]), d["pid"]
kfds = sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid))
for fd in kfds:
    r = [c for c in rows(fd) if c["kernel"]]
    expect(len(r) == 1, "kernel fd %d: %d kernel rows" % (fd, len(r)))
expect(cap(marker)["object"] == "/etc/hostname", "marker fd %d: %s" % (marker, cap(marker)))
for c in caps:
    expect(c["fd"] >= 0, "a negative fd is listed: %s" % c)
    pv = c.get("provenance", {})
    expect(len(pv.get("path", "")) < 176, "fd %d: path of %d chars" % (c["fd"], len(pv.get("path", ""))))
    for k in ("local", "peer"):
        expect(len(pv.get(k, "")) < 200, "fd %d: %s of %d chars" % (c["fd"], k, len(pv.get(k, ""))))
' "$marker"
	case ${EXPECT[$mode]} in
	untrusted)
		jcheck "$mode: region reported untrusted, nothing from it" \
			"$T/h$mode.json" '
expect(d["monitored"] is False and d.get("region") == "untrusted", "monitored %s region %s" % (d["monitored"], d.get("region")))
expect(d.get("problem"), "no problem named")
for c in caps:
    expect(c["kernel"] and not c["reported"] and c["badge"] is None, "fd %d: %s" % (c["fd"], c))
'
		check "$mode: caps warns on stderr" grep -q 'warning' "$T/h$mode.cerr"
		;;
	trusted)
		jcheck "$mode: a held lock does not stop the reader" "$T/h$mode.json" '
expect(d["monitored"] is True and d.get("region") == "shm", "monitored %s: %s" % (d["monitored"], d.get("problem")))
for c in caps:
    expect(c["kernel"] and c["reported"] and c["badge"], "fd %d: %s" % (c["fd"], c))
'
		check "$mode: no warning" test ! -s "$T/h$mode.cerr"
		;;
	lying)
		jcheck "$mode: nothing read through a bad pointer or a bad entry" \
			"$T/h$mode.json" '
marker = int(args[0])
m = cap(marker)
if args[1] != "badptr":
    expect(m["reported"] and m["badge"] and m["provenance"]["path"] == "/etc/hostname",
           "the honest entry (marker) was lost: %s" % m)
for c in caps:
    if c["badge"] is None:
        expect("provenance" not in c, "fd %d: provenance without a badge" % c["fd"])
' "$marker" "$mode"
		check "$mode: caps warns that the region's entries cannot all be trusted" \
			grep -q 'warning' "$T/h$mode.cerr"
		;;
	either)
		# A copy between two equal reads is rare but possible (the
		# writer was off the CPU): trusted then, else untrusted with
		# a warning.
		jcheck "$mode: either a consistent copy or untrusted with a warning" \
			"$T/h$mode.json" '
if d["monitored"]:
    expect(d.get("region") == "shm", "region %s" % d.get("region"))
else:
    expect(d.get("region") == "untrusted" and d.get("problem"), "region %s" % d.get("region"))
    expect(all(not c["reported"] for c in caps), "rows from an untrusted region")
    expect(open(args[0]).read().find("warning") >= 0, "no warning")
' "$T/h$mode.cerr"
		;;
	none)
		jcheck "$mode: without a region the process reads as not monitored" \
			"$T/h$mode.json" '
expect(d["monitored"] is False, "monitored %s" % d["monitored"])
for c in caps:
    expect(c["kernel"] and not c["reported"], "fd %d: %s" % (c["fd"], c))
'
		;;
	esac
	if plain_clean "h$mode" "$pid"; then
		ok "$mode: text output exits 0 and carries no control characters"
	else
		not_ok "$mode: text output exits 0 and carries no control characters"
		head -c 600 "$T/h$mode.txt" | cat -v | sed 's/^/      /'
	fi
	go "$pid"
	wait_exit "$SPID" 10
	check "$mode: the target ran to its end (exit $RC)" [ "$RC" -eq 0 ]
done

# A file name that is not UTF-8 and holds a terminal escape: the kernel's
# own object name must not break the JSON or drive the terminal either.
weird=$T/$'weird-\xff\xfe-\x1b[31mred\x1b[0m-"q"\\-\n-nl'
: >"$weird"
start weird "$CAPCR" run -- sh -c 'exec 3<"$1"; echo "ready pid=$$"; exec sleep 20' sh "$weird"
if line=$(wait_line weird '^ready pid=' 10); then
	pid=$(field "$line" pid)
	sleep 0.2
	caps weird "$pid"
	check "odd file name: caps exits 0" [ "$CRC" -eq 0 ]
	if strict_json weird; then
		ok "odd file name: valid JSON (strict UTF-8)"
	else
		not_ok "odd file name: valid JSON (strict UTF-8)"
		sed 's/^/      /' "$T/weird.strict" | tail -n 2
	fi
	if plain_clean weird "$pid"; then
		ok "odd file name: text output carries no control characters"
	else
		not_ok "odd file name: text output carries no control characters"
	fi
	kill -TERM "$SPID"
	wait_exit "$SPID" 10
else
	not_ok "odd file name: target did not start"
fi

# ipc: a target that floods its PD session with garbage requests, more than
# the region holds.  The monitor's copy overflows; caps still answers.
start ipcflood "$CAPCR" run --capinfo=ipc -- "$TPROGS/hostile" ipcflood
if line=$(wait_line ipcflood '^ready pid=' 30); then
	pid=$(field "$line" pid)
	marker=$(field "$line" marker)
	caps ipcflood "$pid"
	check "ipcflood: caps exits 0 (exit $CRC, $CMS ms)" test "$CRC" -eq 0
	check "ipcflood: valid JSON" strict_json ipcflood
	jcheck "ipcflood: the kernel's descriptors listed, overflow flagged" \
		"$T/ipcflood.json" '
import os
pid = d["pid"]
for fd in sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid)):
    expect(any(c["kernel"] for c in rows(fd)), "kernel fd %d missing" % fd)
expect(d.get("region") == "ipc", "region %s" % d.get("region"))
expect(d.get("region_flags", 0) & 2, "no OVERFLOW flag: %s" % d.get("region_flags"))
for c in caps:
    expect(c["fd"] >= 0, "negative fd listed")
'
	check "ipcflood: caps warns" grep -q 'warning' "$T/ipcflood.cerr"
	go "$pid"
	wait_exit "$SPID" 10
	check "ipcflood: capcr run survived the flood (exit $RC)" [ "$RC" -eq 0 ]
	grep -E '^(FAIL|info ipc)' "$T/ipcflood.out"
else
	not_ok "ipcflood: target did not get ready"
fi

# A target stopped at random points of a churn: caps reads it without its
# help, every time within a second.
start stop "$CAPCR" run -- "$TPROGS/lock_stress" 4 20000 4
if line=$(wait_line stop '^churning pid=' 20); then
	pid=$(field "$line" pid)
	slow=0 bad=0 mon=0
	for i in $(seq 12); do
		sleep 0.0$((RANDOM % 9 + 1))
		kill -STOP "$pid"
		caps "stop$i" "$pid"
		kill -CONT "$pid"
		[ "$CRC" -eq 0 ] || slow=$((slow + 1))
		strict_json "stop$i" || bad=$((bad + 1))
		grep -q '"monitored":true' "$T/stop$i.json" && mon=$((mon + 1))
	done
	check "stopped target: 12 reads, each exit 0 ($slow not)" [ $slow -eq 0 ]
	check "stopped target: each read valid JSON ($bad not)" [ $bad -eq 0 ]
	check "stopped target: the region was read consistently at least once ($mon of 12)" \
		[ $mon -ge 1 ]
	kill -STOP "$pid"
	caps stopped "$pid"
	check "stopped target: caps exits 0 ($CMS ms)" test "$CRC" -eq 0
	kill -KILL "$pid"
	wait_exit "$SPID" 10
	check "target killed by SIGKILL: capcr run exits 137 (got $RC)" [ "$RC" -eq 137 ]
	caps dead "$pid"
	check "dead target: caps exits non-zero (got $CRC)" [ "$CRC" -ne 0 ]
	check "dead target: a clear message" grep -q "no process with PID $pid" "$T/dead.cerr"
	check "dead target: nothing on stdout" test ! -s "$T/dead.json"
else
	not_ok "lock_stress did not start"
fi

# A zombie (dead, not yet reaped): it has no descriptors to show.
start zomb "$CAPCR" run -- sh -c 'sh -c "echo ready pid=\$\$; exit 0" & exec sleep 20'
if line=$(wait_line zomb '^ready pid=' 10); then
	zpid=$(field "$line" pid)
	for i in $(seq 50); do
		[ "$(awk '{print $3}' "/proc/$zpid/stat" 2>/dev/null)" = Z ] && break
		sleep 0.05
	done
	caps zomb "$zpid"
	check "zombie: caps exits non-zero with a message (exit $CRC: $(head -c 100 "$T/zomb.cerr"))" \
		test "$CRC" -ne 0 -a -s "$T/zomb.cerr" -a \
		-z "$(grep -E 'runtime error|Sanitizer' "$T/zomb.cerr")"
	kill -TERM "$SPID"
	wait_exit "$SPID" 10
else
	not_ok "zombie: did not start"
fi

# Bad arguments.
"$CAPCR" caps >/dev/null 2>&1
check "caps without a PID -> 2" [ $? -eq 2 ]
"$CAPCR" caps --json abc >/dev/null 2>&1
check "caps abc -> 2" [ $? -eq 2 ]
"$CAPCR" caps --json 0 >/dev/null 2>&1
check "caps 0 -> 2" [ $? -eq 2 ]
"$CAPCR" caps --json 99999999999 >/dev/null 2>&1
check "caps 99999999999 -> 2" [ $? -eq 2 ]
finish
