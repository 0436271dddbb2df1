#!/bin/bash
# Pseudo-terminal pairs inside the tree (src/files/pty.c) with
# tests/progs/cr_pty.c: a process holding a pty master and its slave, the
# settings away from the defaults, data queued both ways, packet and
# exclusive modes, and a child that leads a session whose controlling
# terminal the slave is, in its foreground group.
#
#   plain       cr_pty runs without a dump and passes
#   cycle       dump, the tree killed, restore: it passes with the same
#               output (each queued line arrives once, the settings and
#               the controlling terminal are back, the master still talks
#               to the slave, ^G still interrupts the child)
#   running     dump -R: the original goes on and passes with the same
#               output (the queues read at the dump were given back)
#   script      `script -q -c LOOP /dev/null` (util-linux), its shell a
#               session leader on the pty: dumped, killed and restored,
#               its output goes on, every line once and in order
#
# Run alone: tests/t_pty.sh (from the top directory, after make all), or
# through tests/run.sh.  Needs no terminal of its own.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_pty

# kids PID: the children of PID (the session leader the program forked,
# which leaves this test's session: killed here by PID if still there).
kids() {
	cat "/proc/$1/task/$1/children" 2>/dev/null
}

# ---- plain ----
cr_plain pty.p cr_pty

# ---- cycle: dump, kill, restore ----
tag=pty.c
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_pty"
if cr_ready "$tag" "cr_pty (dump+restore)"; then
	pid=$PID
	for k in $(kids "$pid"); do PIDS+=("$k"); done
	cr_dump "$tag" "$pid"
	if [ "$DRC" -ne 0 ]; then
		not_ok "dump exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		touch "$T/$tag.go"
		cr_reap "$SPID"
	else
		ok "dump exits 0"
		cr_reap "$SPID"
		check "the dumped process was killed (status $RC)" [ "$RC" -eq 137 ]
		"$CAPCR" show -D "$T/$tag.img" >"$T/$tag.show" 2>&1
		if cr_restore "$tag"; then
			check "restored with the same PID ($NPID, was $pid)" [ "$NPID" = "$pid" ]
			for k in $(kids "$NPID"); do PIDS+=("$k"); done
			touch "$T/$tag.go"
			cr_reap "$RPID"
			cr_end "$tag" "cr_pty dump+restore"
			cr_same_output pty.p "$tag" "cr_pty dump+restore"
		else
			not_ok "restore starts the process (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
		fi
	fi
fi

# ---- running: dump -R, the original goes on ----
tag=pty.r
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_pty"
if cr_ready "$tag" "cr_pty (dump -R)"; then
	pid=$PID
	for k in $(kids "$pid"); do PIDS+=("$k"); done
	cr_dump "$tag" "$pid" -R
	if [ "$DRC" -ne 0 ]; then
		not_ok "dump -R exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
	else
		ok "dump -R exits 0"
	fi
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "cr_pty after dump -R"
	cr_same_output pty.p "$tag" "cr_pty after dump -R"
fi

# ---- script: a real program, its shell in a session on the pty ----
# ticks FILE: the tick numbers script copied from the pty into FILE.
ticks() {
	tr -d '\r' <"$1" | sed -n 's/^tick \([0-9][0-9]*\)$/\1/p'
}
# consecutive FILE: every tick once, in order, from 0.
consecutive() {
	ticks "$1" | awk '$1 != NR - 1 { bad = 1 } END { exit bad || NR == 0 }'
}
if command -v script >/dev/null 2>&1; then
	tag=pty.s
	cr_env "$tag"
	cr_start "$tag" script -q -c 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done' /dev/null
	spid=$SPID
	pid=""
	for ((i = 0; i < 200 * TSCALE; i++)); do
		pid=$(cat "/proc/$spid/task/$spid/children" 2>/dev/null | awk '{print $1}')
		[ -n "$pid" ] && [ "$(ticks "$T/$tag.out" | wc -l)" -ge 3 ] && break
		sleep 0.05
	done
	if [ -z "$pid" ]; then
		not_ok "script: started and ticking"
	else
		PIDS+=("$pid")
		cr_dump "$tag" "$pid"
		if [ "$DRC" -ne 0 ]; then
			not_ok "script: dump exits 0 (status $DRC)"
			sed 's/^/      /' "$T/$tag.dump.err"
		else
			ok "script: dump exits 0"
			cr_reap "$spid"
			n=$(ticks "$T/$tag.out" | wc -l)
			# script writes to the same file again: append, as it did
			if cr_restore "$tag"; then
				for ((i = 0; i < 100 * TSCALE; i++)); do
					[ "$(ticks "$T/$tag.out" | wc -l)" -ge $((n + 10)) ] && break
					sleep 0.05
				done
				m=$(ticks "$T/$tag.out" | wc -l)
				check "script: its output goes on after the restore ($n ticks, then $m)" [ "$m" -ge $((n + 10)) ]
				if consecutive "$T/$tag.out"; then
					ok "script: every tick once, in order, across the dump"
				else
					not_ok "script: every tick once, in order, across the dump"
					ticks "$T/$tag.out" | tr '\n' ' ' | sed 's/^/      /'
					echo
				fi
				sh=$(cat "/proc/$NPID/task/$NPID/children" 2>/dev/null)
				kill -TERM "$NPID" 2>/dev/null
				wait_exit "$RPID" 10
				# the shell, in a session of its own: ends with
				# the pty's hangup, else by its PID here
				for p in $sh; do
					alive "$p" && kill -KILL "$p" 2>/dev/null
				done
			else
				not_ok "script: restore starts it (status $RC)"
				sed 's/^/      /' "$T/$tag.rst.err"
			fi
		fi
	fi
fi
finish
