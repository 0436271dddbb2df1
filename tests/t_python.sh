#!/bin/bash
# End to end, the issue's "done when": `capcr run -- python3 -c SCRIPT`
# where the script opens files, pipes and sockets, prints their numbers and
# waits; `capcr caps --json` shows them all with the right kinds and
# provenance, and the interpreter's own descriptors, nothing missing and
# nothing stale.  Under shm and ipc.
. "$(dirname "$0")/lib.sh"

SCRIPT='
import json, os, signal, socket, sys
d = sys.argv[1]
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
f = open(os.path.join(d, "data.txt"), "w+")
rf = open("/etc/hostname", "rb")
r, w = os.pipe()
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen()
port = srv.getsockname()[1]
cli = socket.create_connection(("127.0.0.1", port))
acc, peer = srv.accept()
a, b = socket.socketpair()
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
u.bind("\0capcr-py-%d" % os.getpid())
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
ev = os.eventfd(7)
mfd = os.memfd_create("py-memfd")
dup = os.dup(f.fileno())
fds = dict(file=f.fileno(), rfile=rf.fileno(), pipe_r=r, pipe_w=w,
           listen=srv.fileno(), client=cli.fileno(), accepted=acc.fileno(),
           pair0=a.fileno(), pair1=b.fileno(), unix=u.fileno(), dir=dfd,
           eventfd=ev, memfd=mfd, dup=dup)
print("fds " + json.dumps(fds))
print("info port %d cport %d" % (port, peer[1]))
print("ready pid=%d" % os.getpid(), flush=True)
signal.sigtimedwait([signal.SIGUSR2], 40)
for x in (f, rf, srv, cli, acc, a, b, u):
    x.close()
for x in (r, w, dfd, ev, mfd, dup):
    os.close(x)
print("closed")
'

for mode in shm ipc; do
	mkdir -p "$T/$mode"
	start "py$mode" "$CAPCR" run --capinfo=$mode -- /usr/bin/python3 -c "$SCRIPT" "$T/$mode"
	if ! line=$(wait_line "py$mode" '^ready pid=' 30); then
		not_ok "$mode: the python script did not get ready"
		continue
	fi
	pid=$(field "$line" pid)
	caps "py$mode" "$pid"
	check "$mode: caps exits 0 without warnings" \
		test "$CRC" -eq 0 -a ! -s "$T/py$mode.cerr"
	[ -s "$T/py$mode.cerr" ] && head -n 5 "$T/py$mode.cerr"
	jcheck "$mode: every descriptor of the script, right kind and provenance" \
		"$T/py$mode.json" '
import json
out = open(args[0]).read().split("\n")
fds = json.loads([l for l in out if l.startswith("fds ")][0][4:])
info = [l.split() for l in out if l.startswith("info port")][0]
port, cport = info[2], info[4]
mode, tdir = args[1], args[2]
expect(d["monitored"] is True and d.get("region") == mode, "monitored %s region %s" % (d["monitored"], d.get("region")))
kinds = dict(file="file", rfile="file", pipe_r="pipe", pipe_w="pipe",
             listen="socket", client="socket", accepted="socket", pair0="socket",
             pair1="socket", unix="socket", dir="dir", eventfd="eventfd",
             memfd="memfd", dup="file")
origins = dict(file="open", rfile="open", pipe_r="pipe", pipe_w="pipe",
               listen="socket", client="socket", accepted="accept",
               pair0="socketpair", pair1="socketpair", unix="socket",
               dir="open", eventfd="create", memfd="create", dup="dup")
for name, fd in fds.items():
    c = cap(fd)
    expect(c["reported"] and c["kernel"] and c["badge"], "%s (fd %d): %s" % (name, fd, c))
    expect(c["kind"] == kinds[name], "%s: kind %s, expected %s" % (name, c["kind"], kinds[name]))
    o = c.get("provenance", {}).get("origin")
    expect(o == origins[name], "%s: origin %s, expected %s" % (name, o, origins[name]))
p = lambda n: cap(fds[n]).get("provenance", {})
expect(p("file").get("path") == tdir + "/data.txt", "file path %s" % p("file").get("path"))
expect(p("rfile").get("path") == "/etc/hostname", "rfile path %s" % p("rfile").get("path"))
expect(p("dir").get("path") == tdir, "dir path %s" % p("dir").get("path"))
expect(cap(fds["dup"])["badge"] == cap(fds["file"])["badge"], "dup has its own badge")
expect(p("pipe_r").get("peer_badge") == cap(fds["pipe_w"])["badge"], "pipe ends not paired")
expect(p("pair0").get("peer_badge") == cap(fds["pair1"])["badge"], "socketpair ends not paired")
expect(p("listen").get("listening") is True, "listener not listening: %s" % p("listen"))
expect(p("client").get("peer") == "127.0.0.1:" + port, "client peer %s" % p("client").get("peer"))
expect(p("accepted").get("peer") == "127.0.0.1:" + cport, "accepted peer %s" % p("accepted").get("peer"))
expect(p("accepted").get("peer_badge") == cap(fds["listen"])["badge"], "accepted: listener badge")
expect(p("unix").get("local") == "unix:@capcr-py-%d" % d["pid"], "unix local %s" % p("unix").get("local"))
expect(p("memfd").get("path") == "py-memfd", "memfd name %s" % p("memfd").get("path"))
expect(p("eventfd").get("arg") == 7, "eventfd initval %s" % p("eventfd").get("arg"))
for c in caps:
    if mode == "ipc" and c["kernel"] and not c["reported"] and c["fd"] >= 900:
        continue  # the runtime'"'"'s own PD session
    expect(c["reported"] and c["kernel"], "fd %d: reported %s kernel %s (%s)" % (c["fd"], c["reported"], c["kernel"], c.get("object")))
' "$T/py$mode.out" "$mode" "$T/$mode"
	go "$pid"
	wait_exit "$SPID" 20
	check "$mode: the script closes everything and exits 0 (exit $RC)" \
		test "$RC" -eq 0 -a -n "$(grep '^closed' "$T/py$mode.out")"
	[ "$RC" -eq 0 ] || show "$T/py$mode.err"
done
finish
