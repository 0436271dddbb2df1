#!/bin/bash
# Every kind of descriptor, made every way the runtime wraps: caps must show
# each with the right kind, reported by the region and held by the kernel,
# with its provenance (origin, path, flags, addresses, the other end, the
# source of a duplicate).  After the target closes them all, none is left.
# Under --capinfo=shm and --capinfo=ipc.
. "$(dirname "$0")/lib.sh"

# The checks of one `caps --json` document against the program's "fd NAME N"
# and "info KEY VALUE" lines.
KIND_CHECKS='
import os
out = open(args[0]).read().split("\n")
fds = {l.split()[1]: int(l.split()[2]) for l in out if l.startswith("fd ")}
info = {l.split()[1]: l.split(None, 2)[2] for l in out if l.startswith("info ")}
mode, tdir, pid = args[1], args[2], d["pid"]
expect(d["monitored"] is True, "not monitored")
expect(d.get("region") == mode, "region %s, expected %s" % (d.get("region"), mode))
expect("problem" not in d, "problem: %s" % d.get("problem"))

def c(name):
    return cap(fds[name])
def p(name):
    return c(name).get("provenance", {})
def want(name, kind, origin, **kw):
    r = c(name)
    expect(r["kind"] == kind, "%s: kind %s, expected %s" % (name, r["kind"], kind))
    expect(r["reported"] and r["kernel"], "%s: reported %s kernel %s" % (name, r["reported"], r["kernel"]))
    expect(r["badge"], "%s: no badge" % name)
    pv = r.get("provenance", {})
    expect(pv.get("origin") == origin, "%s: origin %s, expected %s" % (name, pv.get("origin"), origin))
    for k, v in kw.items():
        if k == "flags_has":
            expect(pv.get("flags", 0) & v == v, "%s: provenance flags %#o lack %#o" % (name, pv.get("flags", 0), v))
        elif k == "cloexec":
            expect(r["cloexec"] == v, "%s: cloexec %s" % (name, r["cloexec"]))
        else:
            expect(pv.get(k) == v, "%s: %s = %r, expected %r" % (name, k, pv.get(k), v))

O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_DIRECTORY, O_CLOEXEC, O_NONBLOCK = 1, 2, 0o100, 0o1000, 0o200000, 0o2000000, 0o4000
want("file", "file", "open", path=tdir + "/file", mode=0o640, flags_has=O_RDWR | O_CREAT | O_TRUNC, cloexec=False)
want("dirfd", "dir", "open", path=tdir, flags_has=O_DIRECTORY)
want("openat", "file", "open", path="file", dirfd=fds["dirfd"])
want("fopen", "file", "open", path=tdir + "/file", stdio=True, flags_has=O_CLOEXEC, cloexec=True)
want("opendir", "dir", "opendir", path=tdir, stdio=True)
want("creat", "file", "open", path=tdir + "/creat", flags=O_CREAT | O_WRONLY | O_TRUNC, mode=0o600)
want("devnull", "chardev", "open", path="/dev/null", flags=O_WRONLY)
want("ptmx", "chardev", "open", path="/dev/ptmx")
want("mkstemp", "file", "temp", path=info["mkstemp"])
want("tmpfile", "file", "temp", stdio=True)
want("pipe_r", "pipe", "pipe", arg=0, peer_badge=c("pipe_w")["badge"], cloexec=False)
want("pipe_w", "pipe", "pipe", arg=1, peer_badge=c("pipe_r")["badge"])
want("pipe2_r", "pipe", "pipe", arg=0, peer_badge=c("pipe2_w")["badge"], flags_has=O_CLOEXEC | O_NONBLOCK, cloexec=True)
want("pipe2_w", "pipe", "pipe", arg=1, peer_badge=c("pipe2_r")["badge"], cloexec=True)
want("fifo", "fifo", "open", path=tdir + "/fifo", flags=O_RDWR)
want("popen", "pipe", "pipe", path="cat >/dev/null", stdio=True)
want("unix_listen", "socket", "socket", domain=1, type=1, listening=True, local="unix:@" + info["abstract"])
want("path_listen", "socket", "socket", domain=1, type=1, listening=True, local="unix:" + info["sockpath"], flags_has=O_CLOEXEC, cloexec=True)
want("path_client", "socket", "socket", domain=1, listening=False, peer="unix:" + info["sockpath"])
want("path_accepted", "socket", "accept", peer_badge=c("path_listen")["badge"], local="unix:" + info["sockpath"], cloexec=True)
want("pair0", "socket", "socketpair", domain=1, type=2, arg=0, peer_badge=c("pair1")["badge"])
want("pair1", "socket", "socketpair", domain=1, type=2, arg=1, peer_badge=c("pair0")["badge"])
want("inet_listen", "socket", "socket", domain=2, type=1, listening=True, local="127.0.0.1:" + info["port"])
want("inet_client", "socket", "socket", domain=2, type=1, listening=False, peer="127.0.0.1:" + info["port"])
want("inet_accepted", "socket", "accept", domain=2, peer="127.0.0.1:" + info["cport"], local="127.0.0.1:" + info["port"], peer_badge=c("inet_listen")["badge"])
want("inet_listen0", "socket", "socket", domain=2, listening=True, flags_has=O_NONBLOCK)
want("eventfd", "eventfd", "create", arg=42, cloexec=True)
want("epoll", "epoll", "create", cloexec=True)
want("timerfd", "timerfd", "create", arg=1, flags_has=O_NONBLOCK)
want("signalfd", "signalfd", "create", arg=1 << 9, cloexec=True)
want("inotify", "inotify", "create", flags_has=O_NONBLOCK)
want("memfd", "memfd", "create", path="capcr-test-memfd", cloexec=True)
expect(c("memfd").get("object", "").startswith("/memfd:capcr-test-memfd"), "memfd object %s" % c("memfd").get("object"))
want("pidfd", "pidfd", "create", arg=pid)
fb = c("file")["badge"]
for n, ce in (("dup", False), ("dup2", False), ("dup3", True), ("dupfd", False), ("dupfd_cloexec", True)):
    want(n, "file", "dup", path=tdir + "/file", cloexec=ce)
    expect(c(n)["badge"] == fb, "%s: badge %s, its source has %s" % (n, c(n)["badge"], fb))
expect(fds["dup2"] == 100 and fds["dup3"] == 101 and fds["dupfd"] >= 200 and fds["dupfd_cloexec"] >= 210, "dup numbers %s" % fds)
want("received", "file", "received", path=tdir + "/file", peer_badge=c("xfer_recv")["badge"], cloexec=True)

# Badges: one per object.
dups = {"dup", "dup2", "dup3", "dupfd", "dupfd_cloexec"}
bs = [c(n)["badge"] for n in fds if n not in dups]
expect(len(bs) == len(set(bs)), "two objects share a badge")
# Nothing else odd in the table.
for r in caps:
    if mode == "ipc" and r["kernel"] and not r["reported"] and r["fd"] >= 900 and r["kind"] == "socket":
        continue  # the runtime'"'"'s own PD session
    expect(r["reported"] and r["kernel"], "fd %d: reported %s kernel %s" % (r["fd"], r["reported"], r["kernel"]))
'

run_kinds() { # MODE
	local mode=$1 line pid dir=$T/$1
	mkdir -p "$dir"
	start "k$mode" "$CAPCR" run --capinfo="$mode" -- "$TPROGS/every_kind" "$dir"
	if ! line=$(wait_line "k$mode" '^ready pid=.* phase=open' 20); then
		not_ok "$mode: every_kind did not get ready"
		return
	fi
	pid=$(field "$line" pid)
	caps "k$mode" "$pid"
	check "$mode: caps exits 0 in $CMS ms, no warning" \
		test "$CRC" -eq 0 -a ! -s "$T/k$mode.cerr"
	[ -s "$T/k$mode.cerr" ] && cat "$T/k$mode.cerr"
	jcheck "$mode: every kind, reported, with its provenance" "$T/k$mode.json" \
		"$KIND_CHECKS" "$T/k$mode.out" "$mode" "$dir"
	jcheck "$mode: a listener bound to port 0 records the port it got" \
		"$T/k$mode.json" '
out = open(args[0]).read().split("\n")
fds = {l.split()[1]: int(l.split()[2]) for l in out if l.startswith("fd ")}
info = {l.split()[1]: l.split(None, 2)[2] for l in out if l.startswith("info ")}
local = cap(fds["inet_listen0"]).get("provenance", {}).get("local")
expect(local == "127.0.0.1:" + info["port0"],
       "local %s, but the kernel bound 127.0.0.1:%s: a restore cannot re-create it" % (local, info["port0"]))
' "$T/k$mode.out"

	go "$pid"
	if ! wait_line "k$mode" '^ready pid=.* phase=closed' 20 >/dev/null; then
		not_ok "$mode: every_kind did not close its descriptors"
		return
	fi
	caps "k${mode}c" "$pid"
	check "$mode: caps after closing exits 0" [ "$CRC" -eq 0 ]
	jcheck "$mode: after closing, none of them is left" "$T/k${mode}c.json" '
out = open(args[0]).read().split("\n")
fds = {l.split()[1]: int(l.split()[2]) for l in out if l.startswith("fd ")}
expect(d["monitored"] is True, "not monitored")
for n, fd in fds.items():
    expect(not rows(fd), "%s (fd %d) still listed: %s" % (n, fd, rows(fd)))
for r in caps:
    if args[1] == "ipc" and r["kernel"] and not r["reported"] and r["fd"] >= 900:
        continue
    expect(r["reported"] and r["kernel"], "fd %d: reported %s kernel %s" % (r["fd"], r["reported"], r["kernel"]))
' "$T/k$mode.out" "$mode"
	go "$pid"
	wait_exit "$SPID" 20
	check "$mode: every_kind exits 0 (its own checks)" [ "$RC" -eq 0 ]
	grep '^FAIL' "$T/k$mode.out" | head -n 10
}

run_kinds shm
run_kinds ipc
finish
