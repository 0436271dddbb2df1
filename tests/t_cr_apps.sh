#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoint/restore of real servers and tools that nobody here wrote,
# each dumped in the middle of its work and checked by what it does
# after the restore:
#
#   redis-server  filled with keys by clients that then leave, dumped with
#                 one idle client connection kept open (--tcp-established),
#                 restored detached: every key is there, the idle client
#                 and new clients are served; then dump -R, the original
#                 serves on (the idle client too), and the -R image
#                 restored holds the keys as they were at that dump.
#   nginx         the Debian default configuration (master as root,
#                 workers as www-data) in a network namespace of its own:
#                 a file served before the dump is served again,
#                 byte-identical, after the whole tree was killed and
#                 restored; then reloaded (new workers) and stopped.
#   http.server   python3's, serving a large file to curl --limit-rate,
#                 both in the dumped tree (the connection between them
#                 inside it), dumped mid-transfer: curl ends with a
#                 byte-identical copy; then the server alone, curl
#                 outside (--tcp-established).
#   gcc           gcc -pipe (driver, cc1, as) dumped mid-compile, killed,
#                 restored: it links a program byte-identical to an
#                 uninterrupted compile's, which prints the same.
#
# A program that is not installed skips its section (scripts/deps.sh
# installs them all).
. "$(dirname "$0")/lib_crt.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"
unset CAPCR_PD LD_PRELOAD
# nginx, ip and nsenter live in sbin, which a runner's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

# section_skip NAME REASON: this section cannot run here; the others do.
section_skip() {
	SKIPS=$((SKIPS + 1))
	_counts running
	echo "skip - $TNAME: $1: $2"
}

# need NAME CMD...: every CMD is installed, or NAME is skipped (status 1).
need() {
	local name=$1 c
	shift
	for c in "$@"; do
		command -v "$c" >/dev/null && continue
		section_skip "$name" "$c is not installed (scripts/deps.sh installs it)"
		return 1
	done
}

# wait_until SECONDS CMD...: CMD succeeds within SECONDS (times TSCALE).
wait_until() {
	local secs=$(($1 * TSCALE)) i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

gone() { ! alive "$1"; }

# free_port: a TCP port on 127.0.0.1 that nobody listens on now.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fsize FILE: its size in bytes (0 when missing).
fsize() {
	stat -c %s "$1" 2>/dev/null || echo 0
}

# same_file WHAT EXPECTED GOT: a check that GOT is byte-identical to
# EXPECTED, with the first difference when not.
same_file() {
	if cmp "$2" "$3" >"$T/cmp.log" 2>&1; then
		ok "$1"
	else
		not_ok "$1"
		sed 's/^/      /' "$T/cmp.log"
		diff "$2" "$3" 2>/dev/null | head -n 6 | sed 's/^/      | /'
	fi
}

# The capcr commands of a section run through ${AX[@]} (nginx: inside its
# namespaces); empty elsewhere.
AX=()

# app_dump TAG PID OPTS...: capcr dump -t PID -D $T/TAG.img OPTS; DRC is
# its status, $T/TAG.dump.err its messages.  A check, shown on failure.
app_dump() {
	local tag=$1 pid=$2
	shift 2
	mkdir -p "$T/$tag.img"
	timeout -k 1 $((60 * TSCALE)) "${AX[@]}" "$CAPCR" dump -t "$pid" \
		-D "$T/$tag.img" "$@" >"$T/$tag.dump.err" 2>&1 </dev/null
	DRC=$?
	if [ "$DRC" -eq 0 ]; then
		ok "$tag: capcr dump${*:+ $*} of $pid exits 0"
	else
		not_ok "$tag: capcr dump${*:+ $*} of $pid exits 0 (status $DRC)"
		tail -n 15 "$T/$tag.dump.err" | sed 's/^/      /'
	fi
	[ "$DRC" -eq 0 ]
}

# app_restore_d TAG WANT OPTS...: capcr restore -d from $T/TAG.img; NPID is
# the restored root, checked to be WANT.  Checks; status 1 on failure.
app_restore_d() {
	local tag=$1 want=$2 rc
	shift 2
	rm -f "$T/$tag.pidfile"
	timeout -k 1 $((60 * TSCALE)) "${AX[@]}" "$CAPCR" restore -D "$T/$tag.img" \
		-d --pidfile "$T/$tag.pidfile" "$@" \
		>"$T/$tag.rst.out" 2>"$T/$tag.rst.err" </dev/null
	rc=$?
	NPID=$(cat "$T/$tag.pidfile" 2>/dev/null)
	if [ "$rc" -ne 0 ] || [ -z "$NPID" ]; then
		not_ok "$tag: capcr restore -d${*:+ $*} exits 0 (status $rc)"
		tail -n 15 "$T/$tag.rst.err" | sed 's/^/      /'
		return 1
	fi
	ok "$tag: capcr restore -d${*:+ $*} exits 0"
	_remember "$NPID"
	check "$tag: restored with the same PID ($NPID, was $want)" \
		[ "$NPID" = "$want" ]
}

# ---------------------------------------------------------------------------
# redis-server, no persistence: the keys live in its memory only.
RPORT=
rcli() { redis-cli -p "$RPORT" "$@"; }

# The commands whose answers tell the data set; the answers expected.
redis_queries() {
	local i
	for ((i = 1; i <= 2000; i++)); do
		echo "GET key:$i"
	done
	printf '%s\n' "LLEN list" "LINDEX list 0" "LINDEX list -1" \
		"HLEN hash" "HGET hash field-77" "SCARD set" "SISMEMBER set member-499" \
		"GET counter" "STRLEN big" "GETRANGE big 99990 100009" "EXISTS ttl-key"
}
redis_expected() {
	local i
	for ((i = 1; i <= 2000; i++)); do
		echo "value-$i-$((i * 7919 % 10007))"
	done
	printf '%s\n' 2000 item-1 item-2000 2000 5929 500 1 2000 200000 \
		"$(printf 'abcdefghij%.0s' 1 2)" 1
}
# redis_same WHAT: the server answers every query as expected.
redis_same() {
	rcli <"$T/redis.queries" >"$T/redis.answers" 2>&1
	same_file "redis: $1" "$T/redis.expected" "$T/redis.answers"
}

# The idle client: a connection of this shell, opened after the fill.
IDLE=
# idle_ask CMD: send CMD on the idle connection; print the reply (the
# value of a bulk reply, "nil" for none).
idle_ask() {
	local l v
	printf '%s\r\n' "$1" >&"$IDLE" || return 1
	read -r -t $((20 * TSCALE)) l <&"$IDLE" || return 1
	l=${l%$'\r'}
	case $l in
	'$-1') echo nil ;;
	'$'*)
		read -r -t $((20 * TSCALE)) v <&"$IDLE" || return 1
		echo "${v%$'\r'}"
		;;
	*) echo "$l" ;;
	esac
}

# idle_close: the idle client leaves.
idle_close() {
	[ -n "$IDLE" ] && exec {IDLE}>&-
	IDLE=
}

# redis_stop PID WHAT: SHUTDOWN NOSAVE, and the process ends.
redis_stop() {
	rcli shutdown nosave >/dev/null 2>&1
	check "redis: $2 ends on SHUTDOWN" wait_until 20 gone "$1"
}

redis_section() {
	need redis redis-server redis-cli || return
	RPORT=$(free_port)
	mkdir -p "$T/redis.d"
	cr_start redis redis-server --port "$RPORT" --bind 127.0.0.1 \
		--save '' --appendonly no --daemonize no --dir "$T/redis.d"
	local holder=$SPID pid v ttl
	if ! wait_line redis 'Ready to accept connections' 30 >/dev/null; then
		not_ok "redis: redis-server starts on port $RPORT"
		return
	fi
	pid=$(pgrep -P "$holder" -x redis-server)
	_remember "$pid"

	# Filled by clients that leave before the dump.
	{
		local i
		for ((i = 1; i <= 2000; i++)); do
			echo "SET key:$i value-$i-$((i * 7919 % 10007))"
			echo "RPUSH list item-$i"
			echo "HSET hash field-$i $((i * i))"
			echo "SADD set member-$((i % 500))"
		done
		echo "INCRBY counter 2000"
		echo "SET big $(printf 'abcdefghij%.0s' $(seq 1 20000))"
		echo "SET ttl-key v EX 86400"
	} | rcli >/dev/null 2>&1
	redis_queries >"$T/redis.queries"
	redis_expected >"$T/redis.expected"
	redis_same "filled by clients that then left"

	exec {IDLE}<>"/dev/tcp/127.0.0.1/$RPORT"
	check "redis: the idle client is answered before the dump" \
		test "$(idle_ask PING)" = "+PONG"
	if ! app_dump redis "$pid" --tcp-established; then
		idle_close
		return
	fi
	cr_reap "$holder"
	check "redis: the dump killed it (status $RC)" [ "$RC" -eq 137 ]
	if ! app_restore_d redis "$pid" --tcp-established; then
		idle_close
		return
	fi
	redis_same "restored, every key is back"
	v=$(idle_ask "GET key:1999")
	check "redis: the idle client kept across the dump is answered ($v)" \
		test "$v" = "value-1999-$((1999 * 7919 % 10007))"
	check "redis: it writes on that connection" test "$(idle_ask "SET before-r 1")" = "+OK"
	check "redis: a new client is served (INCR)" test "$(rcli incr fresh)" = 1
	ttl=$(rcli ttl ttl-key)
	check "redis: the key with a time to live still has one ($ttl s)" \
		test "$ttl" -gt 0 -a "$ttl" -le 86400

	# dump -R, the idle client still there: the original serves on, on
	# that connection too.
	if ! app_dump redis-live "$pid" -R --tcp-established; then
		idle_close
		return
	fi
	check "redis: running after dump -R, not stopped, not traced" \
		free_running "$pid"
	v=$(idle_ask "GET key:7")
	check "redis: the original answers the idle client after dump -R ($v)" \
		test "$v" = "value-7-$((7 * 7919 % 10007))"
	check "redis: the original writes after dump -R" test "$(rcli set after-r 1)" = OK
	redis_same "the original answers every query after dump -R"
	idle_close
	redis_stop "$pid" "the original"
	# Its image restored once the original is gone: the data as it was
	# at that dump.  (The idle client's half of the connection comes back
	# too, to a peer that has closed it; nothing is asked of it.)  That
	# dump lifted its block as the original went on: there is none to
	# lift now, and nothing to warn about.
	app_restore_d redis-live "$pid" --tcp-established || return
	if grep -qi 'nftables' "$T/redis-live.rst.err"; then
		not_ok "redis: no nftables warning restoring the dump -R image"
		grep -i 'nftables' "$T/redis-live.rst.err" | sed 's/^/      /'
	else
		ok "redis: no nftables warning restoring the dump -R image"
	fi
	redis_same "the dump -R image restored, every key is back"
	check "redis: it holds what was written before dump -R" \
		test "$(rcli get before-r)" = 1
	check "redis: and not what the original wrote after it" \
		test -z "$(rcli get after-r)"
	redis_stop "$pid" "the restored copy"
}

# free_running PID: running, not stopped, not traced.
free_running() {
	local st tr
	alive "$1" || return 1
	st=$(_stat_field "$1" 1)
	tr=$(awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	[ "$st" != T ] && [ "$st" != t ] && [ "$tr" = 0 ]
}

# ---------------------------------------------------------------------------
# nginx, with the Debian default configuration unchanged.  Everything it
# touches outside its memory is made private to the test:
#   - a network namespace (capcr-apps-PID, loopback up): port 80 is its own;
#   - a mount namespace in it, with a tmpfs on /run (the default pid file,
#     /run/nginx.pid, must not be a system nginx's) and on /var/log/nginx,
#     and the test's files bound on /var/www/html (the default root).
# A holder process (sleep) keeps both namespaces alive while nginx is
# dumped; nginx, capcr dump and capcr restore all run in them (nsenter to
# the holder: the mount namespace, a private one made by unshare inside
# `ip netns exec`, is reachable no other way).  capcr dump must see the
# paths nginx sees, and the restored nginx must be in the namespaces it
# was in.
#
# The default configuration daemonizes, and it is kept: the master is
# then a session leader whose parent is not the test, as deployed; the
# test finds it by its pid file.
NS=
NG_HOLDER=
NG_PIDS=()

# in_ns CMD...: CMD in nginx's network and mount namespaces.
in_ns() { nsenter -t "$NG_HOLDER" -m -n "$@"; }

# ng_master: the master's PID, from its pid file.
ng_master() { in_ns cat /run/nginx.pid 2>/dev/null; }

# ng_tree: the master and its workers, "PID USER" a line.
ng_tree() {
	local p m
	m=$(ng_master)
	[ -n "$m" ] || return 1
	for p in "$m" $(pgrep -P "$m"); do
		echo "$p $(stat -c %U "/proc/$p" 2>/dev/null)"
	done
}

# ng_ready N: the master has N workers, all as www-data; remembered for
# the cleanup.
ng_ready() {
	local tree p
	tree=$(ng_tree) || return 1
	[ "$(grep -c ' www-data$' <<<"$tree")" -eq "$1" ] || return 1
	[ "$(wc -l <<<"$tree")" -eq $(($1 + 1)) ] || return 1
	for p in $(awk '{print $1}' <<<"$tree"); do
		_remember "$p"
		NG_PIDS+=("$p $(_stat_field "$p" 20)")
	done
}

# ng_get NAME FILE: fetch http://127.0.0.1/NAME inside the namespace into
# FILE.
ng_get() {
	in_ns curl -sS -f -m $((30 * TSCALE)) -o "$2" "http://127.0.0.1/$1"
}

# ng_cleanup: every nginx process seen, killed by PID while it is the
# process seen (its start time), the holder, the network namespace.
ng_cleanup() {
	local e
	for e in "${NG_PIDS[@]}"; do
		[ "$(_stat_field "${e% *}" 20)" = "${e#* }" ] &&
			kill -KILL "${e% *}" 2>/dev/null
	done
	if [ -n "$NG_HOLDER" ]; then
		kill -KILL "$NG_HOLDER" 2>/dev/null
		{ wait "$NG_HOLDER"; } 2>/dev/null
		NG_HOLDER=
	fi
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
	NS=
}

nginx_section() {
	need nginx nginx curl ip nsenter unshare || return
	[ -r /etc/nginx/nginx.conf ] || {
		section_skip nginx "/etc/nginx/nginx.conf missing (the nginx package's default)"
		return
	}
	id www-data >/dev/null 2>&1 || {
		section_skip nginx "no user www-data (the default configuration runs its workers as it)"
		return
	}
	NS=capcr-apps-$$
	if ! ip netns add "$NS" 2>"$T/netns.err"; then
		section_skip nginx "cannot make a network namespace: $(head -n 1 "$T/netns.err")"
		NS=
		return
	fi
	ip netns exec "$NS" ip link set lo up
	mkdir -p "$T/www"
	head -c 3000000 /dev/urandom >"$T/www/big.bin"
	echo "capcr t_cr_apps $$" >"$T/www/index.html"
	chmod 755 "$T/www"
	chmod 644 "$T/www/big.bin" "$T/www/index.html"
	start ngholder ip netns exec "$NS" unshare -m --propagation private \
		sh -c 'mount -t tmpfs capcr-run /run &&
			mount -t tmpfs capcr-log /var/log/nginx &&
			mount --bind "$1" /var/www/html && echo ready &&
			exec sleep 100000' sh "$T/www"
	NG_HOLDER=$SPID
	if ! wait_line ngholder '^ready' 20 >/dev/null; then
		not_ok "nginx: the namespaces are made"
		return
	fi
	local nw
	nw=$(getconf _NPROCESSORS_ONLN)
	in_ns nginx >"$T/nginx.start" 2>&1
	check "nginx: starts (daemonizes) with the default configuration" test $? -eq 0
	if ! wait_until 30 ng_ready "$nw"; then
		not_ok "nginx: a master and $nw workers as www-data"
		ng_tree | sed 's/^/      /'
		return
	fi
	local master before
	master=$(ng_master)
	before=$(ng_tree)
	echo "      nginx tree: $(echo $before)"
	ng_get big.bin "$T/ng.before"
	same_file "nginx: serves the file before the dump" "$T/www/big.bin" "$T/ng.before"

	# A client with a keep-alive connection, idle across the dump (kept
	# with --tcp-established): it asks again on the same connection when
	# told, after the restore.
	mkfifo "$T/ka.go"
	cat >"$T/ka.sh" <<'EOF2'
exec 5<>/dev/tcp/127.0.0.1/80 || exit 1
ask() {
	local l n=0 body
	printf 'GET /index.html HTTP/1.1\r\nHost: capcr\r\n\r\n' >&5
	while read -r -t 30 l <&5; do
		l=${l%$'\r'}
		case $l in
		Content-Length:*) n=${l#*: } ;;
		'') break ;;
		esac
	done
	read -r -N "$n" -t 30 body <&5
	echo "body=$body"
}
ask
read -r go <"$1"
ask
EOF2
	start ka nsenter -t "$NG_HOLDER" -n bash "$T/ka.sh" "$T/ka.go"
	local ka=$SPID
	check "nginx: answers the keep-alive client before the dump" \
		eval 'wait_line ka "^body=" 30 >/dev/null'

	AX=(nsenter -t "$NG_HOLDER" -m -n)
	ng_dumped "$master" "$nw" "$before" "$ka"
	AX=()
	in_ns nginx -s quit >>"$T/nginx.start" 2>&1
	check "nginx: stops on nginx -s quit" wait_until 30 gone "$master"
	if in_ns grep -E '\[(alert|crit|emerg)\]' /var/log/nginx/error.log \
		>"$T/ng.alerts"; then
		not_ok "nginx: no alert in its error log"
		sed 's/^/      /' "$T/ng.alerts" | head -n 10
	else
		ok "nginx: no alert in its error log"
	fi
	ng_cleanup
}

# ng_dumped MASTER NWORKERS TREE KA: the tree dumped (killed) and
# restored: it serves as before, the keep-alive client KA too, reloads
# and serves again.
ng_dumped() {
	local master=$1 nw=$2 before=$3 ka=$4 all_gone=0
	app_dump nginx "$master" --tcp-established || return
	wait_until 20 eval '! pgrep -P "$master" >/dev/null && gone "$master"' && all_gone=1
	check "nginx: the dump killed the whole tree" test $all_gone -eq 1
	check "nginx: the port is free while it is dumped" \
		eval '! in_ns curl -s -m 5 -o /dev/null http://127.0.0.1/'
	app_restore_d nginx "$master" --tcp-established || return
	if wait_until 20 ng_ready "$nw"; then
		check "nginx: the same master and workers, the same users" \
			test "$(ng_tree)" = "$before"
	else
		not_ok "nginx: restored with $nw workers as www-data"
		ng_tree | sed 's/^/      /'
	fi
	ng_get big.bin "$T/ng.after"
	same_file "nginx: serves the file after the restore" "$T/www/big.bin" "$T/ng.after"
	in_ns curl -sS -f -m $((30 * TSCALE)) -o "$T/ng.index6" "http://[::1]/"
	same_file "nginx: and the index on its IPv6 socket" "$T/www/index.html" "$T/ng.index6"
	# The keep-alive client asks again (the FIFO opened read-write never
	# blocks this shell, even with the client gone), before the reload,
	# whose old workers close their idle connections.
	echo go 1<>"$T/ka.go"
	wait_exit "$ka" 60
	check "nginx: the keep-alive connection, kept across the dump, is answered" \
		test "$(grep -c "^body=capcr t_cr_apps $$\$" "$T/ka.out")" -eq 2 -a "$RC" -eq 0
	# A reload: the restored master reads its configuration again and
	# forks new workers.
	in_ns nginx -s reload >>"$T/nginx.start" 2>&1
	check "nginx: reloaded, new workers" wait_until 30 eval \
		'ng_ready '"$nw"' && [ "$(ng_tree)" != "$before" ]'
	ng_get big.bin "$T/ng.reload"
	same_file "nginx: new workers serve the file" "$T/www/big.bin" "$T/ng.reload"
}

# ---------------------------------------------------------------------------
# python3 -m http.server and a slow curl, one tree: a bash script starts
# both and waits.  curl's --limit-rate keeps the average rate down (it
# reads in bursts, as much as the socket holds, then pauses): 48 MB at
# 4 MB/s lasts 12 s whatever the socket sizes, so the dump, as soon as
# the first MB is in, falls mid-transfer with seconds to spare.
http_section() {
	need http "$PY" curl || return
	local port size=48000000 fails0=$FAILS
	port=$(free_port)
	mkdir -p "$T/srv"
	head -c $size /dev/urandom >"$T/srv/big.bin"
	cat >"$T/hs.sh" <<'EOF'
"$PY" -u -m http.server --bind 127.0.0.1 --directory "$1" "$2" >"$4.srv" 2>&1 &
s=$!
until grep -q '^Serving HTTP' "$4.srv"; do
	kill -0 $s || exit 1
	sleep 0.1
done
curl -sS --limit-rate 4M -o "$3" "http://127.0.0.1:$2/big.bin" &
c=$!
echo "ready pid=$$ child=$s kid=$c"
wait $c
echo "curl=$?"
kill $s
wait $s
echo "server=$?"
EOF
	cr_start http env PY="$PY" bash "$T/hs.sh" "$T/srv" "$port" "$T/dl.bin" "$T/http"
	local line root srv cl at
	if ! line=$(wait_line http '^ready pid=' 30); then
		not_ok "http: the server and curl start"
		return
	fi
	root=$(field "$line" pid)
	srv=$(field "$line" child)
	cl=$(field "$line" kid)
	if ! wait_until 60 eval '[ "$(fsize "$T/dl.bin")" -ge 1000000 ]'; then
		not_ok "http: curl receives the first MB"
		show "$T/http.srv" "$T/http.err"
		return
	fi
	app_dump http "$root" || return
	cr_reap "$SPID"
	at=$(fsize "$T/dl.bin")
	check "http: dumped mid-transfer ($at of $size bytes)" test "$at" -lt $size
	check "http: the dump killed the tree" eval 'gone "$srv" && gone "$cl"'
	if ! cr_restore http; then
		not_ok "http: capcr restore starts the tree (status $RC)"
		tail -n 15 "$T/http.rst.err" | sed 's/^/      /'
		return
	fi
	check "http: restored with the same PID ($NPID, was $root)" [ "$NPID" = "$root" ]
	_remember "$srv"
	_remember "$cl"
	wait_exit "$RPID" 120
	check "http: the script ends with status 0 ($RC)" [ "$RC" -eq 0 ]
	check "http: curl ends with status 0" grep -q '^curl=0$' "$T/http.out"
	same_file "http: curl's copy is byte-identical" "$T/srv/big.bin" "$T/dl.bin"
	if [ "$FAILS" -gt "$fails0" ]; then
		show "$T/http.out" "$T/http.err" "$T/http.rst.err"
	fi
}

# The server alone, curl outside the tree: its connection is kept with
# --tcp-established on dump and restore (curl meanwhile retransmits into
# capcr's block, none the wiser).
http_alone_section() {
	need http-alone "$PY" curl || return
	local port size fails0=$FAILS srv
	size=$(fsize "$T/srv/big.bin")
	port=$(free_port)
	cr_start srva "$PY" -u -m http.server --bind 127.0.0.1 --directory "$T/srv" "$port"
	local holder=$SPID
	if ! wait_line srva '^Serving HTTP' 30 >/dev/null; then
		not_ok "http-alone: the server starts"
		return
	fi
	srv=$(pgrep -P "$holder" -x python3)
	_remember "$srv"
	cr_start curla curl -sS --limit-rate 4M -o "$T/dl2.bin" "http://127.0.0.1:$port/big.bin"
	local cl=$SPID at
	wait_until 10 pgrep -P "$cl" -x curl >/dev/null &&
		_remember "$(pgrep -P "$cl" -x curl)"
	if ! wait_until 60 eval '[ "$(fsize "$T/dl2.bin")" -ge 1000000 ]'; then
		not_ok "http-alone: curl receives the first MB"
		return
	fi
	app_dump http-alone "$srv" --tcp-established || return
	cr_reap "$holder"
	check "http-alone: the dump killed the server (status $RC)" [ "$RC" -eq 137 ]
	at=$(fsize "$T/dl2.bin")
	check "http-alone: dumped mid-transfer ($at of $size bytes so far)" test "$at" -lt "$size"
	app_restore_d http-alone "$srv" --tcp-established || return
	wait_exit "$cl" 120
	check "http-alone: curl ends with status 0 ($RC)" [ "$RC" -eq 0 ]
	same_file "http-alone: curl's copy is byte-identical" "$T/srv/big.bin" "$T/dl2.bin"
	alive "$srv" && kill -TERM "$srv"
	check "http-alone: the restored server ends on SIGTERM" wait_until 20 gone "$srv"
	if [ "$FAILS" -gt "$fails0" ]; then
		show "$T/srva.out" "$T/curla.err" "$T/http-alone.rst.err"
	fi
}

# ---------------------------------------------------------------------------
# gcc -pipe: the driver runs cc1 and as side by side, joined by a pipe,
# then collect2 and ld.  A generated file that keeps cc1 busy for a few
# seconds.
gcc_section() {
	need gcc gcc || return
	local fails0=$FAILS
	"$PY" - "$T/big.c" <<'EOF'
import sys
n = 400
with open(sys.argv[1], "w") as f:
    f.write("#include <stdio.h>\n")
    for i in range(n):
        f.write(f"""
static unsigned long f{i}(unsigned long x)
{{
	unsigned long a[16];
	for (int j = 0; j < 16; j++)
		a[j] = x * {i * 2 + 1}u + j * {i % 97 + 3}u;
	for (int j = 1; j < 16; j++)
		a[j] ^= (a[j - 1] >> {i % 13 + 1}) + {i * 7919 % 100003}u;
	unsigned long s = 0;
	for (int j = 0; j < 16; j++)
		s += a[j] * (j | 1);
	return s ^ (x << {i % 5});
}}
""")
    f.write("int main(void)\n{\n\tunsigned long x = 1;\n")
    for i in range(n):
        f.write(f"\tx = f{i}(x);\n")
        if i % 50 == 0:
            f.write('\tprintf("%lu\\n", x);\n')
    f.write('\tprintf("%lu\\n", x);\n\treturn 0;\n}\n')
EOF
	mkdir -p "$T/gcc.ref.tmp" "$T/gcc.tmp"
	(cd "$T" && TMPDIR=$T/gcc.ref.tmp gcc -pipe -O2 big.c -o prog.ref) \
		>"$T/gcc.ref.out" 2>&1 </dev/null
	if ! check "gcc: the uninterrupted compile succeeds" test $? -eq 0; then
		show "$T/gcc.ref.out"
		return
	fi
	"$T/prog.ref" >"$T/prog.ref.out"

	cr_start gcc env -C "$T" TMPDIR="$T/gcc.tmp" gcc -pipe -O2 big.c -o prog
	local drv cc1 as
	# The driver (env execs it), with cc1 and as, and cc1 well into the
	# work (0.3 s of CPU time).
	mid_compile() {
		local t
		drv=$(pgrep -P "$SPID" -x gcc) || return 1
		cc1=$(pgrep -P "$drv" -x cc1) || return 1
		as=$(pgrep -P "$drv" -x as) || return 1
		t=$(($(_stat_field "$cc1" 12) + $(_stat_field "$cc1" 13)))
		[ "$t" -ge 30 ]
	}
	if ! wait_until 60 mid_compile; then
		not_ok "gcc: cc1 and as are at work"
		show "$T/gcc.out" "$T/gcc.err"
		return
	fi
	_remember "$drv"
	_remember "$cc1"
	_remember "$as"
	app_dump gcc "$drv" || return
	cr_reap "$SPID"
	check "gcc: the dump killed it (status $RC)" [ "$RC" -eq 137 ]
	check "gcc: it was mid-compile (no program yet)" test ! -e "$T/prog"
	if ! cr_restore gcc; then
		not_ok "gcc: capcr restore starts the compile (status $RC)"
		tail -n 15 "$T/gcc.rst.err" | sed 's/^/      /'
		return
	fi
	check "gcc: restored with the same PID ($NPID, was $drv)" [ "$NPID" = "$drv" ]
	_remember "$cc1"
	_remember "$as"
	wait_exit "$RPID" 120
	check "gcc: the restored compile ends with status 0 ($RC)" [ "$RC" -eq 0 ]
	same_file "gcc: the program is byte-identical to the uninterrupted compile's" \
		"$T/prog.ref" "$T/prog"
	"$T/prog" >"$T/prog.out" 2>&1
	same_file "gcc: and prints the same" "$T/prog.ref.out" "$T/prog.out"
	check "gcc: its temporary files were removed" \
		test -z "$(ls -A "$T/gcc.tmp")"
	if [ "$FAILS" -gt "$fails0" ]; then
		show "$T/gcc.out" "$T/gcc.err" "$T/gcc.rst.err"
	fi
}

apps_cleanup() {
	idle_close
	ng_cleanup
	_cleanup
}
trap apps_cleanup EXIT

redis_section
nginx_section
http_section
http_alone_section
gcc_section
finish
