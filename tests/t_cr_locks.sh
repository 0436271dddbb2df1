#!/bin/bash
# File locks (capcr dump/restore --file-locks, src/files/locks.c) with
# tests/progs/cr_locks.c: an flock lock, two POSIX locks on one file (which
# it also maps), an OFD lock on another, a read lease on a fourth; after
# the go file it checks from a forked child that each lock is still held,
# with its type, range and owner, and that the lease is its own.
#
#   plain       cr_locks runs without a dump and passes
#   refused     dump without --file-locks fails, naming the process, the
#               descriptor, the file and --file-locks; no image is left,
#               the process runs on untraced and passes its checks
#   cycle       dump --file-locks: capcr show lists the five locks;
#               restore without --file-locks is refused and leaves nothing;
#               restore --file-locks brings it back with its PID, its POSIX
#               locks in /proc/locks under that PID, and it passes
#   conflict    the same image restored while another process holds a
#               conflicting flock lock: the restore fails naming that
#               process, and leaves nothing
#
# Run alone: tests/t_cr_locks.sh (from the top directory, after make all),
# or through tests/run.sh.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_locks

# untraced PID: nobody traces it and it is not stopped.
untraced() {
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$1/status" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*[tT]' "/proc/$1/status"
}

# gone PID: no such process (any more).
gone() {
	! alive "$1"
}

# ---- plain ----
cr_plain locks.p cr_locks

# ---- refused: no --file-locks ----
tag=locks.n
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_locks"
if cr_ready "$tag" "cr_locks (dump without --file-locks)"; then
	pid=$PID
	cr_dump "$tag" "$pid"
	check "dump without --file-locks fails (status $DRC)" [ "$DRC" -ne 0 ]
	if grep -q "process $pid holds an exclusive flock lock on descriptor 3 ($T/$tag.d/flock); use --file-locks" \
		"$T/$tag.dump.err"; then
		ok "the refusal names the process, the lock, the descriptor, the file and --file-locks"
	else
		not_ok "the refusal names the process, the lock, the descriptor, the file and --file-locks"
		sed 's/^/      /' "$T/$tag.dump.err"
	fi
	check "the refused dump leaves no image" [ ! -e "$T/$tag.img/inventory.img" ]
	check "the process runs on, untraced and unstopped" untraced "$pid"
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "cr_locks after a refused dump"
	cr_same_output locks.p "$tag" "cr_locks after a refused dump"
fi

# ---- cycle: dump and restore with --file-locks ----
tag=locks.c
img=$T/$tag.img
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_locks"
cycled=0
if cr_ready "$tag" "cr_locks (dump --file-locks)"; then
	pid=$PID
	cr_dump "$tag" "$pid" --file-locks
	if [ "$DRC" -ne 0 ]; then
		not_ok "dump --file-locks exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		touch "$T/$tag.go"
		cr_reap "$SPID"
	else
		ok "dump --file-locks exits 0"
		cr_reap "$SPID"
		check "the dumped process was killed (status $RC)" [ "$RC" -eq 137 ]
		"$CAPCR" show --json -D "$img" >"$T/$tag.show.json" 2>"$T/$tag.show.err"
		if "$PY" - "$T/$tag.show.json" >"$T/$tag.show.log" 2>&1 <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
got = sorted((l["fd"], l["kind"], l["type"], l.get("start"), l.get("len"))
             for l in d["processes"][0]["locks"])
want = sorted([(3, "flock", "write", None, None),
               (4, "posix", "write", 0, 100),
               (4, "posix", "read", 200, 100),
               (5, "ofd", "write", 10, 10),
               (7, "lease", "read", None, None)])
if got != want:
    print("locks %s, expected %s" % (got, want))
    sys.exit(1)
EOF
			ok "capcr show lists the five locks with their kinds, types, ranges"
		else
			not_ok "capcr show lists the five locks with their kinds, types, ranges"
			sed 's/^/      /' "$T/$tag.show.log" "$T/$tag.show.err"
		fi
		"$CAPCR" restore -D "$img" >"$T/$tag.nolocks.out" 2>"$T/$tag.nolocks.err" </dev/null
		rc=$?
		check "restore without --file-locks is refused (status $rc)" [ "$rc" -ne 0 ]
		if grep -q "the image holds file locks (process $pid held .* on descriptor [0-9]*); use --file-locks" \
			"$T/$tag.nolocks.err"; then
			ok "the refusal says the image holds locks and to use --file-locks"
		else
			not_ok "the refusal says the image holds locks and to use --file-locks"
			sed 's/^/      /' "$T/$tag.nolocks.err"
		fi
		check "the refused restore made no process" gone "$pid"
		if cr_restore "$tag" --file-locks; then
			cycled=1
			check "restored with the same PID ($NPID, was $pid)" [ "$NPID" = "$pid" ]
			n=$(grep -cE "POSIX +ADVISORY +(READ|WRITE) +$pid " /proc/locks)
			check "/proc/locks shows its 2 POSIX locks under PID $pid (found $n)" [ "$n" -eq 2 ]
			touch "$T/$tag.go"
			cr_reap "$RPID"
			cr_end "$tag" "cr_locks dump+restore --file-locks"
			cr_same_output locks.p "$tag" "cr_locks dump+restore --file-locks"
		else
			not_ok "restore --file-locks starts the process (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
		fi
	fi
fi

# ---- conflict: another process holds the flock lock at restore ----
if [ "$cycled" -eq 1 ]; then
	start holder "$PY" -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(120)
' "$T/$tag.d/flock"
	hpid=$SPID
	if wait_line holder '^held' 20 >/dev/null; then
		"$CAPCR" restore -D "$img" --file-locks >"$T/$tag.conflict.out" \
			2>"$T/$tag.conflict.err" </dev/null
		rc=$?
		check "restore while another process holds the flock lock fails (status $rc)" [ "$rc" -ne 0 ]
		if grep -q "cannot take back an exclusive flock lock on descriptor 3 ($T/$tag.d/flock): .*; process $hpid holds an exclusive flock lock" \
			"$T/$tag.conflict.err"; then
			ok "the failure names the lock, the descriptor, the file and the process in the way"
		else
			not_ok "the failure names the lock, the descriptor, the file and the process in the way"
			sed 's/^/      /' "$T/$tag.conflict.err"
		fi
		check "the failed restore left no process" gone "$pid"
	else
		not_ok "the lock holder got its lock"
	fi
	kill -TERM "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
fi
finish
