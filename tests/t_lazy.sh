#!/bin/bash
# SPDX-License-Identifier: MIT
# capcr restore --lazy-pages (src/restore/lazy.c, lazy_serve.c,
# src/pages/page_lazy.c): the process runs before its anonymous memory is
# in, its pages come at their first touch and in the background.
#
#  1. cr_lazy 512 (512 MiB with a pattern, a page in 64 left as a hole):
#     restored with --lazy-pages while its go file is already there, so it
#     runs at once: it forks (the child checks every byte), drops, moves
#     and unmaps parts of three small areas, and four threads check every
#     byte of the big one in scattered orders while the server copies.
#     capcr restore ends with the program's status; the server says what
#     it did and is gone.
#  2. The same, with -d: capcr restore returns at once, the server stays
#     until every page is in, the program passes.
#  3. The restored process killed during the lazy phase: capcr restore
#     ends (status 137) and leaves nothing (no server).
#  4. A pages file changed after the dump: the processes ran before its
#     checksum was known; once it is, the restore fails naming it, and no
#     process is left.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_lazy

MIB=${LAZY_MIB:-512}

# server_of PID: the capcr-lazy child of PID, if any.
server_of() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		[ "$(cat /proc/"$c"/comm 2>/dev/null)" = capcr-lazy ] && echo "$c"
	done
}

# gone PID: it ended (within 10 s).
gone() {
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ] ||
			return 0
		sleep 0.01
	done
	return 1
}

# dumped TAG: cr_lazy MIB running, dumped and reaped; PID set.
dumped() {
	cr_env "$1"
	cr_start "$1" "${CR_ENV[@]}" "$TPROGS/cr_lazy" "$MIB"
	cr_ready "$1" "cr_lazy" || return 1
	cr_dump "$1" "$PID"
	check "$1: capcr dump exits 0 (status $DRC)" [ "$DRC" -eq 0 ] || {
		sed 's/^/      /' "$T/$1.dump.err"
		return 1
	}
	cr_reap "$SPID"
}

echo "# 1. --lazy-pages: a fork, drops, a move and four threads during the lazy phase"
if dumped lz; then
	pid=$PID
	touch "$T/lz.go"
	if cr_restore lz -v --lazy-pages; then
		check "restored with the same PID ($NPID)" [ "$NPID" = "$pid" ]
		srv=$(server_of "$RPID")
		[ -n "$srv" ] && PIDS+=("$srv")
		cr_reap "$RPID"
		cr_end lz "cr_lazy restored with --lazy-pages"
		grep -E '^capcr: (restored|lazy pages)' "$T/lz.rst.err" | sed 's/^/      /'
		grep -E 'checked' "$T/lz.out" | sed 's/^/      /'
		check "the server served faults and a fork" \
			grep -qE 'lazy pages: [2-9] processes, .*\(([1-9][0-9]*) faults.* [1-9][0-9]* forks' "$T/lz.rst.err"
		check "no warning from the server" bash -c "! grep -q 'warning: lazy' '$T/lz.rst.err'"
		[ -n "$srv" ] && check "the server ($srv) is gone" gone "$srv"
	else
		not_ok "capcr restore --lazy-pages (status $RC)"
		sed 's/^/      /' "$T/lz.rst.err"
	fi
fi

echo "# 2. --lazy-pages -d: the server stays after capcr restore"
if dumped lzd; then
	pid=$PID
	touch "$T/lzd.go"
	timeout -k 1 $((60 * TSCALE)) "$CAPCR" restore -d --lazy-pages -D "$T/lzd.img" \
		>"$T/lzd.rst.out" 2>"$T/lzd.rst.err" </dev/null
	rc=$?
	check "capcr restore -d --lazy-pages exits 0 (status $rc)" [ "$rc" -eq 0 ]
	PIDS+=("$pid")
	check "the restored program ends" gone "$pid"
	check "it prints PASS" grep -q '^PASS ' "$T/lzd.out"
	grep -E '^FAIL' "$T/lzd.out" | head -n 10 | sed 's/^/      /'
fi

echo "# 3. the restored process killed during the lazy phase"
if dumped lzk; then
	pid=$PID
	# no go file: it sleeps while the pages come in
	if cr_restore lzk --lazy-pages; then
		srv=$(server_of "$RPID")
		[ -n "$srv" ] && PIDS+=("$srv")
		check "a server runs beside capcr restore" [ -n "$srv" ]
		kill -KILL "$NPID"
		cr_reap "$RPID"
		check "capcr restore ends with the killed process's status ($RC)" [ "$RC" -eq 137 ]
		[ -n "$srv" ] && check "the server ($srv) is gone" gone "$srv"
		check "the process is gone" gone "$NPID"
	else
		not_ok "capcr restore --lazy-pages (status $RC)"
		sed 's/^/      /' "$T/lzk.rst.err"
	fi
fi

echo "# 4. a pages file that does not match its checksum"
if dumped lzc; then
	pid=$PID
	f=$(ls "$T/lzc.img"/pages-*.img | head -n 1)
	"$PY" - "$f" <<'PYEOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(40960)
    b = f.read(1)
    f.seek(40960)
    f.write(bytes([b[0] ^ 0xff]))
PYEOF
	timeout -k 1 $((60 * TSCALE)) "$CAPCR" restore --lazy-pages -D "$T/lzc.img" \
		>"$T/lzc.rst.out" 2>"$T/lzc.rst.err" </dev/null
	rc=$?
	check "restore --lazy-pages of a damaged pages file fails (status $rc)" \
		[ "$rc" -ne 0 ]
	check "  ... naming the checksum" grep -qi "checksum" "$T/lzc.rst.err"
	sed 's/^/      /' "$T/lzc.rst.err" | head -n 3
	check "  ... and leaves no process" gone "$pid"
fi

finish
