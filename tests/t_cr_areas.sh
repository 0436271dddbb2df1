#!/bin/bash
# Checkpoint and restore of one process, area by area, in the style of
# CRIU's zdtm.  Each program of tests/progs/cr_*.c sets up the state of its
# area, prints "ready", waits for a go file, then checks itself and prints
# PASS or FAIL (protocol: tests/progs/crtest.h, helpers: tests/lib_cr.sh).
# Each runs twice: plain, and dumped, reaped, restored; both must pass and
# print the same.
#
#   memory      cr_memory      anon private/shared, heap, deep stack, file
#                              mappings, memfd, fork advice, untouched
#                              pages, PROT_NONE, mremap
#   registers   cr_regs        GP, x87, SSE/AVX/AVX-512 held across the dump
#   signals     cr_signals     mask, pending with siginfo, handlers, altstack
#   timers      cr_timers      itimers, POSIX timers (ids, values, firing)
#   attributes  cr_attrs       cwd, umask, rlimits, personality, comm, rseq,
#                              robust list, tid address, PID
#   descriptors cr_fds         files, deleted file, dir, devices, pipes, FIFO,
#                              memfd, eventfd, pidfd, flags, dups
#   capspace    cr_fds caps    under capcr run: same fds, kinds, badges
#   ipc         cr_ipc_kinds   epoll (interest list, data, DEL), timerfds
#                              (periodic, pending ticks, absolute,
#                              disarmed), signalfd, inotify (wds, events)
#   sysv        cr_sysv        SysV shared memory (attached and not),
#                              semaphores, message queues
#   unix        cr_unix        Unix sockets: stream, datagram, seqpacket
#                              pairs with queued data both ways, shutdown,
#                              closed peer, listener with accepted and
#                              waiting clients, bound datagram socket with
#                              queued datagrams, a pair between two processes;
#                              and dumped with -R, going on untouched
#   repeated    cr_counter     dump+restore 20 times in a row; dump -R 20
#                              times; no divergence
#
# Run alone: tests/t_cr_areas.sh [AREA...] (from the top directory, after
# make all), or through tests/run.sh.
. "$(dirname "$0")/lib_crt.sh"

AREAS=("$@")
[ ${#AREAS[@]} -eq 0 ] &&
	AREAS=(memory registers signals timers attributes descriptors capspace
		ipc sysv unix repeated repeated-R live)

cr_need cr_memory cr_regs cr_signals cr_timers cr_attrs cr_fds cr_counter \
	cr_ipc_kinds cr_sysv cr_unix

# ghost_limit: a dump whose deleted files hold more data than
# --ghost-limit is refused, naming the file and the limit, and the process
# goes on untouched; under the limit, the same dump works.
ghost_limit() {
	local tag=ghost what="cr_fds, --ghost-limit"
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_fds" "$$"
	cr_ready "$tag" "$what" || return 1
	cr_dump "$tag" "$PID" -R --ghost-limit 4K
	check "$what 4K: the dump is refused (status $DRC)" [ "$DRC" -ne 0 ]
	check "$what 4K: the message names the deleted file and the limit" \
		grep -q "deleted file .*more than --ghost-limit 4096" \
		"$T/$tag.dump.err"
	rm -rf "$T/$tag.img" && mkdir -p "$T/$tag.img"
	cr_dump "$tag" "$PID" -R --ghost-limit 1M --link-remap
	check "$what 1M (and --link-remap): the dump works (status $DRC)" \
		[ "$DRC" -eq 0 ]
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "$what: the process after both dumps"
}

# ---- capability space: cr_fds under capcr run ----
# caps_run TAG MODE: MODE plain or cycle.
caps_run() {
	local tag=$1 mode=$2 pid rpid line nfd what="cr_fds under capcr run"
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$CAPCR" run -- "$TPROGS/cr_fds" "$$" caps
	rpid=$SPID
	cr_ready "$tag" "$what ($mode)" || return 1
	pid=$PID
	caps "$tag.before" "$pid"
	check "$what ($mode): caps before exits 0" [ "$CRC" -eq 0 ]
	jcheck "$what ($mode): monitored, every descriptor reported" \
		"$T/$tag.before.json" '
expect(d["monitored"] is True, "not monitored")
for c in caps:
    expect(c["kernel"] and c["reported"], "fd %d: %s" % (c["fd"], c))
'
	if [ "$mode" = cycle ]; then
		cr_dump "$tag" "$pid"
		if [ "$DRC" -ne 0 ]; then
			not_ok "$what: capcr dump exits 0 (status $DRC)"
			sed 's/^/      /' "$T/$tag.dump.err"
			touch "$T/$tag.go" "$T/$tag.go.2"
			cr_reap "$rpid"
			return 1
		fi
		cr_reap "$rpid"
		check "$what: capcr run ends with its target (status $RC)" \
			[ "$RC" -eq 137 ]
		if ! cr_restore "$tag"; then
			not_ok "$what: capcr restore starts the process (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
			return 1
		fi
		check "$what: restored with the same PID" [ "$NPID" = "$pid" ]
		rpid=$RPID
		caps "$tag.after" "$pid"
		check "$what: caps after the restore exits 0" [ "$CRC" -eq 0 ]
		cr_caps_same "$tag.before" "$tag.after"
	fi
	touch "$T/$tag.go"
	if line=$(wait_line "$tag" '^opened fd=' 10); then
		nfd=$(field "$line" fd)
		caps "$tag.new" "$pid"
		cr_caps_new "$tag.before" "$tag.new" "$nfd"
	else
		not_ok "$what ($mode): never opened its new descriptor"
	fi
	touch "$T/$tag.go.2"
	cr_reap "$rpid"
	cr_end "$tag" "$what ($mode)"
}

# ---- unix: cr_unix dumped with -R reads every queue without taking it ----
unix_leave() {
	local tag=$1
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_unix"
	cr_ready "$tag" "cr_unix -R" || return 1
	cr_dump "$tag" "$PID" -R
	check "cr_unix: dump -R exits 0 (status $DRC)" [ "$DRC" -eq 0 ]
	[ "$DRC" -eq 0 ] || sed 's/^/      /' "$T/$tag.dump.err"
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "cr_unix after dump -R"
}

# ---- repeated: cr_counter ----
N_CYCLES=${CR_CYCLES:-20}

# repeat_cycles TAG: dump, reap, restore N_CYCLES times while it counts.
repeat_cycles() {
	local tag=$1 pid holder i fails=0 badpid=0 img
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_counter"
	holder=$SPID
	cr_ready "$tag" "cr_counter x$N_CYCLES" || return 1
	pid=$PID
	for ((i = 1; i <= N_CYCLES; i++)); do
		img="$T/$tag.img.$i"
		CR_IMG=$img cr_dump "$tag" "$pid"
		if [ "$DRC" -ne 0 ]; then
			not_ok "cr_counter: dump $i of $N_CYCLES exits 0 (status $DRC)"
			tail -n 5 "$T/$tag.dump.err" | sed 's/^/      /'
			fails=1
			break
		fi
		cr_reap "$holder"
		if ! CR_IMG=$img cr_restore "$tag"; then
			not_ok "cr_counter: restore $i of $N_CYCLES starts the process (status $RC)"
			tail -n 5 "$T/$tag.rst.err" | sed 's/^/      /'
			fails=1
			break
		fi
		[ "$NPID" = "$pid" ] || badpid=$((badpid + 1))
		holder=$RPID
		# let it run a little, a different while each time
		sleep "0.0$((RANDOM % 6))"
		rm -rf "$T/$tag.img.$((i - 1))"
	done
	[ $fails -eq 0 ] && ok "cr_counter: $N_CYCLES dumps and restores in a row"
	check "cr_counter: the same PID after every restore" [ $badpid -eq 0 ]
	touch "$T/$tag.go"
	cr_reap "$holder"
	cr_end "$tag" "cr_counter after $N_CYCLES dump+restore cycles"
}

# repeat_leave TAG: dump -R N_CYCLES times while it counts; then restore
# the last image once the original is done.
repeat_leave() {
	local tag=$1 pid i fails=0 img holder
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_counter"
	holder=$SPID
	cr_ready "$tag" "cr_counter -R x$N_CYCLES" || return 1
	pid=$PID
	for ((i = 1; i <= N_CYCLES; i++)); do
		img="$T/$tag.img.$i"
		rm -rf "$T/$tag.img.$((i - 1))"
		CR_IMG=$img cr_dump "$tag" "$pid" -R
		if [ "$DRC" -ne 0 ] || ! alive "$pid"; then
			not_ok "cr_counter: dump -R $i of $N_CYCLES exits 0 and leaves it running (status $DRC)"
			tail -n 5 "$T/$tag.dump.err" | sed 's/^/      /'
			fails=1
			break
		fi
		sleep "0.0$((RANDOM % 4))"
	done
	[ $fails -eq 0 ] &&
		ok "cr_counter: $N_CYCLES dumps with -R, still running after each"
	touch "$T/$tag.go"
	cr_reap "$holder"
	cr_end "$tag" "cr_counter after $N_CYCLES dumps with -R"
	[ $fails -eq 0 ] || return 1
	# The last image is a good one: restored once the original is gone,
	# it finishes the same way, rewriting the end of the same output.
	cp "$T/$tag.out" "$T/$tag.orig.out"
	if CR_IMG=$img cr_restore "$tag"; then
		cr_reap "$RPID"
		cr_end "$tag" "cr_counter restored from the last -R image"
		if cmp -s "$T/$tag.out" "$T/$tag.orig.out"; then
			ok "cr_counter: the restored -R image ends the output the same way"
		else
			not_ok "cr_counter: the restored -R image ends the output the same way"
			diff "$T/$tag.orig.out" "$T/$tag.out" | head -n 10 | sed 's/^/      /'
		fi
	else
		not_ok "cr_counter: restore from the last -R image (status $RC)"
		tail -n 5 "$T/$tag.rst.err" | sed 's/^/      /'
	fi
}

for area in "${AREAS[@]}"; do
	echo "# $area"
	case $area in
	memory) cr_area cr_memory ;;
	registers) cr_area cr_regs ;;
	signals) cr_area cr_signals ;;
	timers) cr_area cr_timers ;;
	attributes) cr_area cr_attrs ;;
	descriptors)
		cr_area cr_fds "$$"
		ghost_limit
		;;
	ipc) cr_area cr_ipc_kinds ;;
	sysv) cr_area cr_sysv ;;
	live)
		# Every area program dumped with -R goes on as if nothing
		# happened: a dump reads through copies that share state
		# with the process (positions, queues, peek offsets).
		for p in cr_memory cr_regs cr_signals cr_timers cr_attrs \
			cr_ipc_kinds cr_sysv; do
			cr_live "$p.live" "$p" &&
				cr_same_output "$p.p" "$p.live" "$p -R"
		done
		cr_live cr_fds.live cr_fds "$$" &&
			cr_same_output cr_fds.p cr_fds.live "cr_fds -R"
		;;
	unix)
		cr_area cr_unix
		unix_leave cr_unix.r
		cr_same_output cr_unix.p cr_unix.r "cr_unix -R"
		;;
	capspace)
		caps_run fdscaps.p plain
		caps_run fdscaps.c cycle
		cr_same_output fdscaps.p fdscaps.c "cr_fds under capcr run"
		;;
	repeated)
		cr_plain counter.p cr_counter
		repeat_cycles counter.c
		cr_same_output counter.p counter.c "cr_counter x$N_CYCLES"
		;;
	repeated-R)
		[ -f "$T/counter.p.out" ] || cr_plain counter.p cr_counter
		repeat_leave counter.r
		cr_same_output counter.p counter.r "cr_counter -R x$N_CYCLES"
		;;
	*) not_ok "unknown area $area" ;;
	esac
done
finish
