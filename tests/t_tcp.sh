#!/bin/bash
# Established TCP connections (src/files/tcp.c, TCP_REPAIR) with
# tests/progs/cr_tcp.c: IPv4 and IPv6 loopback connections inside one
# process and one across a fork, bytes in flight both ways (part of them
# never sent), options set; after the go file every byte must arrive once
# and in order, round trips work, addresses and options are as they were.
#
#   plain       cr_tcp runs without a dump and passes
#   cycle       dump (the processes are killed with their sockets in repair
#               mode), restore: it passes, with the same output; the dump
#               leaves no nftables block behind
#   running     dump -R: the original goes on (its sockets out of repair
#               mode) and passes
#   outside     a connection to an echo server outside the tree (python3 on
#               127.0.0.1): dump without --tcp-established is refused,
#               naming the option; dump --tcp-established kills the
#               process, and the server sees its connection still
#               established, no reset, while it is blocked; restore without
#               the option is refused, with it the connection comes back,
#               the server's echo of what was in flight arrives, the block
#               is gone, and the server never saw a reset
#
# Run alone: tests/t_tcp.sh (from the top directory, after make all), or
# through tests/run.sh.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_tcp
NFT=$(command -v nft || echo /usr/sbin/nft)

# blocked PORT: an element of capcr's nftables sets names PORT.
blocked() {
	"$NFT" list table inet capcr 2>/dev/null | grep -q "\. $1 \."
}

# ---- plain, cycle ----
cr_plain tcp.p cr_tcp
cr_cycle tcp.c cr_tcp
cr_same_output tcp.p tcp.c "cr_tcp"
if [ -x "$NFT" ]; then
	n=$("$NFT" list table inet capcr 2>/dev/null | grep -c "elements")
	check "the dump left no nftables block (sets with elements: $n)" [ "$n" -eq 0 ]
fi

# ---- running: dump -R ----
cr_live tcp.r cr_tcp

# ---- outside: a peer outside the tree, --tcp-established ----
if [ ! -x "$NFT" ]; then
	echo "outside: not run: nft is missing (scripts/deps.sh installs nftables)"
	finish
fi
start echo "$PY" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1)
print("port=%d" % s.getsockname()[1], flush=True)
c, _ = s.accept()
total = 0
end = time.time() + float(sys.argv[1])
c.settimeout(0.2)
while time.time() < end:
    try:
        d = c.recv(65536)
    except socket.timeout:
        continue
    except ConnectionResetError:
        print("RESET after %d bytes" % total, flush=True)
        sys.exit(1)
    if not d:
        print("closed after %d bytes" % total, flush=True)
        sys.exit(0)
    total += len(d)
    c.sendall(d)
print("timeout after %d bytes" % total, flush=True)
' $((120 * TSCALE))
EPID=$SPID
PIDS+=("$EPID")
if ! line=$(wait_line echo '^port=' 20); then
	not_ok "outside: the echo server starts"
	finish
fi
port=$(field "$line" port)
tag=tcp.x
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_tcp" -x "$port"
if cr_ready "$tag" "cr_tcp -x (a peer outside)"; then
	pid=$PID
	cr_dump "$tag" "$pid"
	check "outside: dump without --tcp-established fails (status $DRC)" [ "$DRC" -ne 0 ]
	check "outside: the refusal names the peer and --tcp-established" \
		grep -q "peer 127.0.0.1:$port).*--tcp-established" "$T/$tag.dump.err"
	check "outside: the refused dump left no block" eval '! blocked '"$port"
	rm -f "$T/$tag.dump.err"
	cr_dump "$tag" "$pid" --tcp-established
	if [ "$DRC" -ne 0 ]; then
		not_ok "outside: dump --tcp-established exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		touch "$T/$tag.go"
		cr_reap "$SPID"
	else
		ok "outside: dump --tcp-established exits 0"
		cr_reap "$SPID"
		check "outside: the dumped process was killed (status $RC)" [ "$RC" -eq 137 ]
		check "outside: the connection is blocked while dumped" blocked "$port"
		sleep 1
		check "outside: the server's end is still established" \
			eval "ss -Htn state established '( sport = :$port )' | grep -q ."
		check "outside: the server saw no reset" eval "! grep -q RESET '$T/echo.out'"
		"$CAPCR" restore -D "$T/$tag.img" >"$T/$tag.nox.out" 2>"$T/$tag.nox.err" </dev/null
		rc=$?
		check "outside: restore without --tcp-established is refused (status $rc)" [ "$rc" -ne 0 ]
		check "outside: the refusal says to use --tcp-established" \
			grep -q "restore with --tcp-established" "$T/$tag.nox.err"
		check "outside: the refused restore left the block" blocked "$port"
		if cr_restore "$tag" --tcp-established; then
			check "outside: restored with the same PID ($NPID, was $pid)" [ "$NPID" = "$pid" ]
			touch "$T/$tag.go"
			cr_reap "$RPID"
			cr_end "$tag" "cr_tcp -x dump+restore --tcp-established"
			check "outside: the restore lifted the block" eval '! blocked '"$port"
			wait_exit "$EPID" 10
			if grep -q "^closed after 3024 bytes" "$T/echo.out"; then
				ok "outside: the server echoed every byte and saw a plain close, no reset"
			else
				not_ok "outside: the server echoed every byte and saw a plain close, no reset"
				sed 's/^/      /' "$T/echo.out"
			fi
		else
			not_ok "outside: restore --tcp-established starts the process (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
		fi
	fi
fi
finish
