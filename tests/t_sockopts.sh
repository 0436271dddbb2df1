#!/bin/bash
# Socket options (src/files/sockopts.c) and UDP sockets (src/files/udp.c)
# with tests/progs/cr_sockopts.c: Unix stream and datagram sockets, TCP
# listeners on IPv4 and IPv6, bound and connected UDP sockets on both, each
# with options of its own and the UDP ones with datagrams queued; after
# the go file the program reads every option and address again, takes its
# queued datagrams (in order, from their senders) and uses every socket.
#
#   plain       cr_sockopts runs without a dump and passes
#   cycle       dump, kill, restore: it passes, with the same output
#   dump -R     the original goes on and passes; once it has ended, the
#               image -R left restores and passes too
#   unpriv      cr_sockopts run as nobody (only what nobody may set),
#               dumped; its image, owned by nobody, restores and passes
#               (--allow-untrusted-dir); edited to ask SO_MARK on its UDP
#               sockets, or SO_PRIORITY 7 on its TCP ones, which nobody
#               may not set, the restore is refused naming the option,
#               the socket and the owner, and leaves no process
#   invalid     an IP_TTL of 300 in the image is refused by the validator
#
# Run alone: tests/t_sockopts.sh (from the top directory, after make all),
# or through tests/run.sh.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_sockopts img_edit
EDIT=$TPROGS/img_edit

gone() {
	! alive "$1"
}

# says FILE REGEX...: FILE matches every REGEX (grep -E).
says() {
	local f=$1 re
	shift
	for re in "$@"; do
		grep -Eq -- "$re" "$f" || return 1
	done
}

# ---- plain, cycle ----
cr_plain so.p cr_sockopts
cr_cycle so.c cr_sockopts
cr_same_output so.p so.c "cr_sockopts dump+restore"

# ---- dump -R: the original goes on; then its image restores ----
tag=so.r
cr_env "$tag"
cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/cr_sockopts"
if cr_ready "$tag" "cr_sockopts (dump -R)"; then
	pid=$PID
	cr_dump "$tag" "$pid" -R
	check "dump -R exits 0 (status $DRC)" [ "$DRC" -eq 0 ] ||
		sed 's/^/      /' "$T/$tag.dump.err"
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "cr_sockopts going on after dump -R"
	cr_same_output so.p "$tag" "cr_sockopts after dump -R"
	if [ "$DRC" -eq 0 ]; then
		# The restored process writes on where the original was at
		# the dump (after its ready line), and waits for the go file.
		rm -f "$T/$tag.go"
		head -n 1 "$T/$tag.out" >"$T/$tag.first"
		cp "$T/$tag.first" "$T/$tag.out"
		if cr_restore "$tag"; then
			touch "$T/$tag.go"
			cr_reap "$RPID"
			cr_end "$tag" "the image dump -R left, restored after the original ended"
		else
			not_ok "the image dump -R left restores (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
		fi
	fi
fi

# ---- an image of nobody's asking for what nobody may not set ----
if ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
	skip "setpriv or user nobody missing: the unprivileged part is not run"
fi
tag=so.n
chmod o+x "$T"
cr_env "$tag"
chmod 777 "$T/$tag.d"
cr_start "$tag" "${CR_ENV[@]}" setpriv --reuid=65534 --regid=65534 \
	--clear-groups "$TPROGS/cr_sockopts" unpriv
if cr_ready "$tag" "cr_sockopts as nobody"; then
	pid=$PID
	cr_dump "$tag" "$pid"
	if [ "$DRC" -ne 0 ]; then
		not_ok "dump of cr_sockopts run as nobody exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		touch "$T/$tag.go"
		cr_reap "$SPID"
	else
		ok "dump of cr_sockopts run as nobody exits 0"
		cr_reap "$SPID"
		img=$T/$tag.img
		for e in mark prio ttl; do
			cp -a "$img" "$T/$tag.$e.img"
		done
		"$EDIT" "$T/$tag.mark.img" sockopt udp mark 42 >/dev/null
		check "img_edit asks SO_MARK 42 on the UDP sockets" test $? -eq 0
		"$EDIT" "$T/$tag.prio.img" sockopt tcp priority 7 >/dev/null
		check "img_edit asks SO_PRIORITY 7 on the TCP sockets" test $? -eq 0
		"$EDIT" "$T/$tag.ttl.img" sockopt udp ttl 300 >/dev/null
		check "img_edit asks IP_TTL 300 on the UDP sockets" test $? -eq 0
		chown -R 65534:65534 "$T/$tag".*img
		# its output files, which the restore opens with nobody's rights
		head -n 1 "$T/$tag.out" >"$T/$tag.first"
		cp "$T/$tag.first" "$T/$tag.out"
		chown 65534 "$T/$tag.out" "$T/$tag.err"
		for e in mark prio; do
			"$CAPCR" restore --allow-untrusted-dir -D "$T/$tag.$e.img" \
				>"$T/$tag.$e.out" 2>"$T/$tag.$e.err" </dev/null
			rc=$?
			check "$e: the restore of the edited image is refused (status $rc)" \
				[ "$rc" -ne 0 ]
			check "  ... no process $pid left" gone "$pid"
		done
		if says "$T/$tag.mark.err" "cannot set SO_MARK 42 on the UDP socket 127\.0\.0\.1:[0-9]+" \
			"Operation not permitted" "rights of uid 65534, who owns the image"; then
			ok "mark: the refusal names SO_MARK 42, the socket, the cause and the owner"
		else
			not_ok "mark: the refusal names SO_MARK 42, the socket, the cause and the owner"
			sed 's/^/      /' "$T/$tag.mark.err"
		fi
		if says "$T/$tag.prio.err" "cannot set SO_PRIORITY 7 on the socket (127\.0\.0\.1|\[::1\]):[0-9]+" \
			"Operation not permitted" "uid 65534"; then
			ok "prio: the refusal names SO_PRIORITY 7, the socket, the cause and the owner"
		else
			not_ok "prio: the refusal names SO_PRIORITY 7, the socket, the cause and the owner"
			sed 's/^/      /' "$T/$tag.prio.err"
		fi
		"$CAPCR" show -D "$T/$tag.ttl.img" --allow-untrusted-dir \
			>"$T/$tag.ttl.out" 2>"$T/$tag.ttl.err" </dev/null
		rc=$?
		check "ttl: an IP_TTL of 300 is refused by the validator (status $rc)" \
			[ "$rc" -ne 0 ]
		check "  ... naming the field" says "$T/$tag.ttl.err" \
			"files\.img: files\[[0-9]+\]\.sockopts: .*TTL 300"
		# and the image as it was restores, as nobody, and passes
		if cr_restore "$tag" --allow-untrusted-dir; then
			check "nobody's image: restored with the same PID ($NPID)" \
				[ "$NPID" = "$pid" ]
			check "  ... running as nobody" \
				grep -Eq '^Uid:[[:space:]]+65534' "/proc/$NPID/status"
			touch "$T/$tag.go"
			cr_reap "$RPID"
			cr_end "$tag" "cr_sockopts as nobody, dump+restore"
		else
			not_ok "nobody's image restores with --allow-untrusted-dir (status $RC)"
			sed 's/^/      /' "$T/$tag.rst.err"
		fi
	fi
fi
finish
