#!/bin/bash
# fork() while another thread holds the lock: 200 forks must not deadlock,
# each child must get a region of its own; a child that stays shows the
# inherited descriptors with the parent's badges and is monitored.  Then the
# same with --capinfo=ipc (each process its own PD session).
. "$(dirname "$0")/lib.sh"

run_mode() { # MODE NFORKS
	local mode=$1 nforks=$2 line pid kid fds badges
	local ipc=
	[ "$mode" = ipc ] && ipc=ipc
	start "f$mode" "$CAPCR" run --capinfo="$mode" -- \
		"$TPROGS/fork_stress" "$nforks" $ipc
	if ! line=$(wait_line "f$mode" '^ready pid=' 45); then
		not_ok "$mode: fork_stress did not get through $nforks forks"
		return
	fi
	ok "$mode: $nforks forks with a busy thread, no deadlock"
	pid=$(field "$line" pid)
	kid=$(field "$line" child)
	fds=$(field "$line" fds)
	badges=$(field "$line" badges)
	caps "p$mode" "$pid"
	caps "c$mode" "$kid"
	check "$mode: caps on parent and child exit 0" [ "$CRC" -eq 0 ]
	for who in p c; do
		jcheck "$mode: $who: monitored, the fds have the parent's badges" \
			"$T/$who$mode.json" '
expect(d["monitored"] is True, "not monitored")
expect(d.get("region") == args[2], "region %s" % d.get("region"))
for fd, b in zip(args[0].split(","), args[1].split(",")):
    c = cap(fd)
    expect(c["reported"] and c["kernel"], "fd %s: %s" % (fd, c))
    expect(c["badge"] == int(b), "fd %s: badge %s, parent had %s" % (fd, c["badge"], b))
kinds = [cap(fd)["kind"] for fd in args[0].split(",")]
expect(kinds == ["file", "pipe", "pipe", "socket", "socket"], "kinds %s" % kinds)
for c in caps:
    if c["kernel"] and not c["reported"] and c["fd"] >= 900 and args[2] == "ipc":
        continue  # the runtime'"'"'s own PD session
    expect(c["reported"] and c["kernel"], "fd %d: reported %s kernel %s" %
           (c["fd"], c["reported"], c["kernel"]))
' "$fds" "$badges" "$mode"
	done
	jcheck "$mode: the child's own new descriptor has a badge of its own series" \
		"$T/c$mode.json" '
parent = {int(b) >> 32 for b in args[0].split(",")}
mine = [c for c in caps if c.get("badge") and c["badge"] >> 32 not in parent]
expect(len(mine) == 1 and mine[0]["kind"] == "chardev", "new in child: %s" % mine)
' "$badges"
	go "$kid"
	go "$pid"
	wait_exit "$SPID" 30
	check "$mode: fork_stress exits 0 (its children passed their checks)" \
		[ "$RC" -eq 0 ]
	grep -E '^(FAIL|[0-9]+ forks)' "$T/f$mode.out" | head -n 12
}

run_mode shm 200
run_mode ipc 50
finish
