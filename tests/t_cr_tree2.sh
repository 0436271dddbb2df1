#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoint/restore of process trees (part 2; part 1 is t_cr_tree.sh).
#
#  1. Zombies (crt_zombie): two children of the root that exited (one with
#     status 42, one killed by SIGTERM) and a grandchild (status 7), none
#     reaped: after the restore they are still zombies of the same parents,
#     and each parent reaps them with the right status.  The living child
#     also keeps its parent-death signal (prctl PR_SET_PDEATHSIG).
#  2. A shell pipeline, bash -c 'producer | filter | checksum' with
#     builtins-only delays (read -t on a FIFO opened read-write): 4
#     processes, dumped mid-stream, killed, restored: the same final output
#     as an uninterrupted run.
#  3. /usr/bin/python3 with 4 threading.Thread workers fed by a
#     queue.Queue, dumped under load, restored: output identical to an
#     uninterrupted run's.
#  4. A tree that changes while it is frozen (crt_forker: a child forks
#     grandchildren in a tight loop, another makes threads in a tight
#     loop), dumped 4 times: each dump either succeeds with an image that
#     restores, or fails cleanly (a message, no image) leaving every
#     process running, untraced; the program then checks that both loops
#     went on without a wrong status.
#  5. A member of the tree killed during the dump (crt_exit), twice: once
#     while its big sibling (saved after it) is being saved, once while the
#     root (saved before it) is being saved.  The dump fails with a message saying so, leaves no
#     image, and the others go on untouched (the program checks them, the
#     big one its memory); or, if it succeeds, its image must hold the
#     victim as it was (its descriptors) and restore.
#  6. Restore right after a dump from a plain shell, where the orphans
#     are left to init (no subreaper): restore waits for their PIDs.
#  7. A shell loop whose children end by themselves, dumped with -R five
#     times: a child that ends after the tree is let go is no failure.
#  8. A process stopped by SIGSTOP stays stopped through dump -R, and
#     comes back stopped from its image; SIGCONT lets it go on.
#  9. A process whose working directory was removed comes back in a
#     removed directory of the same name (or beside it, when the name is
#     taken again), and nothing is left on disk.
# 10. 20 processes under capcr run --capinfo=ipc, each with its PD
#     session: all 20 come back and are served (capcr restore once held
#     16 sessions at most).
. "$(dirname "$0")/lib_cr2.sh"
. "$(dirname "$0")/lib_tree.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"
unset PYTHONUNBUFFERED

# child_of PID: the first child of PID (crt_sub's program).
child_of() {
	local i c
	for ((i = 0; i < 500; i++)); do
		c=$(cat "/proc/$1/task/$1/children" 2>/dev/null)
		c=${c%% *}
		[ -n "$c" ] && { echo "$c"; return 0; }
		sleep 0.01
	done
	return 1
}

# tracer_of PID: its TracerPid (empty when it does not exist).
tracer_of() {
	awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# ---------------------------------------------------------------------------
echo "# 1. zombies"
tree_start zomb env CR_GO="$T/zomb.go" "$TPROGS/crt_zombie"
if tree_root zomb; then
	P=$ROOT
	tree_track "$P"
	l=$(grep -m1 '^ready ' "$T/zomb.out")
	A=$(field_of "$l" a) B=$(field_of "$l" b) C=$(field_of "$l" c) D=$(field_of "$l" d)
	snap0=$(tree_snap "$P")
	check "zombies: A, B (children of the root) and D (grandchild) are zombies" \
		test "$(snap_part id "$snap0" | grep -c zombie)" -eq 3
	tree_dump zomb "$P"
	check "zombies: capcr dump exits 0" rc_is 0
	c=$(img_counts "$T/zomb.img")
	check "zombies: the image holds 5 processes, 3 of them zombies ($c)" \
		test "${c%% *} ${c##* }" = "5 3"
	tree_wait_holder
	check "zombies: the dump killed the tree (status $RC)" test "$RC" -eq 137
	if tree_restore zomb.rst "$T/zomb.img"; then
		snap1=$(tree_snap "$P")
		check "zombies: after the restore, the same PIDs, parents, groups, and the same 3 zombies" \
			snap_same id "ids" "$snap0" "$snap1"
		check "zombies: A is a zombie of the root" \
			grep -q "^id $A $P .* zombie" <<<"$snap1"
		check "zombies: D is a zombie of C" \
			grep -q "^id $D $C .* zombie" <<<"$snap1"
		touch "$T/zomb.go"
		tree_wait_holder 20
		check "zombies: the restored tree exits 0 (status $RC)" rc_is 0
		check "zombies: each parent reaps its zombies with the right status (PASS)" \
			passes zomb
		check "zombies: A exit 42, B killed by SIGTERM, D exit 7" test \
			"$(grep -c -E 'A reaped: exit 42|B reaped: killed by signal 15|D reaped: exit 7' "$T/zomb.out")" -eq 3
		# not a zombie matter, but a tree one: prctl(PR_SET_PDEATHSIG)
		check "tree: C keeps its parent-death signal (SIGHUP) across the restore" \
			grep -q '^C: parent-death signal 1$' "$T/zomb.out"
	else
		not_ok "zombies: capcr restore (status $RC)"
		show "$LAST_LOG"
	fi
else
	not_ok "zombies: crt_zombie got ready"
fi

# ---------------------------------------------------------------------------
echo "# 2. a shell pipeline"
PIPE_SCRIPT='
producer() {
	local i
	for ((i = 1; i <= 240; i++)); do
		echo "$i $(( (i * 7919) % 10007 ))"
		read -r -t 0.006 <>"$FIFO"
		# held at line 100 until $GO exists: the test dumps it
		# mid-stream however slow it is
		if [ "$i" -eq 100 ]; then
			until [ -e "$GO" ]; do read -r -t 0.01 <>"$FIFO"; done
		fi
	done
}
filter() {
	local a b
	while read -r a b; do
		(( b % 3 )) && echo "$a $(( b * 2 ))"
	done
	echo "filter done"
}
checksum() {
	local a b s=0 n=0
	while read -r a b; do
		[ "$a" = filter ] && continue
		s=$(( (s * 31 + a * 7 + b) % 1000000007 ))
		n=$((n + 1))
		echo "line $n: $a $b sum $s"
	done
	echo "total $n sum $s"
}
producer | filter | checksum
'
mkfifo "$T/fifo.ref" "$T/fifo.run"
touch "$T/pipe.ref.go"
GO=$T/pipe.ref.go FIFO=$T/fifo.ref /bin/bash -c "$PIPE_SCRIPT" >"$T/pipe.ref" 2>&1 </dev/null &
REFP=$!
cr_track "$REFP" bash
tree_start pipe env GO="$T/pipe.go" FIFO="$T/fifo.run" /bin/bash -c "$PIPE_SCRIPT"
if P=$(child_of "$HOLDER") && cr_wait_lines "$T/pipe.out" 40 20; then
	tree_track "$P"
	snap0=$(tree_snap "$P")
	check "pipeline: 4 processes (bash and its 3 subshells)" \
		test "$(snap_part id "$snap0" | wc -l)" -eq 4
	tree_dump pipe "$P"
	at=$(cr_lines "$T/pipe.out")
	check "pipeline: capcr dump mid-stream exits 0" rc_is 0
	check "pipeline: the image holds 4 processes" \
		test "$(img_counts "$T/pipe.img")" = "4 4 0"
	tree_wait_holder
	check "pipeline: the dump killed it (status $RC)" test "$RC" -eq 137
	touch "$T/pipe.go"
	if tree_restore pipe.rst "$T/pipe.img"; then
		check "pipeline: restored with the same PIDs, parents, groups" \
			snap_same id "ids" "$snap0" "$(tree_snap "$P")"
		tree_wait_holder 30
		check "pipeline: it runs to its end with status 0 (status $RC)" rc_is 0
	else
		not_ok "pipeline: capcr restore (status $RC)"
		show "$LAST_LOG"
	fi
	wait "$REFP"
	check "pipeline: the uninterrupted run ends with status 0" test $? -eq 0
	total=$(cr_lines "$T/pipe.ref")
	check "pipeline: dumped mid-stream (line $at of $total)" test "$at" -lt "$total"
	check "pipeline: the same output as the uninterrupted run's" \
		same_file "$T/pipe.ref" "$T/pipe.out"
else
	not_ok "pipeline: it started"
	show "$T/pipe.out" "$T/pipe.err"
fi

# ---------------------------------------------------------------------------
echo "# 3. python3 threads and a queue"
cat >"$T/pyq.py" <<'EOF'
import hashlib, queue, sys, threading, time

ITEMS, WORKERS = 500, 4
work = queue.Queue(maxsize=8)
results = queue.Queue()
done_by = [0] * WORKERS

def worker(w):
    while True:
        item = work.get()
        if item is None:
            work.task_done()
            return
        h = hashlib.sha256(b"item %d" % item)
        for _ in range(400):
            h = hashlib.sha256(h.digest())
        results.put((item, h.hexdigest()[:16]))
        done_by[w] += 1
        work.task_done()
        time.sleep(0.008)

threads = [threading.Thread(target=worker, args=(i,), name="worker-%d" % i)
           for i in range(WORKERS)]
for t in threads:
    t.start()
print("started", len(threads), "workers", flush=True)
for i in range(ITEMS):
    work.put(i)
for _ in threads:
    work.put(None)
work.join()
for t in threads:
    t.join()
out = sorted(results.get() for _ in range(results.qsize()))
total = hashlib.sha256()
for item, h in out:
    print(item, h)
    total.update(h.encode())
print("items", len(out), "by", sum(done_by), "workers", sum(1 for d in done_by if d))
print("total", total.hexdigest())
EOF
"$PY" "$T/pyq.py" >"$T/pyq.ref" 2>&1 </dev/null &
REFP=$!
cr_track "$REFP" python3
tree_start pyq "$PY" "$T/pyq.py"
if P=$(child_of "$HOLDER") && wait_for "$T/pyq.out" '^started' 20; then
	cr_track "$P" python3
	sleep 0.4
	nthr=$(ls "/proc/$P/task" 2>/dev/null | wc -l)
	tree_dump pyq "$P"
	check "python3: capcr dump under load exits 0" rc_is 0
	check "python3: dumped with its 4 workers running ($nthr threads)" \
		test "$nthr" -ge 5
	c=$(img_counts "$T/pyq.img")
	check "python3: the image holds 1 process, $nthr threads ($c)" \
		test "$c" = "1 $nthr 0"
	tree_wait_holder
	check "python3: the dump killed it (status $RC)" test "$RC" -eq 137
	if tree_restore pyq.rst "$T/pyq.img"; then
		check "python3: restored with the same PID" test "$RPID" = "$P"
		tree_wait_holder 30
		check "python3: it runs to its end with status 0 (status $RC)" rc_is 0
	else
		not_ok "python3: capcr restore (status $RC)"
		show "$LAST_LOG"
	fi
	wait "$REFP"
	check "python3: the uninterrupted run ends with status 0" test $? -eq 0
	check "python3: output identical to the uninterrupted run's" \
		same_file "$T/pyq.ref" "$T/pyq.out"
else
	not_ok "python3: it started"
	show "$T/pyq.out" "$T/pyq.err"
fi

# ---------------------------------------------------------------------------
echo "# 4. a tree that changes while it is frozen"
tree_start fork env CR_GO="$T/fork.go" "$TPROGS/crt_forker"
if tree_root fork; then
	P=$ROOT
	tree_track "$P"
	l=$(grep -m1 '^ready ' "$T/fork.out")
	FK=$(field_of "$l" forker) TH=$(field_of "$l" threader)
	succ=0 nfail=0
	for ((k = 1; k <= 4; k++)); do
		tree_dump "fork$k" "$P"
		if [ "$RC" -eq 0 ]; then
			succ=$((succ + 1))
			c=$(img_counts "$T/fork$k.img")
			echo "      dump $k succeeded: $c (processes threads zombies)"
			tree_wait_holder
			agg f.killed $k test "$RC" -eq 137
			if ! tree_restore "fork$k.rst" "$T/fork$k.img"; then
				agg f.restore $k fail_show "$LAST_LOG"
				break
			fi
			agg f.restore $k test "$RPID" = "$P"
		else
			nfail=$((nfail + 1))
			echo "      dump $k failed: $(grep -m1 'error' "$T/fork$k.log")"
			agg f.clean $k failed_cleanly
			agg f.says $k says "fork$k" "dump of process $P failed"
			agg f.noimg $k no_inventory "$T/fork$k.img"
			agg f.empty $k empty_dir "$T/fork$k.img"
		fi
		agg f.free $k tree_free "$P"
		agg f.going $k cr_alive "$FK"
		agg f.going $k cr_alive "$TH"
		sleep 0.05
	done
	echo "      $succ of 4 dumps succeeded, $nfail failed"
	[ "$succ" -gt 0 ] && {
		agg_report f.killed "changing tree: a successful dump killed the tree"
		agg_report f.restore "changing tree: a successful dump's image restores (same PID)"
	}
	[ "$nfail" -gt 0 ] && {
		agg_report f.clean "changing tree: a failed dump exits non-zero, cleanly"
		agg_report f.says "changing tree: a failed dump says why"
		agg_report f.noimg "changing tree: a failed dump leaves no inventory"
		agg_report f.empty "changing tree: a failed dump leaves no partial image"
	}
	agg_report f.free "changing tree: after each dump, every process runs, none traced or stopped"
	agg_report f.going "changing tree: the forker and the threader are still there"
	touch "$T/fork.go"
	tree_wait_holder 20
	check "changing tree: it exits 0 (status $RC)" rc_is 0
	check "changing tree: both loops went on, no wrong status or result (PASS)" \
		passes fork
else
	not_ok "changing tree: crt_forker got ready"
fi

# ---------------------------------------------------------------------------
echo "# 5. a process killed during the dump"
# exit_case TAG WHERE: crt_exit with its big memory in WHERE (the big
# child, saved after the victim, or the root, saved before it); the victim
# is killed once the dump has mapped its scratch page (a second shared
# mapping) in the process with the big memory, that is while that one is
# being saved.  capcr dump is stopped (SIGSTOP) from then until the victim
# is dead, so that a slow test cannot be overtaken by the dump; if the test
# never saw that moment (too slow to catch it), "still running" is counted
# as skipped, not failed, and the outcome is judged all the same.
exit_case() {
	local tag=$1 where=$2 what w vfds running DRC n
	what="killed during the dump (big memory in the $where)"
	tree_start "$tag" env CR_GO="$T/$tag.go" "$TPROGS/crt_exit" 384 \
		$([ "$where" = root ] && echo "root")
	if ! tree_root "$tag" 40; then
		not_ok "$what: crt_exit got ready"
		return
	fi
	P=$ROOT
	tree_track "$P"
	l=$(grep -m1 '^ready ' "$T/$tag.out")
	V=$(field_of "$l" victim) BIG=$(field_of "$l" big) W=$(field_of "$l" worker)
	w=$BIG
	[ "$where" = root ] && w=$P
	vfds=$(ls "/proc/$V/fd" | wc -l)
	mkdir -p "$T/$tag.img"
	"$CAPCR" -v dump -t "$P" -D "$T/$tag.img" >"$T/$tag.log" 2>&1 </dev/null &
	DP=$!
	seen=no
	while cr_alive "$DP"; do
		nsh=$(grep -c ' rw-s ' "/proc/$w/maps" 2>/dev/null)
		if [ "${nsh:-0}" -ge 2 ]; then
			kill -STOP "$DP" 2>/dev/null
			seen=yes
			break
		fi
	done
	running=no
	[ $seen = yes ] && cr_alive "$DP" && running=yes
	kill -KILL "$V" 2>/dev/null
	kill -CONT "$DP" 2>/dev/null
	{ wait "$DP"; } 2>/dev/null
	RC=$?
	DRC=$RC
	LAST_LOG=$T/$tag.log
	if [ $running = yes ]; then
		ok "$what: capcr dump was still running when the victim was killed"
	else
		SKIPS=$((SKIPS + 1))
		echo "skip - $what: the test missed the moment the dump saved the big one (status $RC): not judged"
	fi
	if [ "$RC" -ne 0 ]; then
		check "$what: the dump fails cleanly (status $RC)" failed_cleanly
		check "$what: it says so, and that the others go on" \
			says "$tag" "dump of process $P failed" "killed during the dump" \
			"others go on untouched"
		check "$what: no inventory" no_inventory "$T/$tag.img"
		check "$what: no partial image" empty_dir "$T/$tag.img"
		check "$what: the others run, none traced or stopped" tree_free "$P"
		check "$what: the big one and the worker are there" \
			eval 'cr_alive "$BIG" && cr_alive "$W"'
	else
		# Only right if the victim was saved whole before it died: then
		# the image must hold it as it was, and restore.
		echo "      the dump succeeded: $(tail -n 1 "$T/$tag.log")"
		n=$(img_nfds "$T/$tag.img" "$V")
		check "$what: if the dump succeeds, its image has the victim's $vfds descriptors (it has $n)" \
			test "$n" = "$vfds"
		tree_wait_holder
		check "$what: the dump killed the tree (status $RC)" test "$RC" -eq 137
		tree_restore "$tag.rst" "$T/$tag.img" ||
			not_ok "$what: the image restores"
	fi
	touch "$T/$tag.go"
	tree_wait_holder 30
	check "$what: the tree ends with status 0 (status $RC)" rc_is 0
	check "$what: the others checked themselves (PASS)" passes "$tag"
	if [ "$DRC" -ne 0 ]; then
		check "$what: the root saw the victim killed by SIGKILL" \
			grep -q '^crt_exit: victim killed by signal 9' "$T/$tag.out"
	fi
}
exit_case exitc child
exit_case exitr root

# ---------------------------------------------------------------------------
echo "# 6. restore right after a dump, orphans left to init"
mkdir -p "$T/plain.d"
env CR_GO="$T/plain.go" CR_DIR="$T/plain.d" "$TPROGS/crt_tree" -f 2 -r 1 \
	>"$T/plain.out" 2>"$T/plain.err" </dev/null &
HOLDER=$!
cr_track "$HOLDER" crt_tree
if tree_root plain; then
	P=$ROOT
	tree_track "$P"
	snap0=$(tree_snap "$P")
	tree_dump plain "$P"
	check "orphans to init: capcr dump of 15 processes exits 0" rc_is 0
	{ wait "$P"; } 2>/dev/null
	t0=$(date +%s%N)
	if tree_restore plain.rst "$T/plain.img"; then
		ms=$(( ($(date +%s%N) - t0) / 1000000 ))
		ok "orphans to init: capcr restore at once succeeds (${ms} ms, capcr says ${RST_MS} ms)"
		check "orphans to init: the same ids" \
			snap_same id "ids" "$snap0" "$(tree_snap "$P")"
		touch "$T/plain.go.1"
		tree_wait_holder 20
		check "orphans to init: the tree runs to its end (status $RC)" rc_is 0
	else
		not_ok "orphans to init: capcr restore at once succeeds (status $RC)"
		show "$LAST_LOG"
	fi
else
	not_ok "orphans to init: crt_tree got ready"
fi

# ---------------------------------------------------------------------------
echo "# 7. dump -R of a shell loop whose children come and go"
bash -c 'while :; do /bin/true; sleep 0.02; done' >/dev/null 2>&1 </dev/null &
LOOP=$!
cr_track "$LOOP" bash
sleep 0.2
bad=0
for i in 1 2 3 4 5; do
	mkdir -p "$T/loop.$i"
	if ! "$CAPCR" dump -R -t "$LOOP" -D "$T/loop.$i" >"$T/loop.$i.log" 2>&1; then
		bad=$((bad + 1))
		show "$T/loop.$i.log"
	fi
done
check "shell loop: 5 dumps -R all succeed ($bad failed)" test "$bad" -eq 0
st=$(awk '{print $3}' "/proc/$LOOP/stat" 2>/dev/null)
check "shell loop: it goes on (state ${st:-gone})" test -n "$st" -a "$st" != Z
kill -KILL "$LOOP" 2>/dev/null
{ wait "$LOOP"; } 2>/dev/null


# ---------------------------------------------------------------------------
echo "# 8. a process stopped by SIGSTOP"
state_of() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
state_is() { # PID STATE: within 5 s
	local i
	for ((i = 0; i < 500; i++)); do
		[ "$(state_of "$1")" = "$2" ] && return 0
		sleep 0.01
	done
	return 1
}
sleep 1000 >/dev/null 2>&1 </dev/null &
SP=$!
cr_track "$SP" sleep
kill -STOP "$SP"
check "stopped: it is stopped" state_is "$SP" T
mkdir "$T/stopped.r" "$T/stopped.img"
check "stopped: dump -R exits 0" "$CAPCR" dump -R -t "$SP" -D "$T/stopped.r"
check "stopped: still stopped after dump -R" state_is "$SP" T
check "stopped: dump exits 0" "$CAPCR" dump -t "$SP" -D "$T/stopped.img"
{ wait "$SP"; } 2>/dev/null
check "stopped: restore -d exits 0" "$CAPCR" restore -d -D "$T/stopped.img"
check "stopped: it comes back stopped (state $(state_of "$SP"))" \
	state_is "$SP" T
kill -CONT "$SP"
check "stopped: SIGCONT lets it go on" state_is "$SP" S
kill -KILL "$SP" 2>/dev/null


# ---------------------------------------------------------------------------
echo "# 9. a deleted working directory"
for taken in 0 1; do
	D=$T/gone.$taken
	bash -c "mkdir -p '$D' && cd '$D' && rmdir '$D' && exec sleep 1000" \
		>/dev/null 2>&1 </dev/null &
	GP=$!
	cr_track "$GP" sleep
	for ((i = 0; i < 200; i++)); do
		[ "$(readlink "/proc/$GP/cwd")" = "$D (deleted)" ] && break
		sleep 0.01
	done
	mkdir "$T/gone$taken.img"
	check "deleted cwd ($taken): dump exits 0" "$CAPCR" dump -t "$GP" -D "$T/gone$taken.img"
	{ wait "$GP"; } 2>/dev/null
	[ "$taken" = 1 ] && mkdir "$D"
	check "deleted cwd ($taken): restore -d exits 0" "$CAPCR" restore -d -D "$T/gone$taken.img"
	cwd=$(readlink "/proc/$GP/cwd")
	if [ "$taken" = 0 ]; then
		check "deleted cwd: back in '$D (deleted)' (is '$cwd')" \
			test "$cwd" = "$D (deleted)"
		check "deleted cwd: nothing left on disk" test ! -e "$D"
	else
		check "deleted cwd, name taken: in a removed directory beside it (is '$cwd')" \
			grep -qE "^$D\.capcr-[A-Za-z0-9]{6} \(deleted\)\$" <<<"$cwd"
		check "deleted cwd, name taken: the new directory is left alone" test -d "$D"
		check "deleted cwd, name taken: nothing else left on disk" \
			test "$(ls -d "$D".* 2>/dev/null | wc -l)" -eq 0
	fi
	kill -KILL "$GP" 2>/dev/null
done

# ---------------------------------------------------------------------------
echo "# 10. 20 processes, each with its ipc PD session (the restore once held 16)"
tree_start pd "$CAPCR" run --capinfo=ipc -- env CR_GO="$T/pd.go" \
	"$TPROGS/crt_many" -i -t 1 -P 20
if tree_root pd; then
	P=$ROOT
	tree_track "$P"
	tree_dump pd "$P"
	check "20 PD sessions: dump exits 0" rc_is 0
	check "  ... the image holds 20 PD sessions" \
		test "$("$CAPCR" show -D "$T/pd.img" 2>&1 | grep -ci 'pd session')" -eq 20
	tree_wait_holder 20
	if tree_restore pd.rst "$T/pd.img"; then
		ok "20 PD sessions: restore succeeds"
		tree_track "$RPID"
		check "  ... every process's capability space comes back" \
			test "$(grep -c 'capability space:' "$T/pd.rst.log")" -eq 20
		check "  ... all 20 processes run" \
			test "$(tree_pids "$RPID" | wc -l)" -eq 20
		for p in $(tree_pids "$RPID"); do kill -KILL "$p" 2>/dev/null; done
		tree_wait_holder 20
	else
		not_ok "20 PD sessions: restore succeeds (status $RC)"
		show "$LAST_LOG"
	fi
else
	not_ok "20 PD sessions: crt_many got ready under capcr run --capinfo=ipc"
fi

finish
