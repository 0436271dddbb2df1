#!/bin/bash
# The region's lock under contention: 8 threads x 20000 open/close (and
# pipes, dups) again and again until this test has taken its snapshots,
# while the target checks its own region with
# the sequence-lock protocol and this test runs `capcr caps --json` again
# and again from outside.  Every copy must be consistent; at rest the region
# must be exactly the kernel's table; the target must stay alive.
. "$(dirname "$0")/lib.sh"

start stress "$CAPCR" run -- "$TPROGS/lock_stress" 8 20000 -1
line=$(wait_line stress '^churning pid=' 20) || {
	not_ok "lock_stress did not start"
	finish
}
pid=$(field "$line" pid)
stable=$(field "$line" stable)

# The concurrent reader from outside: NSNAP snapshots during the churn,
# however long they take; then SIGUSR1 ends the churn (lock_stress churns
# until it comes), and the reader goes on until the target is at rest.
NSNAP=5
n=0
: >"$T/rcs"
while ! grep -q '^ready' "$T/stress.out" && alive "$pid" && [ $n -lt 400 ]; do
	caps "snap$n" "$pid"
	echo "$n $CRC $CMS" >>"$T/rcs"
	n=$((n + 1))
	[ $n -eq $NSNAP ] && kill -USR1 "$pid"
done
[ $n -lt $NSNAP ] && kill -USR1 "$pid" 2>/dev/null
if wait_line stress '^ready pid=' 30 >/dev/null; then
	ok "the target survived the churn and the readers"
else
	not_ok "the target survived the churn and the readers"
fi
check "took $n snapshots from outside during the churn" [ $n -ge $NSNAP ]

# Every snapshot: caps exited 0 (how long it took is for make bench), valid JSON, the stable
# descriptors held by the kernel; when the region was read (monitored), the
# stable ones reported with one badge each that never changed, and no
# descriptor reported twice.
"$PY" - "$T" "$stable" <<'EOF' >"$T/snaps.log" 2>&1
import json, os, sys
d, stable = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
bad, mon, badges = [], 0, {}
for line in open(os.path.join(d, "rcs")):
    n, rc, ms = map(int, line.split())
    if rc != 0:
        bad.append("snapshot %d: exit %d after %d ms: %s" % (n, rc, ms,
                   open(os.path.join(d, "snap%d.cerr" % n)).read()[-300:]))
        continue
    try:
        doc = json.load(open(os.path.join(d, "snap%d.json" % n)))
    except Exception as ex:
        bad.append("snapshot %d: not JSON: %s" % (n, ex))
        continue
    caps = doc["caps"]
    for fd in stable:
        r = [c for c in caps if c["fd"] == fd]
        if len(r) != 1 or not r[0]["kernel"]:
            bad.append("snapshot %d: stable fd %d: %s" % (n, fd, r))
    if not doc["monitored"]:
        continue
    mon += 1
    if doc.get("region") != "shm":
        bad.append("snapshot %d: region %s" % (n, doc.get("region")))
    rep = [c["fd"] for c in caps if c["reported"]]
    if len(rep) != len(set(rep)):
        bad.append("snapshot %d: a descriptor reported twice: %s" % (n, rep))
    for fd in stable:
        r = [c for c in caps if c["fd"] == fd][0]
        if not r["reported"] or not r["badge"]:
            bad.append("snapshot %d: stable fd %d not reported: %s" % (n, fd, r))
            continue
        if badges.setdefault(fd, r["badge"]) != r["badge"]:
            bad.append("snapshot %d: stable fd %d changed badge" % (n, fd))
print("%d snapshots, %d read the region consistently" %
      (sum(1 for _ in open(os.path.join(d, "rcs"))), mon))
for b in bad[:20]:
    print(b)
json.dump(badges, open(os.path.join(d, "badges.json"), "w"))
sys.exit(1 if bad or mon == 0 else 0)
EOF
prc=$?
check "every snapshot during the churn was consistent ($(head -n 1 "$T/snaps.log"))" \
	test $prc -eq 0 || cat "$T/snaps.log"

# At rest: exactly the kernel's table, nothing lost, same badges.
caps rest "$pid"
check "caps at rest exits 0" [ "$CRC" -eq 0 ]
check "caps at rest prints no warning" test ! -s "$T/rest.cerr" ||
	cat "$T/rest.cerr"
jcheck "at rest the region is exactly the kernel's table" "$T/rest.json" '
import json
expect(d["monitored"] is True and d["region"] == "shm", "not monitored")
expect(d["region_flags"] & 6 == 0, "flags %#x (LOST/OVERFLOW)" % d["region_flags"])
for c in caps:
    expect(c["reported"] and c["kernel"], "fd %d: reported %s kernel %s" %
           (c["fd"], c["reported"], c["kernel"]))
    expect(c["badge"], "fd %d: no badge" % c["fd"])
badges = json.load(open(args[0]))
for fd, b in badges.items():
    expect(cap(fd)["badge"] == b, "stable fd %s: badge %s, was %s" %
           (fd, cap(fd)["badge"], b))
for fd in args[1].split(","):
    expect(cap(fd)["kind"] == "chardev", "stable fd %s kind" % fd)
' "$T/badges.json" "$stable"

go "$pid"
wait_exit "$SPID" 20
check "lock_stress exits 0 (its own checks passed)" [ "$RC" -eq 0 ]
check "lock_stress says PASS" grep -q '^PASS lock_stress' "$T/stress.out"
[ "$RC" -eq 0 ] || show "$T/stress.out" "$T/stress.err"

# The same churn in ipc mode (one request per change; fewer of them), and
# the ipc lock: the final table must be exact, save the runtime's session.
start ipc "$CAPCR" run --capinfo=ipc -- "$TPROGS/lock_stress" 8 1500 0 ipc
if line=$(wait_line ipc '^ready pid=' 40); then
	pid=$(field "$line" pid)
	caps ipcrest "$pid"
	check "ipc: caps at rest exits 0" [ "$CRC" -eq 0 ]
	jcheck "ipc: at rest the monitor's copy is exactly the kernel's table" \
		"$T/ipcrest.json" '
expect(d["monitored"] is True and d["region"] == "ipc", "not monitored via ipc")
expect(d["region_flags"] & 6 == 0, "flags %#x" % d["region_flags"])
for c in caps:
    if c["kernel"] and not c["reported"] and c["fd"] >= 900 and c["kind"] == "socket":
        continue  # the runtime'"'"'s own PD session
    expect(c["reported"] and c["kernel"], "fd %d: reported %s kernel %s" %
           (c["fd"], c["reported"], c["kernel"]))
'
	go "$pid"
	wait_exit "$SPID" 20
	check "ipc: lock_stress exits 0" [ "$RC" -eq 0 ]
	[ "$RC" -eq 0 ] || show "$T/ipc.out" "$T/ipc.err"
else
	not_ok "ipc: lock_stress did not get ready"
fi
finish
