# SPDX-License-Identifier: MIT
# Helpers for the checkpoint/restore area tests (tests/t_cr_areas.sh) and
# their programs (tests/progs/cr_*.c, protocol in tests/progs/crtest.h).
# Sourced after tests/lib.sh (check, ok, not_ok, start, wait_line, field,
# alive, caps, finish, $T, $CAPCR, $TPROGS), never run.
#
# A program runs with CR_GO (its go file) and CR_DIR (a scratch directory)
# in the environment, prints "ready pid=N", waits for the go file, checks
# itself and ends with "PASS NAME" or "FAIL NAME (...)".
#
#   cr_plain  TAG PROG [ARGS...]   run it without a dump: ready, go, exit
#   cr_cycle  TAG PROG [ARGS...]   ready, dump, reap, restore, go, exit
# Both leave the program's output in $T/TAG.out, its status in RC, and
# record checks.  cr_same_output TAG1 TAG2 compares two outputs.

CR_READY_S=${CR_READY_S:-$((20 * TSCALE))}
CR_EXIT_S=${CR_EXIT_S:-$((20 * TSCALE))}

# cr_env TAG: a fresh scratch directory and go file for a run.
cr_env() {
	rm -rf "$T/$1.d" "$T/$1.go" "$T/$1.go.2" "$T/$1.img"
	mkdir -p "$T/$1.d" "$T/$1.img"
	CR_ENV=(env "CR_GO=$T/$1.go" "CR_DIR=$T/$1.d")
}

# cr_start TAG CMD...: like lib.sh's start (output in $T/TAG.out and
# $T/TAG.err, no stdin, SPID set), but through a subshell that waits for
# CMD and exits with its status, so that a dumped (killed) program does
# not make this shell print a "Killed" notice.  SPID is the subshell; the
# program's own PID comes from its ready line.
cr_start() {
	local tag=$1
	shift
	{
		"$@" >"$T/$tag.out" 2>"$T/$tag.err" </dev/null
		exit $?
	} 2>/dev/null &
	SPID=$!
	PIDS+=("$SPID")
}

# cr_ready TAG WHAT: wait for the ready line; sets PID (the program's).
cr_ready() {
	local line
	if ! line=$(wait_line "$1" '^ready pid=' "$CR_READY_S"); then
		not_ok "$2: did not get ready"
		kill -KILL "$SPID" 2>/dev/null
		RC=255
		return 1
	fi
	PID=$(field "$line" pid)
	PIDS+=("$PID")
}

# cr_wait_pidfile FILE [SECONDS]: wait until FILE holds a PID; print it.
cr_wait_pidfile() {
	local f=$1 secs=$((${2:-20} * TSCALE)) i p
	for ((i = 0; i < secs * 100; i++)); do
		p=$(cat "$f" 2>/dev/null)
		if [ -n "$p" ]; then
			echo "$p"
			return 0
		fi
		sleep 0.01
	done
	return 1
}

# cr_reap PID: wait for a child of this shell that has been killed (or is
# about to end); sets RC (255 after CR_EXIT_S seconds, having killed it).
# Like wait_exit, without the shell's "Killed" notice for a dumped one.
cr_reap() {
	local p=$1 i
	for ((i = 0; i < CR_EXIT_S * 100; i++)); do
		alive "$p" || break
		sleep 0.01
	done
	if alive "$p"; then
		echo "PID $p still running after ${CR_EXIT_S}s: killed" >&2
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
		RC=255
		return 1
	fi
	wait "$p" 2>/dev/null
	RC=$?
	return 0
}

# cr_end TAG WHAT: the program's verdict: its status and its last line.
cr_end() {
	local tag=$1 what=$2
	check "$what: exits 0 (status $RC)" [ "$RC" -eq 0 ]
	if ! grep -q "^PASS " "$T/$tag.out"; then
		not_ok "$what: prints PASS"
		grep -E '^FAIL' "$T/$tag.out" | head -n 25 | sed 's/^/      /'
	else
		ok "$what: prints PASS"
	fi
	if [ "$RC" -ne 0 ] && ! grep -q '^FAIL' "$T/$tag.out"; then
		# the program did not say why: the program's stderr, and what
		# capcr restore (whose status this is) said
		tail -n 5 "$T/$tag.out" "$T/$tag.err" 2>/dev/null | sed 's/^/      /'
		[ -f "$T/$tag.rst.err" ] &&
			grep -E 'capcr|ERROR|SUMMARY|^    #[0-3] ' "$T/$tag.rst.err" |
			head -n 12 | sed 's/^/      rst: /'
	fi
}

# cr_plain TAG PROG [ARGS...]
cr_plain() {
	local tag=$1 prog=$2 pid
	shift 2
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/$prog" "$@"
	cr_ready "$tag" "$prog plain" || return 1
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "$prog plain"
}

# cr_dump TAG PID [OPTS...]: capcr dump into $T/TAG.img (or the directory
# in CR_IMG); status in DRC, messages in $T/TAG.dump.err.
cr_dump() {
	local tag=$1 pid=$2 img=${CR_IMG:-$T/$1.img}
	shift 2
	mkdir -p "$img"
	timeout -k 1 $((30 * TSCALE)) "$CAPCR" dump -t "$pid" -D "$img" "$@" \
		>>"$T/$tag.dump.err" 2>&1 </dev/null
	DRC=$?
}

# cr_restore TAG [OPTS...]: capcr restore (foreground, in the background)
# from $T/TAG.img (or CR_IMG), with OPTS; sets RPID (capcr restore) and
# NPID (the restored process), or returns 1.
cr_restore() {
	local tag=$1 img=${CR_IMG:-$T/$1.img}
	shift
	rm -f "$T/$tag.pidfile"
	"$CAPCR" restore -D "$img" --pidfile "$T/$tag.pidfile" "$@" \
		>>"$T/$tag.rst.out" 2>>"$T/$tag.rst.err" </dev/null &
	RPID=$!
	PIDS+=("$RPID")
	NPID=$(cr_wait_pidfile "$T/$tag.pidfile" 20)
	if [ -z "$NPID" ]; then
		# it may have failed: its status tells
		wait_exit "$RPID" 5
		return 1
	fi
	PIDS+=("$NPID")
	return 0
}

# cr_cycle TAG PROG [ARGS...]: ready, dump, reap, restore, go, exit.
cr_cycle() {
	local tag=$1 prog=$2 pid
	shift 2
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/$prog" "$@"
	cr_ready "$tag" "$prog dump+restore" || return 1
	pid=$PID
	cr_dump "$tag" "$pid"
	if [ "$DRC" -ne 0 ]; then
		not_ok "$prog: capcr dump exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
		touch "$T/$tag.go"
		cr_reap "$SPID"
		RC=255
		return 1
	fi
	cr_reap "$SPID"
	check "$prog: the dumped process was killed (status $RC)" \
		[ "$RC" -eq 137 ]
	if ! cr_restore "$tag"; then
		not_ok "$prog: capcr restore starts the process (status $RC)"
		sed 's/^/      /' "$T/$tag.rst.err"
		RC=255
		return 1
	fi
	check "$prog: restored with the same PID ($NPID, was $pid)" \
		[ "$NPID" = "$pid" ]
	touch "$T/$tag.go"
	cr_reap "$RPID"
	cr_end "$tag" "$prog dump+restore"
}

# cr_live TAG PROG [ARGS...]: ready, dump -R, go: the original goes on
# after the dump and passes its own checks ($T/TAG.out).
cr_live() {
	local tag=$1 prog=$2 what="$2 after dump -R"
	shift 2
	cr_env "$tag"
	cr_start "$tag" "${CR_ENV[@]}" "$TPROGS/$prog" "$@"
	cr_ready "$tag" "$what" || return 1
	cr_dump "$tag" "$PID" -R
	if [ "$DRC" -eq 0 ]; then
		ok "$what: capcr dump -R exits 0"
	else
		not_ok "$what: capcr dump -R exits 0 (status $DRC)"
		sed 's/^/      /' "$T/$tag.dump.err"
	fi
	touch "$T/$tag.go"
	cr_reap "$SPID"
	cr_end "$tag" "$what"
}

# cr_norm FILE: a program's output with what may differ between runs
# (its PID) taken out.
cr_norm() {
	sed -e 's/^ready pid=[0-9]*/ready pid=N/' "$1"
}

# cr_same_output TAG1 TAG2 WHAT: the two outputs are the same.
cr_same_output() {
	if diff <(cr_norm "$T/$1.out") <(cr_norm "$T/$2.out") \
		>"$T/$1-$2.diff" 2>&1; then
		ok "$3: output the same with and without dump+restore"
	else
		not_ok "$3: output the same with and without dump+restore"
		head -n 30 "$T/$1-$2.diff" | sed 's/^/      /'
	fi
}

# cr_area PROG [ARGS...]: the program both ways, and the outputs compared.
cr_area() {
	local prog=$1
	shift
	cr_plain "$prog.p" "$prog" "$@"
	cr_cycle "$prog.c" "$prog" "$@"
	cr_same_output "$prog.p" "$prog.c" "$prog"
}

# cr_caps_same BEFORE AFTER: the capability space in $T/AFTER.json has the
# same descriptors, kinds and badges as $T/BEFORE.json.
cr_caps_same() {
	if "$PY" - "$T/$1.json" "$T/$2.json" >"$T/capsdiff.log" 2>&1 <<'EOF'; then
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
errs = []
if not b.get("monitored"):
    errs.append("not monitored after the restore: %s" % b.get("problem"))
def table(d):
    return {c["fd"]: c for c in d["caps"]}
ta, tb = table(a), table(b)
if sorted(ta) != sorted(tb):
    errs.append("descriptors %s, were %s" % (sorted(tb), sorted(ta)))
for fd in sorted(ta):
    if fd not in tb:
        continue
    x, y = ta[fd], tb[fd]
    for k in ("kind", "badge", "reported", "kernel", "cloexec", "pos"):
        if x.get(k) != y.get(k):
            errs.append("fd %d: %s %r, was %r" % (fd, k, y.get(k), x.get(k)))
    px, py = x.get("provenance", {}), y.get("provenance", {})
    for k in ("origin", "path", "flags"):
        if px.get(k) != py.get(k):
            errs.append("fd %d: provenance %s %r, was %r" % (fd, k, py.get(k), px.get(k)))
for e in errs[:20]:
    print(e)
sys.exit(1 if errs else 0)
EOF
		ok "caps: same descriptors, kinds and badges after the restore"
	else
		not_ok "caps: same descriptors, kinds and badges after the restore"
		sed 's/^/      /' "$T/capsdiff.log"
	fi
}

# cr_caps_new BEFORE NOW FD: in $T/NOW.json, FD is reported, with a badge
# that no descriptor had in $T/BEFORE.json.
cr_caps_new() {
	if "$PY" - "$T/$1.json" "$T/$2.json" "$3" >"$T/capsnew.log" 2>&1 <<'EOF'; then
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
fd = int(sys.argv[3])
old = {c.get("badge") for c in a["caps"]}
rows = [c for c in b["caps"] if c["fd"] == fd]
errs = []
if len(rows) != 1:
    errs.append("fd %d: %d rows" % (fd, len(rows)))
else:
    c = rows[0]
    if not c.get("kernel"):
        errs.append("fd %d: the kernel does not have it" % fd)
    if not c.get("reported"):
        errs.append("fd %d: not reported by the restored process" % fd)
    if not c.get("badge"):
        errs.append("fd %d: no badge" % fd)
    elif c["badge"] in old:
        errs.append("fd %d: badge %d was already in use before the dump" % (fd, c["badge"]))
    if c.get("provenance", {}).get("origin") != "open":
        errs.append("fd %d: provenance %s" % (fd, c.get("provenance")))
for e in errs:
    print(e)
if errs:
    print("document:", json.dumps(b)[:1500])
sys.exit(1 if errs else 0)
EOF
		ok "caps: a descriptor opened after the restore is reported with a new badge"
	else
		not_ok "caps: a descriptor opened after the restore is reported with a new badge"
		sed 's/^/      /' "$T/capsnew.log"
	fi
}
