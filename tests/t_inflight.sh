#!/bin/bash
# Descriptors in flight (SCM_RIGHTS) with tests/progs/cr_inflight.c: a
# regular file, both ends of a pipe with data in it, eventfds, a
# descriptor the process also holds, and socket ends (one with a message
# of its own carrying a descriptor) sent over a stream and a datagram
# socketpair and not yet received.
#
#   plain       cr_inflight runs without a dump and passes (also fork)
#   cycle       dump, kill, restore: same output, passes (also fork: the
#               child receives what the parent sent)
#   running     dump -R: the original goes on and passes
#   skip        dump --skip-in-flight succeeds and warns; the restored
#               program gets the messages without their descriptors
#   deep        sockets in flight nested deeper than capcr keeps: the
#               dump is refused with a message saying so
#
# Run alone: tests/t_inflight.sh (from the top directory, after make all),
# or through tests/run.sh.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_inflight

# ---- plain ----
cr_plain infl.p cr_inflight
cr_plain infl.fp cr_inflight fork

# ---- cycle: dump, kill, restore ----
cr_cycle infl.c cr_inflight
cr_same_output infl.p infl.c "cr_inflight"
cr_cycle infl.fc cr_inflight fork
cr_same_output infl.fp infl.fc "cr_inflight fork"

# ---- running: dump -R, the original goes on ----
cr_live infl.r cr_inflight &&
	cr_same_output infl.p infl.r "cr_inflight after dump -R"

# ---- skip: --skip-in-flight ----
tag=infl.s
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_inflight" skip
if cr_ready "$tag" "cr_inflight (dump --skip-in-flight)"; then
	pid=$PID
	cr_dump "$tag" "$pid" --skip-in-flight
	if [ "$DRC" -ne 0 ]; then
		not_ok "dump --skip-in-flight exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		touch "$T/$tag.go"
		cr_reap "$SPID"
	else
		ok "dump --skip-in-flight exits 0"
		if grep -q "descriptors in flight .* dropped (--skip-in-flight)" "$T/$tag.dump.err"; then
			ok "dump --skip-in-flight warns that it drops descriptors in flight"
		else
			not_ok "dump --skip-in-flight warns that it drops descriptors in flight"
			sed 's/^/      /' "$T/$tag.dump.err"
		fi
		cr_reap "$SPID"
		if cr_restore "$tag"; then
			touch "$T/$tag.go"
			cr_reap "$RPID"
			cr_end "$tag" "cr_inflight skip: restored without descriptors in flight"
		else
			not_ok "restore of a --skip-in-flight image starts the process (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
		fi
	fi
fi

# ---- deep: nested deeper than kept ----
tag=infl.d
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_inflight" deep
if cr_ready "$tag" "cr_inflight deep"; then
	cr_dump "$tag" "$PID"
	check "dump of sockets in flight nested too deep fails (status $DRC)" [ "$DRC" -ne 0 ]
	if grep -q "nested more than [0-9]* deep" "$T/$tag.dump.err"; then
		ok "the refusal says the sockets in flight are nested too deep"
	else
		not_ok "the refusal says the sockets in flight are nested too deep"
		sed 's/^/      /' "$T/$tag.dump.err"
	fi
	check "the refused dump leaves no image" [ ! -e "$T/$tag.img/inventory.img" ]
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "cr_inflight deep after a refused dump"
fi
finish
