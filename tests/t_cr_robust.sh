#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoint/restore robustness: what capcr dump and capcr restore do when
# something goes wrong.
#
#  a. A fault injected at every dump step (CAPCR_FAIL_AT), with and without
#     --leave-running: the dump fails naming the cause, exits non-zero, and
#     the target goes on as if nothing happened (running, not traced or
#     stopped, same mappings and signal mask, its counter consecutive), with
#     no inventory.img and no partial image left.  A failed dump into a
#     directory holding an older image leaves no inventory either.
#  b. A fault injected at every restore step: restore fails naming the
#     cause, exits non-zero, leaves no process with the image's PID and no
#     child behind (crr_reaper), does not touch the process's files; a
#     restore without the fault then runs the process to its end.
#  c. Bad input: missing directory, directory without inventory, truncated
#     pages file, a flipped byte in core-PID.img, a wrong format version, a
#     missing or truncated image file, a PID that does not exist, a PID
#     that is taken at restore: each a clear message, a non-zero status,
#     nothing left running (and the PID's owner undisturbed).
#  d. Processes that are gone or going: a zombie (and its parent), a
#     just-exited PID, a process killed in the middle of its dump (which
#     must not be reported as going on), and processes that exit on their
#     own while being dumped.
. "$(dirname "$0")/lib_cr2.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"

DUMP_STEPS="seize task-regs task-inside mm-pages fds write-images commit"
RESTORE_STEPS="restore-clone restore-files restore-mm restore-regs restore-letgo"

# ---------------------------------------------------------------------------
echo "# a. faults at every dump step"
cr_start cnt "$TPROGS/crr_counter" -i 10 -n 100000
P=$SPID
cr_wait_lines "$T/cnt.out" 5 || not_ok "counter started"
maps0=$(cat "/proc/$P/maps")
sig0=$(grep -E '^Sig(Blk|Ign|Cgt)' "/proc/$P/status")
for mode in kill leave; do
	opt=()
	[ $mode = leave ] && opt=(-R)
	for step in $DUMP_STEPS; do
		D=$T/a-$mode-$step
		mkdir "$D"
		n0=$(cr_lines "$T/cnt.out")
		CR_ENV=(CAPCR_FAIL_AT=$step)
		cr_dump "a-$mode-$step" "${opt[@]}" -t "$P" -D "$D"
		CR_ENV=()
		what="dump ${opt[*]} failing at $step"
		check "$what: exits non-zero" failed_cleanly
		# The step's own failure, or the error it simulates.
		case $step in
		commit) cause="injected failure at commit|cannot write the inventory" ;;
		*) cause="injected failure at $step" ;;
		esac
		check "$what: says why" says "a-$mode-$step" \
			"dump of process $P failed" "$cause"
		check "$what: target running, not traced or stopped" \
			cr_free_running "$P"
		check "$what: no inventory.img" no_inventory "$D"
		check "$what: no partial image left" empty_dir "$D"
		check "$what: target's mappings unchanged (no scratch page)" \
			test "$(cat "/proc/$P/maps" 2>/dev/null)" = "$maps0"
		check "$what: target's signal mask and handlers unchanged" \
			test "$(grep -E '^Sig(Blk|Ign|Cgt)' "/proc/$P/status" 2>/dev/null)" = "$sig0"
		check "$what: target's counter goes on" \
			cr_wait_lines "$T/cnt.out" $((n0 + 3)) 5
	done
done
check "after 14 failed dumps: the counter is consecutive, sums right" \
	counting "$T/cnt.out"

# A stopped process (SIGSTOP) stays stopped after a failed dump, and
# goes on when continued.
kill -STOP "$P"
mkdir "$T/a-stopped"
CR_ENV=(CAPCR_FAIL_AT=commit)
cr_dump a-stopped -t "$P" -D "$T/a-stopped"
CR_ENV=()
check "failed dump of a stopped process: exits non-zero" failed_cleanly
check "  ... for the injected reason" says a-stopped \
	"injected failure at commit|cannot write the inventory"
check "  ... it is still stopped (state T), not traced" \
	test "$(cr_state "$P")/$(awk '/^TracerPid:/ { print $2 }' "/proc/$P/status")" = T/0
n0=$(cr_lines "$T/cnt.out")
kill -CONT "$P"
check "  ... and counts on once continued" cr_wait_lines "$T/cnt.out" $((n0 + 3)) 5

# A failed dump over an older, complete image: no inventory may remain, or
# a restore would mix the old image with the new files.
D=$T/a-stale
mkdir "$D"
cr_dump a-stale-ok -R -t "$P" -D "$D"
check "dump -R into a fresh directory succeeds" rc_is 0
check "  ... and writes inventory.img" test -e "$D/inventory.img"
CR_ENV=(CAPCR_FAIL_AT=commit)
cr_dump a-stale -R -t "$P" -D "$D"
CR_ENV=()
check "failed dump over an older image: exits non-zero" failed_cleanly
check "failed dump over an older image: no inventory.img left" no_inventory "$D"
cr_restore a-stale-r -D "$D"
check "restore from it is refused" failed_cleanly
check "  ... saying there is no complete image" says a-stale-r \
	"no complete image|no inventory"
check "  ... and the original goes on" cr_free_running "$P"

# The target went through all that: a real dump and restore must still
# give a process that carries on exactly.
D=$T/a-final
mkdir "$D"
cr_dump a-final -t "$P" -D "$D"
check "then a dump without faults succeeds" rc_is 0
cr_reap "$P"
check "  ... and kills the target (SIGKILL)" rc_is 137
n0=$(cr_lines "$T/cnt.out")
cr_start a-final-r timeout -k 2 $((30 * TSCALE)) "$CAPCR" restore -D "$D"
R=$SPID
check "  ... restored, the counter goes on" \
	cr_wait_lines "$T/cnt.out" $((n0 + 10)) 10
kill -KILL "$P" 2>/dev/null
cr_wait_exit "$R" 10
LAST_LOG=$T/a-final-r.err
check "  ... capcr restore reports the restored process's death" rc_is 137
check "  ... the counter stayed consecutive" counting "$T/cnt.out"

# ---------------------------------------------------------------------------
echo "# b. faults at every restore step"
cr_start cnt2 "$TPROGS/crr_counter" -i 10 -n 120
P=$SPID
cr_wait_lines "$T/cnt2.out" 15 || not_ok "counter started"
G=$T/good
mkdir "$G"
cr_dump b-dump -t "$P" -D "$G"
check "dump of a counter succeeds" rc_is 0
cr_reap "$P"
for step in $RESTORE_STEPS; do
	cp "$T/cnt2.out" "$T/cnt2.before"
	CR_ENV=(CAPCR_FAIL_AT=$step)
	cr_restore "b-$step" -D "$G" --pidfile "$T/b-$step.pid"
	CR_ENV=()
	what="restore failing at $step"
	check "$what: exits non-zero" failed_cleanly
	check "$what: no pidfile left" test ! -e "$T/b-$step.pid"
	check "$what: says why" says "b-$step" "restore from .* failed" \
		"injected failure at $step"
	check "$what: no process with PID $P left" cr_gone "$P"
	check "$what: no child of capcr restore left" no_stray "b-$step"
	check "$what: the process's output file untouched" \
		cmp -s "$T/cnt2.out" "$T/cnt2.before"
	cr_restore "b-$step-ok" -D "$G"
	check "then a restore without the fault runs it to its end (status 0)" \
		rc_is 0
	check "  ... its output complete and consecutive" \
		counting "$T/cnt2.out" 120
	check "  ... and nothing left behind" no_stray "b-$step-ok"
done

# ---------------------------------------------------------------------------
echo "# c. bad input"
# G is a good image of a finished counter; its PID is free.
cr_restore c-nodir -D "$T/no-such-dir"
check "restore from a missing directory: exits non-zero" failed_cleanly
check "  ... says the directory cannot be opened" says c-nodir \
	"cannot open image directory" "no such file"
mkdir "$T/empty"
cr_restore c-empty -D "$T/empty"
check "restore from a directory without inventory: exits non-zero" failed_cleanly
check "  ... says there is no image" says c-empty "no inventory|no complete image"

bad_copy() { # NAME: a fresh copy of the good image in $T/NAME
	rm -rf "${T:?}/$1"
	cp -a "$G" "$T/$1"
}
bad_restore() { # NAME DESC REGEX...: restore from $T/NAME must fail so
	local name=$1 desc=$2
	shift 2
	cr_restore "c-$name" -D "$T/$name"
	check "restore, $desc: exits non-zero" failed_cleanly
	check "  ... says why" says "c-$name" "$@"
	check "  ... no process with PID $P" cr_gone "$P"
	check "  ... nothing left behind" no_stray "c-$name"
}

bad_copy trunc
truncate -s -4096 "$T/trunc/pages-$P.img"
bad_restore trunc "pages file 4 KiB short" "pages-$P\.img" "truncated"

bad_copy flip
"$PY" - "$T/flip/core-$P.img" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(b)
EOF
bad_restore flip "one byte of core-$P.img flipped" "core-$P\.img" \
	"corrupt|checksum"

bad_copy version
printf '\143\000\000\000' |
	dd of="$T/version/inventory.img" bs=1 seek=8 conv=notrunc 2>/dev/null
check "format field patched to 99" \
	test "$(od -An -tu4 -j8 -N4 "$T/version/inventory.img" | tr -d ' ')" = 99
bad_restore version "inventory.img of format 99" "format 99" \
	"reads formats [0-9]+ to [0-9]"

bad_copy nocore
rm "$T/nocore/core-$P.img"
bad_restore nocore "core-$P.img missing" "core-$P\.img" "missing"

bad_copy shortinv
truncate -s 10 "$T/shortinv/inventory.img"
bad_restore shortinv "inventory.img cut to 10 bytes" "inventory\.img" \
	"truncated"

bad_copy extended
printf 'x' >>"$T/extended/mm-$P.img"
bad_restore extended "one byte appended to mm-$P.img" "mm-$P\.img" \
	"truncated or extended|corrupt"

# A PID that does not exist: the counter's, now that it has ended and
# been reaped.
check "PID $P is free now" cr_gone "$P"
mkdir "$T/c-nopid"
cr_dump c-nopid -t "$P" -D "$T/c-nopid"
check "dump of a PID that does not exist: exits non-zero" failed_cleanly
check "  ... says there is no such process" says c-nopid "no process with PID $P"
check "  ... writes nothing" empty_dir "$T/c-nopid"

cr_start cnt3 "$TPROGS/crr_counter" -i 10 -n 100000
P3=$SPID
cr_wait_lines "$T/cnt3.out" 5 || not_ok "counter started"
cr_dump c-nodir-dump -t "$P3" -D "$T/no-such-dir"
check "dump into a missing directory: exits non-zero" failed_cleanly
check "  ... says the directory is missing" says c-nodir-dump \
	"image directory" "no such file"
check "  ... the target goes on untouched" cr_free_running "$P3"

# A PID taken at restore: the original still runs after dump -R.
D=$T/c-taken
mkdir "$D"
cr_dump c-taken-dump -R -t "$P3" -D "$D"
check "dump -R of a running counter succeeds" rc_is 0
check "  ... and leaves it running" cr_free_running "$P3"
for det in "" -d; do
	n0=$(cr_lines "$T/cnt3.out")
	cr_restore "c-taken$det" $det -D "$D"
	check "restore $det while PID $P3 is taken: exits non-zero" failed_cleanly
	check "  ... says the PID is taken" says "c-taken$det" "PID $P3" "taken"
	check "  ... nothing left behind" no_stray "c-taken$det"
	check "  ... the original is undisturbed" cr_free_running "$P3"
	check "  ... and counts on" cr_wait_lines "$T/cnt3.out" $((n0 + 3)) 5
done
check "  ... its counter consecutive throughout" counting "$T/cnt3.out"
kill -KILL "$P3"
cr_reap "$P3"

# ---------------------------------------------------------------------------
echo "# d. processes that are gone or going"
cr_start zomb "$TPROGS/crr_zombie"
ZP=$SPID
if cr_wait_lines "$T/zomb.out" 1 5; then
	Z=$(awk '/^zombie/ { print $2 }' "$T/zomb.out")
	check "PID $Z is a zombie" test "$(cr_state "$Z")" = Z
	mkdir "$T/d-zombie"
	cr_dump d-zombie -t "$Z" -D "$T/d-zombie"
	check "dump of a zombie: exits non-zero" failed_cleanly
	check "  ... says the process is a zombie or has exited" says d-zombie \
		"zombie|exited|has ended|is dead"
	check "  ... does not claim the zombie goes on" \
		not_says d-zombie "goes on untouched"
	check "  ... writes nothing" empty_dir "$T/d-zombie"
	# Its parent: capcr either refuses it (a process with children) or,
	# if it dumps process trees, takes it with its zombie; with -R the
	# parent must go on either way, still holding its zombie.
	mkdir "$T/d-parent"
	cr_dump d-parent -R -t "$ZP" -D "$T/d-parent"
	if [ "$RC" -eq 0 ]; then
		ok "dump -R of the zombie's parent succeeds (process tree)"
		check "  ... with a complete image" test -e "$T/d-parent/inventory.img"
	else
		check "dump -R of the zombie's parent: refused cleanly" failed_cleanly
		check "  ... saying it has children" says d-parent "child"
	fi
	check "  ... the parent goes on untouched" cr_free_running "$ZP"
	check "  ... still holding its zombie" test "$(cr_state "$Z")" = Z
	kill -TERM "$ZP"
	cr_wait_exit "$ZP" 5
	check "the parent reaps its zombie and exits 0" rc_is 0
else
	not_ok "crr_zombie made a zombie"
fi

# Just exited: ended and reaped a moment ago.
cr_start gone "$TPROGS/crr_counter" -i 1 -n 1
GP=$SPID
cr_reap "$GP"
mkdir "$T/d-gone"
cr_dump d-gone -t "$GP" -D "$T/d-gone"
check "dump of a process that just exited: exits non-zero" failed_cleanly
check "  ... says there is no such process" says d-gone "no process with PID $GP"

# writing_size PID DIR: the size of the largest file capcr dump (a child
# of PID) is writing into DIR.  A file being written has no name yet
# (O_TMPFILE, linked in when whole): it is found among capcr's descriptors.
writing_size() {
	local c f l n=0 m
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		for f in /proc/"$c"/fd/*; do
			l=$(readlink "$f" 2>/dev/null) || continue
			case $l in
			"$2"/*)
				m=$(stat -L -c %s "$f" 2>/dev/null) || continue
				[ "$m" -gt "$n" ] && n=$m
				;;
			esac
		done
	done
	echo "$n"
}

# Killed in the middle of its dump: a 256 MiB target, killed once its
# pages file is 32 MiB on the way (image on tmpfs, so it is quick).  So
# that a slow test cannot be overtaken by a quick dump, capcr dump is
# stopped (SIGSTOP) while the target is killed, and resumed after; judged
# only when the dump had not committed its image (no inventory.img) by
# then.
cr_shm_dir
cr_start fill "$TPROGS/crr_fill" 256
FP=$SPID
if cr_wait_lines "$T/fill.out" 1 20; then
	D=$SHM/d-killed
	mkdir "$D"
	timeout -k 2 $((20 * TSCALE)) "$CAPCR" dump -t "$FP" -D "$D" >"$T/d-killed.log" 2>&1 &
	DP=$!
	CP=""
	for ((i = 0; i < 2000 * TSCALE; i++)); do
		[ -n "$CP" ] || CP=$(cat "/proc/$DP/task/$DP/children" 2>/dev/null)
		CP=${CP%% *}
		s=$(writing_size "$DP" "$D")
		[ "$s" -ge $((32 << 20)) ] && break
		cr_alive "$DP" || break
		sleep 0.001
	done
	[ -n "$CP" ] && kill -STOP "$CP" 2>/dev/null
	midway=no
	[ "$s" -ge $((32 << 20)) ] && [ -n "$CP" ] && cr_alive "$CP" &&
		[ ! -e "$D/inventory.img" ] && midway=yes
	kill -KILL "$FP"
	[ -n "$CP" ] && kill -CONT "$CP" 2>/dev/null
	cr_reap "$DP"
	drc=$RC
	cr_reap "$FP"
	RC=$drc
	if [ $midway = yes ]; then
		check "dump of a process killed during it: exits non-zero" \
			failed_cleanly
		check "  ... says the process died during the dump" says d-killed \
			"exited|killed|died|was gone|no longer"
		check "  ... does not claim the process goes on" \
			not_says d-killed "goes on untouched"
		check "  ... no inventory.img" no_inventory "$D"
		check "  ... no partial image left" empty_dir "$D"
	else
		SKIPS=$((SKIPS + 1))
		echo "skip - dump of a process killed during it: the dump ended before the test could kill it (status $RC): not judged"
		show "$T/d-killed.log"
	fi
else
	not_ok "crr_fill started"
fi

# Exiting on their own while being dumped: a counter that ends after K ms,
# dumped at once.  Whatever the timing, the dump either succeeds (and the
# image restores to the complete output) or fails with a message and no
# image; it never hangs, crashes or leaves a half image.
declare -A seen=()
bad=0
i=0
for k in 1 1 2 2 3 3 4 4 5 6 8 10 15 20 30; do
	i=$((i + 1))
	D=$T/d-race-$i
	mkdir "$D"
	cr_start "race$i" "$TPROGS/crr_counter" -i 1 -n "$k"
	RP=$SPID
	cr_dump "d-race-$i" -t "$RP" -D "$D"
	drc=$RC
	cr_reap "$RP"
	if [ "$drc" -eq 0 ]; then
		seen[dumped]=$((${seen[dumped]:-0} + 1))
		if [ ! -e "$D/inventory.img" ]; then
			echo "      K=$k: dump succeeded without inventory.img"
			bad=1
			continue
		fi
		cr_restore "d-race-$i-r" -D "$D"
		if [ "$RC" -ne 0 ] || ! counting "$T/race$i.out" "$k" ||
			! no_stray "d-race-$i-r"; then
			echo "      K=$k: restore after a successful dump: status $RC"
			lsan_note "$T/d-race-$i-r.log" ||
				show "$T/d-race-$i-r.log" "$T/race$i.out"
			bad=1
		fi
	elif [ "$drc" -ge 124 ]; then
		echo "      K=$k: capcr dump crashed or hung (status $drc)"
		show "$T/d-race-$i.log"
		bad=1
	else
		why=$(sed -n 's/.*error: //p' "$T/d-race-$i.log" | head -n 1)
		why=${why//$RP/PID}
		case $why in
		"no process with PID"*) why="no such process" ;;
		esac
		seen["failed: $why"]=$((${seen["failed: $why"]:-0} + 1))
		if [ -z "$why" ] || [ -e "$D/inventory.img" ] ||
			[ -n "$(ls -A "$D")" ]; then
			echo "      K=$k: failed dump: no message, or an image left"
			show "$T/d-race-$i.log"
			bad=1
		fi
	fi
done
for o in "${!seen[@]}"; do
	echo "      race outcome x${seen[$o]}: $o"
done
check "15 dumps of processes ending on their own: each a clean outcome" \
	test "$bad" -eq 0

finish
