#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoint/restore of threads and process trees (part 1; part 2 is
# t_cr_tree2.sh).
#
#  1. Threads in different blocking states (crt_threads): a condition
#     variable, nanosleep, read on an empty pipe, a busy loop, sigwaitinfo,
#     pthread_join and poll with a timeout, each thread with its own name,
#     signal mask and alternate stack; dumped, killed, restored: the same
#     TIDs, names and masks in /proc, and the program checks that every
#     thread resumes properly and keeps its state.
#  2. 128 threads at work (crt_many), dumped with -R under load, then
#     dumped, killed and restored 10 times over: the same TIDs each time,
#     and the final output identical to an uninterrupted run's.
#  3. A tree of 53 processes (crt_tree: depth 3, pipes between parents and
#     children, a shared anonymous page, a shared file description and a
#     dup of it in each, groups and a session of their own), dumped,
#     killed and restored 10 times; after each restore /proc shows the
#     same PIDs, parents, groups, sessions, threads, descriptors (the same
#     pipes between the same processes, the same positions) and one
#     shared memory object, and the tree checks itself in a round (ids,
#     tokens through every pipe, data left in pipes across the dump, the
#     shared page seen by all, records written through the shared
#     position).
#  4. The same tree dumped with -R: it goes on undisturbed (nothing
#     traced or stopped, same /proc view, its next round passes); once it
#     has ended, the -R image restores and the tree runs again to its end.
#
# Every tree runs under crt_sub (see lib_tree.sh), which reaps the orphans
# a dump leaves at once.
. "$(dirname "$0")/lib_cr2.sh"
. "$(dirname "$0")/lib_tree.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"

# ---------------------------------------------------------------------------
echo "# 1. threads in different blocking states"
mkdir -p "$T/thr.d"
tree_start thr env CR_GO="$T/thr.go" CR_DIR="$T/thr.d" "$TPROGS/crt_threads"
if tree_root thr; then
	P=$ROOT
	cr_track "$P" crt_threads
	snap0=$(tree_snap "$P")
	tree_dump thr "$P"
	check "threads: capcr dump exits 0" rc_is 0
	check "threads: the image holds 1 process with 8 threads" \
		test "$(img_counts "$T/thr.img")" = "1 8 0"
	tree_wait_holder
	check "threads: the dump killed the process (status $RC)" test "$RC" -eq 137
	if tree_restore thr.rst "$T/thr.img"; then
		check "threads: restored with the same PID" test "$RPID" = "$P"
		snap1=$(tree_snap "$P")
		check "threads: same TIDs, thread names and signal masks in /proc" \
			snap_same thr "threads" "$snap0" "$snap1"
		check "threads: same descriptors" snap_same fd "descriptors" \
			"$snap0" "$snap1"
		touch "$T/thr.go"
		tree_wait_holder 30
		check "threads: the restored process exits 0 (status $RC)" rc_is 0
		check "threads: every thread resumed and kept its state (PASS)" \
			passes thr
	else
		not_ok "threads: capcr restore (status $RC)"
		show "$LAST_LOG"
	fi
else
	not_ok "threads: crt_threads got ready"
fi

# ---------------------------------------------------------------------------
echo "# 2. 128 threads at work, -R, then 10 dump/restore cycles"
MANY=(-t 128 -s 500 -p 9000)
mkdir -p "$T/mref.d" "$T/many.d"
# The uninterrupted reference runs meanwhile.
tree_start mref env CR_GO="$T/mref.go" CR_DIR="$T/mref.d" "$TPROGS/crt_many" "${MANY[@]}"
REFH=$HOLDER
touch "$T/mref.go"
tree_start many env CR_GO="$T/many.go" CR_DIR="$T/many.d" "$TPROGS/crt_many" "${MANY[@]}"
if tree_root many; then
	P=$ROOT
	cr_track "$P" crt_many
	t_start=$(date +%s%N)
	snap0=$(tree_snap "$P")
	check "128 threads: 129 threads in /proc" \
		test "$(snap_part thr "$snap0" | wc -l)" -eq 129
	tree_dump many0 "$P" -R
	check "128 threads: capcr dump -R under load exits 0" rc_is 0
	check "128 threads: the -R image holds 129 threads" \
		test "$(img_counts "$T/many0.img")" = "1 129 0"
	check "128 threads: after -R, running, nothing traced or stopped" \
		tree_free "$P"
	check "128 threads: after -R, the same threads" \
		snap_same thr "threads" "$snap0" "$(tree_snap "$P")"
	cycles=0
	fr=() du=() rs=()
	for ((k = 1; k <= 10; k++)); do
		tree_dump "many$k" "$P"
		agg m.dump $k rc_is 0 || break
		fr+=("$FROZEN_MS") du+=("$DUMP_MS")
		agg m.img $k test "$(img_counts "$T/many$k.img")" = "1 129 0"
		tree_wait_holder
		agg m.killed $k test "$RC" -eq 137
		if ! tree_restore "many$k.rst" "$T/many$k.img"; then
			agg m.restore $k fail_show "$LAST_LOG"
			break
		fi
		agg m.restore $k true
		rs+=("$RST_MS")
		agg m.pid $k test "$RPID" = "$P"
		agg m.tids $k snap_same thr "threads" "$snap0" "$(tree_snap "$P")"
		agg m.free $k tree_free "$P"
		cycles=$k
	done
	t_cycles=$(( ($(date +%s%N) - t_start) / 1000000 ))
	ref_running=no
	cr_alive "$REFH" && ref_running=yes
	check "128 threads: 10 dump/restore cycles went through ($cycles)" \
		test "$cycles" -eq 10
	agg_report m.dump "128 threads: capcr dump exits 0"
	agg_report m.img "128 threads: the image holds 1 process, 129 threads"
	agg_report m.killed "128 threads: the dump killed it (137)"
	agg_report m.restore "128 threads: capcr restore"
	agg_report m.pid "128 threads: restored with the same PID"
	agg_report m.tids "128 threads: the same TIDs, names and masks after the restore"
	agg_report m.free "128 threads: restored, running, nothing traced or stopped"
	echo "      10 cycles in ${t_cycles} ms; the uninterrupted run still working at the end: $ref_running"
	echo "      frozen ms: ${fr[*]}"
	echo "      dump ms:   ${du[*]}"
	echo "      restore ms: ${rs[*]}"
	touch "$T/many.go"
	tree_wait_holder 40
	check "128 threads: the last restore runs it to its end (status $RC)" rc_is 0
	check "128 threads: it checks itself (PASS)" passes many
	HOLDER=$REFH
	tree_wait_holder 40
	check "128 threads: the uninterrupted run passes" passes mref
	check "128 threads: output identical to the uninterrupted run's" \
		same_file <(grep -v '^ready ' "$T/mref.out") <(grep -v '^ready ' "$T/many.out")
else
	not_ok "128 threads: crt_many got ready"
fi

# ---------------------------------------------------------------------------
echo "# 3. a tree of 53 processes, 10 dump/restore cycles"
mkdir -p "$T/tree.d"
tree_start tree env CR_GO="$T/tree.go" CR_DIR="$T/tree.d" "$TPROGS/crt_tree" -r 11
if tree_root tree; then
	P=$ROOT
	tree_track "$P"
	snap0=$(tree_snap "$P")
	check "tree: 53 processes" test "$(snap_part id "$snap0" | wc -l)" -eq 53
	check "tree: 58 threads (the root and its 4 children have 2)" \
		test "$(snap_part thr "$snap0" | wc -l)" -eq 58
	check "tree: 4 process groups, 2 sessions" test \
		"$(snap_part id "$snap0" | awk '{ g[$4]; s[$5] } END { print length(g), length(s) }')" = "4 2"
	check "tree: one shared memory object, mapped by all 53" test \
		"$(snap_part shm "$snap0" | awk '{ o[$5]; n++ } END { print length(o), n }')" = "1 53"
	cycles=0
	fr=() du=() rs=()
	for ((k = 1; k <= 10; k++)); do
		pre=$(tree_snap "$P")
		tree_dump "tree$k" "$P"
		agg t.dump $k rc_is 0 || break
		fr+=("$FROZEN_MS") du+=("$DUMP_MS")
		agg t.img $k test "$(img_counts "$T/tree$k.img")" = "53 58 0"
		tree_wait_holder
		agg t.killed $k test "$RC" -eq 137
		if ! tree_restore "tree$k.rst" "$T/tree$k.img"; then
			agg t.restore $k fail_show "$LAST_LOG"
			break
		fi
		agg t.restore $k true
		rs+=("$RST_MS")
		snap=$(tree_snap "$P")
		agg t.ids $k snap_same id "PIDs, parents, groups, sessions" "$snap0" "$snap"
		agg t.thr $k snap_same thr "threads" "$snap0" "$snap"
		# positions move from round to round: against the view just
		# before the dump
		agg t.fds $k snap_same fd "descriptors (pipes, positions)" "$pre" "$snap"
		agg t.shm $k snap_same shm "shared mappings" "$snap0" "$snap"
		agg t.free $k tree_free "$P"
		touch "$T/tree.go.$k"
		agg t.round $k wait_for "$T/tree.out" "^crt_tree: round $k: 53 processes: .* ok" 20 ||
			{ grep FAIL "$T/tree.out" | head -n 5; break; }
		cycles=$k
	done
	check "tree: 10 dump/restore cycles went through ($cycles)" test "$cycles" -eq 10
	agg_report t.dump "tree: capcr dump exits 0"
	agg_report t.img "tree: the image holds 53 processes, 58 threads"
	agg_report t.killed "tree: the dump killed the tree (137)"
	agg_report t.restore "tree: capcr restore"
	agg_report t.ids "tree: the same PIDs, parents, groups and sessions in /proc"
	agg_report t.thr "tree: the same threads (TIDs, names, masks)"
	agg_report t.fds "tree: the same descriptors: same pipes between the same processes, same positions"
	agg_report t.shm "tree: one shared memory object, mapped where it was"
	agg_report t.free "tree: restored, running, nothing traced or stopped"
	agg_report t.round "tree: its round after the restore passes (ids, pipes, shared page, shared position)"
	echo "      frozen ms: ${fr[*]}"
	echo "      dump ms:   ${du[*]}"
	echo "      restore ms: ${rs[*]}"

	# -----------------------------------------------------------------------
	echo "# 4. the tree dumped with -R"
	if [ "$cycles" -eq 10 ]; then
		snapR=$(tree_snap "$P")
		tree_dump treeR "$P" -R
		check "tree -R: capcr dump exits 0" rc_is 0
		check "tree -R: the image holds 53 processes" \
			test "$(img_counts "$T/treeR.img")" = "53 58 0"
		check "tree -R: the tree runs on, nothing traced or stopped" tree_free "$P"
		snap=$(tree_snap "$P")
		check "tree -R: the same ids, threads, descriptors, mappings in /proc" \
			same_text "/proc views" "$snapR" "$snap"
		touch "$T/tree.go.11"
		check "tree -R: its next round passes" \
			wait_for "$T/tree.out" "^crt_tree: round 11: 53 processes: .* ok" 20
		tree_wait_holder 20
		check "tree -R: it ends with status 0" rc_is 0
		check "tree -R: it checks itself (PASS)" passes tree
		cp "$T/tree.out" "$T/tree.live.out"
		# Now the image of the tree as it was at the -R dump, held before
		# round 11 until it has been looked at.
		rm -f "$T/tree.go.11"
		if tree_restore treeR.rst "$T/treeR.img"; then
			check "tree -R image: restored with the same ids, threads, descriptors, mappings" \
				same_text "/proc views" "$snapR" "$(tree_snap "$P")"
			touch "$T/tree.go.11"
			tree_wait_holder 30
			check "tree -R image: it runs round 11 again and ends with status 0" rc_is 0
			check "tree -R image: the same output as the live tree's" \
				same_file "$T/tree.live.out" "$T/tree.out"
		else
			not_ok "tree -R image: capcr restore (status $RC)"
			show "$LAST_LOG"
		fi
	else
		not_ok "tree -R: not tried, the cycles failed"
	fi
else
	not_ok "tree: crt_tree got ready"
fi

finish
