#!/bin/bash
# Descriptors opened and closed in signal handlers.
#
# sig_open: SIGALRM every 100 us and a stream of SIGUSR1 whose handlers open,
# close and keep descriptors while the main thread opens and closes in a
# tight loop.  Afterwards caps must show every descriptor reported and none
# stale (unless a burst of handlers overflowed the runtime's queue: LOST).
#
# defer_reuse: the same, made deterministic: the handler runs while the main
# thread is inside the runtime's critical section (a helper thread holds the
# lock word), and reuses a descriptor number it just closed.
. "$(dirname "$0")/lib.sh"

# exact NAME [lost-ok]: the caps document in $T/NAME.json is the kernel's
# table.  With lost-ok, a LOST flag (the handlers' queue overflowed, which a
# burst of signals can do by design) excuses missing and stale entries, but
# never a descriptor listed twice.
exact() {
	jcheck "$1: every kernel descriptor reported, none stale, none twice" \
		"$T/$1.json" '
expect(d["monitored"] is True, "not monitored")
lost = d.get("region_flags", 0) & 4
if lost:
    print("note: LOST flag set")
expect(not lost or args[0] == "lost-ok", "LOST flag set: %s" % d.get("region_flags"))
seen = set()
for c in caps:
    n = len(rows(c["fd"]))
    if c["fd"] not in seen:
        expect(n == 1, "fd %d listed %d times" % (c["fd"], n))
    seen.add(c["fd"])
    if lost and args[0] == "lost-ok":
        continue
    expect(c["kernel"], "fd %d reported but the kernel does not have it (stale)" % c["fd"])
    expect(c["reported"], "fd %d (%s) held but not reported" % (c["fd"], c.get("object")))
' "${2:-}"
}

start sig "$CAPCR" run -- "$TPROGS/sig_open" 1.5 2
if line=$(wait_line sig '^ready pid=' 30); then
	pid=$(field "$line" pid)
	kept=$(field "$line" kept)
	caps sig "$pid"
	check "sig_open: caps exits 0" [ "$CRC" -eq 0 ]
	exact sig lost-ok
	jcheck "sig_open: the descriptors kept by the handlers are there" \
		"$T/sig.json" '
for fd in args[0].split(","):
    if int(fd) <= 0:
        continue
    c = rows(fd)[0]
    expect(c["reported"] and c["kernel"] and c["kind"] == "chardev",
           "kept fd %s: %s" % (fd, c))
    expect(c.get("provenance", {}).get("origin") == "open" and
           c["provenance"].get("path") == "/dev/null", "kept fd %s: %s" % (fd, c))
' "$kept"
	go "$pid"
	wait_exit "$SPID" 20
	check "sig_open: its own checks pass (exit 0)" [ "$RC" -eq 0 ]
	grep -E '^(FAIL|main loop)' "$T/sig.out" | head -n 12
else
	not_ok "sig_open did not get ready"
fi

for mode in fresh published overflow; do
	start "d$mode" "$CAPCR" run -- "$TPROGS/defer_reuse" "$mode"
	if ! line=$(wait_line "d$mode" '^ready pid=' 20); then
		not_ok "defer_reuse $mode did not get ready"
		continue
	fi
	pid=$(field "$line" pid)
	kept=$(field "$line" kept)
	caps "d$mode" "$pid"
	check "defer_reuse $mode: caps exits 0" [ "$CRC" -eq 0 ]
	if [ "$mode" = overflow ]; then
		jcheck "defer_reuse overflow: the region says LOST" "$T/d$mode.json" '
expect(d["monitored"] is True, "not monitored")
expect(d["region_flags"] & 4, "no LOST flag: %s" % d["region_flags"])
for c in caps:
    expect(c["kernel"], "fd %d reported, kernel does not have it" % c["fd"])
'
		check "defer_reuse overflow: caps warns that updates were lost" \
			grep -qi 'lost' "$T/d$mode.cerr"
	else
		exact "d$mode"
		jcheck "defer_reuse $mode: the descriptor opened in the handler has a badge" \
			"$T/d$mode.json" '
c = cap(args[0])
expect(c["reported"] and c["badge"], "fd %s: %s" % (args[0], c))
' "$kept"
	fi
	go "$pid"
	wait_exit "$SPID" 20
	check "defer_reuse $mode: its own checks pass (exit 0)" [ "$RC" -eq 0 ]
	grep '^FAIL' "$T/d$mode.out" | head -n 5
done
finish
