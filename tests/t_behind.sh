#!/bin/bash
# Behind the runtime's back: descriptors made or closed by raw system calls
# are still listed (from the kernel), and a static binary, which the runtime
# cannot be preloaded into, runs unmonitored with a kernel-only table.
. "$(dirname "$0")/lib.sh"

start raw "$CAPCR" run -- "$TPROGS/behind"
if line=$(wait_line raw '^ready pid=' 20); then
	pid=$(field "$line" pid)
	caps raw "$pid"
	check "caps exits 0" [ "$CRC" -eq 0 ]
	jcheck "raw syscalls: kernel-only, stale and reused descriptors" "$T/raw.json" '
out = open(args[0]).read().split("\n")
fds = {l.split()[1]: int(l.split()[2]) for l in out if l.startswith("fd ")}
expect(d["monitored"] is True, "not monitored")
r = cap(fds["raw"])
expect(not r["reported"] and r["kernel"] and r["badge"] is None, "raw openat: %s" % r)
expect(r["kind"] == "file" and r["object"] == "/etc/hostname", "raw openat: %s" % r)
r = cap(fds["stale"])
expect(r["reported"] and not r["kernel"], "closed by raw syscall: %s" % r)
r = cap(fds["reused"])
expect(r["reported"] and r["kernel"] and r["kind"] == "chardev", "reused: %s" % r)
expect(r.get("provenance", {}).get("path") == "/dev/zero", "reused: stale provenance %s" % r)
r = cap(fds["rawdup"])
expect(r["reported"] and r["kernel"], "dup2 behind the back: %s" % r)
expect(r["object"] == "/dev/zero", "rawdup object %s" % r)
' "$T/raw.out"
	check "caps warns about the descriptor the kernel does not have" \
		grep -q "fd 300, which the kernel does not have" "$T/raw.cerr"
	go "$pid"
	wait_exit "$SPID" 20
	check "behind exits 0 (its own checks)" [ "$RC" -eq 0 ]
	grep '^FAIL' "$T/raw.out"
else
	not_ok "behind did not get ready"
fi

start static "$CAPCR" run -- "$TPROGS/behind-static"
if line=$(wait_line static '^ready pid=' 20); then
	pid=$(field "$line" pid)
	caps static "$pid"
	check "static: caps exits 0" [ "$CRC" -eq 0 ]
	jcheck "static: not monitored, every descriptor from the kernel only" \
		"$T/static.json" '
out = open(args[0]).read().split("\n")
fds = {l.split()[1]: int(l.split()[2]) for l in out if l.startswith("fd ")}
expect(d["monitored"] is False, "monitored: %s" % d["monitored"])
expect("region" not in d, "region: %s" % d.get("region"))
for r in caps:
    expect(r["kernel"] and not r["reported"] and r["badge"] is None, "fd %d: %s" % (r["fd"], r))
expect(cap(fds["file"])["kind"] == "file", "file kind")
expect(cap(fds["pipe_r"])["kind"] == "pipe" and cap(fds["pipe_w"])["kind"] == "pipe", "pipe kinds")
for fd in (0, 1, 2):
    expect(rows(fd), "fd %d missing" % fd)
' "$T/static.out"
	check "static: no warning from caps" test ! -s "$T/static.cerr"
	go "$pid"
	wait_exit "$SPID" 20
	check "static: exit status passed through (0)" [ "$RC" -eq 0 ]
else
	not_ok "behind-static did not get ready"
fi
# A process without any descriptor (close_range of everything): caps lists
# an empty table, monitored, without tripping over the empty list.
start none "$CAPCR" run -- "$TPROGS/closeall"
if line=$(wait_line none '^ready pid=' 20); then
	pid=$(field "$line" pid)
	for i in $(seq 50); do
		[ -z "$(ls "/proc/$pid/fd" 2>/dev/null)" ] && break
		sleep 0.02
	done
	caps none "$pid"
	check "no descriptors: caps exits 0 ($CRC)" [ "$CRC" -eq 0 ]
	jcheck "no descriptors: monitored, an empty table" "$T/none.json" '
expect(d["monitored"] is True, "monitored %s (%s)" % (d["monitored"], d.get("problem")))
expect(caps == [], "caps: %s" % caps)
'
	go "$pid"
	wait_exit "$SPID" 10
	check "no descriptors: the runtime kept up with close_range (exit $RC)" [ "$RC" -eq 0 ]
else
	not_ok "closeall did not get ready"
fi
finish
