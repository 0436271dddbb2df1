#!/bin/bash
# SPDX-License-Identifier: MIT
# A connection whose peer is outside the checkpointed processes: a client
# connected to a TCP server on loopback that is not dumped.
#   - by default the dump is refused, naming the socket and the peer, and
#     the client goes on untouched;
#   - with --external-sockets=closed it comes back as a connection whose
#     peer has gone (recv gives end of file);
#   - when the application allowed it (capcr_allow_reconnect, through the
#     capability-space protocol) it is connected again to the same server.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root"
cat >"$T/srv.py" <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen()
print("port", s.getsockname()[1], flush=True)
n = 0
while True:
    c, a = s.accept(); n += 1
    c.sendall(b"hello %d\n" % n); c.close()
PY
cat >"$T/cli.py" <<'PY'
import socket, sys, time, ctypes, os
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "allow":
    print("allow", ctypes.CDLL(None).capcr_allow_reconnect(c.fileno()), flush=True)
print("first", c.recv(100), flush=True)
print("ready pid=%d" % os.getpid(), flush=True)
for i in range(40): time.sleep(0.05)
print("after", c.recv(100), flush=True)
PY
start srv "$PY" "$T/srv.py"
port=$(wait_line srv '^port ' | awk '{print $2}')

# client MODE: start it under capcr run; sets CPID (the client), MPID.
client() {
	start "cli.$1" "$CAPCR" run -- "$PY" "$T/cli.py" "$port" "$1"
	MPID=$SPID
	CPID=$(wait_line "cli.$1" '^ready pid=' | sed 's/.*=//')
	mkdir -p "$T/img.$1"
}

client refuse
"$CAPCR" dump -t "$CPID" -D "$T/img.refuse" >"$T/d.refuse" 2>&1
check "refused: dump exits non-zero" [ $? -ne 0 ]
check "refused: the message names the socket and its peer" \
	grep -q "connected socket (127.0.0.1:[0-9]*, peer 127.0.0.1:$port)" "$T/d.refuse"
check "refused: the message says how to allow it" \
	grep -q "capcr_allow_reconnect" "$T/d.refuse"
check "refused: no image" [ ! -e "$T/img.refuse/inventory.img" ]
wait "$MPID"
check "refused: the client went on untouched" \
	grep -q "^after b''" "$T/cli.refuse.out"

client closed
"$CAPCR" dump -t "$CPID" -D "$T/img.closed" --external-sockets=closed \
	>"$T/d.closed" 2>&1
check "closed: dump succeeds" [ $? -eq 0 ]
wait "$MPID"
"$CAPCR" restore -D "$T/img.closed" >"$T/r.closed" 2>&1
check "closed: restore exits 0" [ $? -eq 0 ]
check "closed: the restored connection reads end of file" \
	grep -q "^after b''" "$T/cli.closed.out"

client allow
check "allow: capcr_allow_reconnect returned 0" grep -q "^allow 0" "$T/cli.allow.out"
"$CAPCR" dump -t "$CPID" -D "$T/img.allow" >"$T/d.allow" 2>&1
check "allow: dump succeeds" [ $? -eq 0 ]
wait "$MPID"
"$CAPCR" restore -D "$T/img.allow" >"$T/r.allow" 2>&1
check "allow: restore exits 0" [ $? -eq 0 ]
check "allow: connected again to the same server (a new session)" \
	grep -Eq "^after b'hello [0-9]+" "$T/cli.allow.out"
show "$T/d.refuse" "$T/cli.refuse.out" "$T/cli.closed.out" "$T/cli.allow.out" \
	"$T/r.closed" "$T/r.allow" >/dev/null
finish
