#!/bin/bash
# Credentials (issue #8): a process comes back as the user it was, with its
# groups, capability sets, securebits, no_new_privs and dumpable flag,
# never as root who restores it; an image root does not own may not make
# any other user's process.
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"

# cycle NAME SETPRIV-ARGS...: run cr_creds with those credentials, dump,
# restore, and let it compare.
cycle() {
	local name=$1 line pid
	shift
	start "$name" setpriv "$@" "$TPROGS/cr_creds"
	line=$(wait_line "$name" '^ready pid=' 20) || {
		not_ok "$name: started"
		return
	}
	pid=$(field "$line" pid)
	mkdir "$T/$name.img"
	"$CAPCR" dump -t "$pid" -D "$T/$name.img" 2>"$T/$name.dump.err"
	check "$name: capcr dump" [ $? -eq 0 ]
	wait_exit "$SPID" 10
	"$CAPCR" restore -D "$T/$name.img" --restore-detached \
		2>"$T/$name.restore.err"
	check "$name: capcr restore" [ $? -eq 0 ]
	PIDS+=("$pid")
	kill -USR1 "$pid"
	wait_line "$name" '^creds ' 20 >/dev/null
	check "$name: the restored process finds the same credentials" \
		grep -q '^creds same' "$T/$name.out"
	show "$T/$name.out" "$T/$name.dump.err" "$T/$name.restore.err"
}

cycle nobody --reuid=65534 --regid=65534 --groups=65534,100 \
	--inh-caps=-all --no-new-privs
cycle caps --bounding-set=-all,+net_bind_service,+setpcap \
	--inh-caps=+net_bind_service --ambient-caps=+net_bind_service
cycle mixed --ruid=65534 --euid=0 --rgid=65534 --egid=0 --clear-groups

# An image that another user owns may not say root.
start own setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$TPROGS/cr_creds"
line=$(wait_line own '^ready pid=' 20)
pid=$(field "$line" pid)
mkdir "$T/own.img"
"$CAPCR" dump -t "$pid" -D "$T/own.img" -R 2>/dev/null
check "dump -R of a nobody process" [ $? -eq 0 ]
cp -a "$T/caps.img" "$T/stolen.img"
chown -R 65534:65534 "$T/stolen.img"
"$CAPCR" restore -D "$T/stolen.img" --allow-untrusted-dir -d \
	2>"$T/stolen.err"
check "an image nobody owns that says root is refused" [ $? -ne 0 ]
check "... saying why" grep -q "only root's images may restore" "$T/stolen.err"
kill -USR1 "$pid"
finish
