# SPDX-License-Identifier: MIT
# Helpers for the process-tree and thread tests (t_cr_tree.sh,
# t_cr_tree2.sh).  Sourced after tests/lib_cr2.sh (ok, not_ok, check, show,
# finish, cr_track, cr_alive, cr_state, cr_free_running, cr_wait_lines,
# says, failed_cleanly, rc_is, no_inventory, empty_dir, lsan_note, $T,
# $CAPCR, $TPROGS), never run.
#
# A tree runs under crt_sub (tests/progs/crt_sub.c), a child subreaper that
# reaps everything below it: when capcr dump kills the tree, the orphans
# are reaped at once (this machine's init takes a second or two), and the
# tree is gone for good when its holder has exited.  The holder is the
# crt_sub running the original root first, then the crt_sub running each
# capcr restore.
#
#   tree_start NAME CMD...     start CMD under crt_sub; HOLDER, $T/NAME.out
#   tree_root NAME [SECONDS]   wait for "ready pid=N"; sets ROOT
#   tree_dump LOG PID [OPTS]   capcr -v dump into $T/LOG.img; RC,
#                              FROZEN_MS, DUMP_MS
#   tree_wait_holder [SECS]    wait for HOLDER to exit; RC
#   tree_restore LOG IMG       capcr -v restore under crt_sub, in the
#                              background; HOLDER, RPID (the root), RST_MS
#   tree_pids ROOT             the PIDs of the tree, sorted
#   tree_track ROOT            remember every process of the tree for the
#                              cleanup (killed by PID if it still runs the
#                              same command)
#   tree_free ROOT             every process of the tree runs, none traced
#                              or stopped (zombies allowed)
#   tree_snap ROOT             the tree as /proc shows it (ids, threads,
#                              descriptors, shared mappings), comparable
#                              across a restore; snap_part, snap_same
#   img_counts IMG             "PROCESSES THREADS ZOMBIES" of an image
#   img_nfds IMG PID           descriptors of one process in an image
#   agg KEY CYCLE CMD...       a check repeated in cycles, reported once
#                              by agg_report KEY DESC
#   same_text, same_file, wait_for, passes, field_of, fail_show
for p in crt_sub crt_threads crt_many crt_tree crt_zombie crt_forker \
	crt_exit; do
	[ -x "$TPROGS/$p" ] ||
		{ echo "FAIL - $TPROGS/$p missing (run make all first)"; exit 1; }
done

HOLDER=""

# tree_start NAME CMD...: CMD under crt_sub, stdout $T/NAME.out, stderr
# $T/NAME.err, no stdin.  Sets HOLDER.
tree_start() {
	local name=$1
	shift
	"$TPROGS/crt_sub" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	HOLDER=$!
	cr_track "$HOLDER" crt_sub
}

# tree_root NAME [SECONDS]: wait for the ready line; sets ROOT.
tree_root() {
	local i secs=$((${2:-20} * TSCALE)) l
	ROOT=""
	for ((i = 0; i < secs * 100; i++)); do
		l=$(grep -m1 '^ready pid=' "$T/$1.out" 2>/dev/null)
		if [ -n "$l" ]; then
			ROOT=${l#ready pid=}
			ROOT=${ROOT%% *}
			return 0
		fi
		sleep 0.01
	done
	echo "      timeout after ${secs}s waiting for the ready line of $1"
	show "$T/$1.out" "$T/$1.err"
	return 1
}

# tree_pids ROOT: the PIDs of ROOT and all its descendants, sorted.
tree_pids() {
	local todo=("$1") p c
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		[ -d "/proc/$p" ] || continue
		echo "$p"
		for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
			todo+=("$c")
		done
	done | sort -n
}

# tree_track ROOT: remember every process of the tree for the cleanup.
tree_track() {
	local p c
	for p in $(tree_pids "$1"); do
		c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
		cr_track "$p" "$c"
	done
}

# tree_free ROOT: every process runs (or is a zombie), none is traced or
# stopped, now and over 0.1 s.
tree_free() {
	"$PY" - "$1" <<'PYEOF'
import os, sys, time
root = int(sys.argv[1])
def pids():
    out, todo = [], [root]
    while todo:
        p = todo.pop(0)
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        out.append(p)
        for t in tids:
            try:
                todo += [int(x) for x in open("/proc/%d/task/%s/children" % (p, t)).read().split()]
            except OSError:
                pass
    return out
bad = []
for i in range(3):
    for p in pids():
        try:
            st = open("/proc/%d/stat" % p).read()
            tr = [l.split()[1] for l in open("/proc/%d/status" % p) if l.startswith("TracerPid:")]
        except OSError:
            continue
        s = st[st.rindex(")") + 2]
        if s == "Z":
            continue
        if s in "tT" or (tr and tr[0] != "0"):
            bad.append("PID %d: state %s, TracerPid %s" % (p, s, tr[0] if tr else "?"))
    if bad:
        break
    time.sleep(0.03)
try:
    s = open("/proc/%d/stat" % root).read()
    if s[s.rindex(")") + 2] in "ZX":
        bad.append("the root %d is not running" % root)
except OSError:
    bad.append("the root %d is not running" % root)
for b in sorted(set(bad))[:10]:
    print("      " + b)
sys.exit(1 if bad else 0)
PYEOF
}

# tree_dump LOG PID [OPTS...]: capcr -v dump -t PID -D $T/LOG.img OPTS
# (30 s at most); messages in $T/LOG.log.  Sets RC, FROZEN_MS and DUMP_MS
# (from capcr -v; empty when it said nothing).
tree_dump() {
	local log=$1 pid=$2
	shift 2
	rm -rf "$T/$log.img"
	mkdir -p "$T/$log.img"
	timeout -k 2 $((30 * TSCALE)) "$CAPCR" -v dump -t "$pid" -D "$T/$log.img" "$@" \
		>"$T/$log.log" 2>&1 </dev/null
	RC=$?
	LAST_LOG=$T/$log.log
	FROZEN_MS=$(sed -n 's/.*frozen \([0-9.]*\) ms.*/\1/p' "$T/$log.log" | head -n 1)
	DUMP_MS=$(sed -n 's/.* \([0-9.]*\) ms in all.*/\1/p' "$T/$log.log" | head -n 1)
}

# tree_wait_holder [SECONDS]: wait for HOLDER (our child) to exit; RC is
# its status (255 after SECONDS, having killed it).
tree_wait_holder() {
	local secs=$((${1:-20} * TSCALE)) i
	for ((i = 0; i < secs * 100; i++)); do
		[ -d "/proc/$HOLDER" ] && [ "$(cr_state "$HOLDER")" != Z ] ||
			break
		sleep 0.01
	done
	if cr_alive "$HOLDER"; then
		echo "      holder $HOLDER still running after ${secs}s: killed"
		kill -KILL "$HOLDER" 2>/dev/null
		{ wait "$HOLDER"; } 2>/dev/null
		RC=255
		return 1
	fi
	{ wait "$HOLDER"; } 2>/dev/null
	RC=$?
	return 0
}

# tree_restore LOG IMG: capcr -v restore -D IMG --pidfile, foreground, in
# the background under crt_sub; messages appended to $T/LOG.log.  Waits
# for the pidfile; sets HOLDER, RPID (the root) and RST_MS.  On failure
# (no pidfile within 20 s) returns 1 with RC set to the holder's status.
tree_restore() {
	local log=$1 img=$2 i
	rm -f "$T/$log.pid"
	"$TPROGS/crt_sub" "$CAPCR" -v restore -D "$img" --pidfile "$T/$log.pid" \
		>>"$T/$log.log" 2>&1 </dev/null &
	HOLDER=$!
	cr_track "$HOLDER" crt_sub
	LAST_LOG=$T/$log.log
	RPID=""
	RST_MS=""
	for ((i = 0; i < 2000 * TSCALE; i++)); do
		RPID=$(cat "$T/$log.pid" 2>/dev/null)
		[ -n "$RPID" ] && break
		cr_alive "$HOLDER" || break
		sleep 0.01
	done
	if [ -z "$RPID" ]; then
		tree_wait_holder 5
		return 1
	fi
	RST_MS=$(sed -n 's/.*restored .* in \([0-9.]*\) ms.*/\1/p' "$T/$log.log" | tail -n 1)
	return 0
}

# same_text WHAT A B: strings A and B are equal; if not, the diff.
same_text() {
	if [ "$2" = "$3" ]; then
		return 0
	fi
	echo "      $1 differ:"
	diff <(echo "$2") <(echo "$3") | head -n 12 | sed 's/^/      | /'
	return 1
}

# same_file A B: files A and B are equal; if not, the diff.
same_file() {
	if cmp -s "$1" "$2"; then
		return 0
	fi
	diff "$1" "$2" | head -n 12 | sed 's/^/      | /'
	return 1
}

# wait_for FILE REGEX [SECONDS]: FILE has a line matching REGEX (grep -E).
wait_for() {
	local f=$1 re=$2 secs=$((${3:-20} * TSCALE)) i
	for ((i = 0; i < secs * 100; i++)); do
		grep -Eq -- "$re" "$f" 2>/dev/null && return 0
		sleep 0.01
	done
	echo "      timeout after ${secs}s waiting for /$re/ in $(basename "$f")"
	show "$f"
	return 1
}

# passes NAME: $T/NAME.out ends with "PASS ..." (else its FAIL lines).
passes() {
	if tail -n 1 "$T/$1.out" 2>/dev/null | grep -q '^PASS '; then
		return 0
	fi
	grep -E '^FAIL' "$T/$1.out" | head -n 12 | sed 's/^/      | /'
	[ -n "$(grep -E '^FAIL' "$T/$1.out")" ] || show "$T/$1.out"
	return 1
}

# tree_snap ROOT: what /proc says of the tree, one line per fact, with
# every kernel object number (pipe and socket inodes, shared mapping
# inodes) replaced by its order of first appearance, so that two snapshots
# compare equal when the same processes hold the same objects:
#   id  PID PPID PGID SID          (the root's PPID as "-")
#   thr PID TID COMM SIGBLK        (every thread)
#   fd  PID FD TARGET pos=N flags=F
#   shm PID START-END PERMS OBJECT (shared mappings)
tree_snap() {
	"$PY" - "$1" <<'PYEOF'
import os, sys
root = int(sys.argv[1])
pids, todo = [], [root]
while todo:
    p = todo.pop(0)
    try:
        tids = os.listdir("/proc/%d/task" % p)
    except OSError:
        continue
    pids.append(p)
    for t in tids:
        try:
            todo += [int(x) for x in open("/proc/%d/task/%s/children" % (p, t)).read().split()]
        except OSError:
            pass
canon = {}
def obj(kind, key):
    k = (kind, key)
    if k not in canon:
        canon[k] = "%s#%d" % (kind, sum(1 for x in canon if x[0] == kind) + 1)
    return canon[k]
out = []
for p in sorted(pids):
    try:
        st = open("/proc/%d/stat" % p).read()
    except OSError:
        continue
    f = st[st.rindex(")") + 2:].split()
    out.append("id %d %s %s %s %s" % (p, "-" if p == root else f[1], f[2], f[3],
                                       "zombie" if f[0] == "Z" else ""))
    for t in sorted(int(x) for x in os.listdir("/proc/%d/task" % p)):
        try:
            comm = open("/proc/%d/task/%d/comm" % (p, t)).read().strip()
            blk = [l.split()[1] for l in open("/proc/%d/task/%d/status" % (p, t)) if l.startswith("SigBlk:")]
        except OSError:
            continue
        out.append("thr %d %d %s %s" % (p, t, comm, blk[0] if blk else "?"))
    try:
        fds = sorted(int(x) for x in os.listdir("/proc/%d/fd" % p))
    except OSError:
        fds = []
    for fd in fds:
        try:
            tgt = os.readlink("/proc/%d/fd/%d" % (p, fd))
            info = dict(l.split(":", 1) for l in open("/proc/%d/fdinfo/%d" % (p, fd)) if ":" in l)
        except OSError:
            continue
        for kind in ("pipe", "socket"):
            if tgt.startswith(kind + ":["):
                tgt = obj(kind, tgt)
        if tgt.startswith("anon_inode:"):
            tgt = tgt.split("[")[0]
        out.append("fd %d %d %s pos=%s flags=%s" % (p, fd, tgt, info.get("pos", "?").strip(),
                                                    info.get("flags", "?").strip()))
    try:
        maps = open("/proc/%d/maps" % p).read().splitlines()
    except OSError:
        maps = []
    for l in maps:
        m = l.split(None, 5)
        if len(m) >= 5 and m[1][3] == "s":
            out.append("shm %d %s %s %s" % (p, m[0], m[1], obj("shm", (m[3], m[4]))))
print("\n".join(out))
PYEOF
}

# snap_part KIND SNAP: the lines of one kind ("id", "thr", "fd", "shm").
snap_part() {
	grep "^$1 " <<<"$2"
}

# snap_same KIND WHAT SNAP1 SNAP2: that part of two snapshots is the same.
snap_same() {
	same_text "$2" "$(snap_part "$1" "$3")" "$(snap_part "$1" "$4")"
}

# img_counts IMG: "PROCESSES THREADS ZOMBIES" in image directory IMG.
img_counts() {
	"$CAPCR" show --json -D "$1" 2>/dev/null | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("- - -"); sys.exit(0)
ps = d.get("processes", [])
print(len(ps), sum(p.get("threads", 0) for p in ps), sum(1 for p in ps if p.get("zombie")))'
}

# Per-cycle checks, reported once: agg KEY CYCLE CMD... runs CMD and
# remembers the cycles where it failed (and the output of the first);
# agg_report KEY DESC says ok or FAIL once for all cycles.
declare -A AGG_BAD AGG_OUT AGG_N
agg() {
	local key=$1 cyc=$2 out
	shift 2
	AGG_N[$key]=$((${AGG_N[$key]:-0} + 1))
	if out=$("$@" 2>&1); then
		return 0
	fi
	AGG_BAD[$key]="${AGG_BAD[$key]:-}${AGG_BAD[$key]:+ }$cyc"
	[ -n "${AGG_OUT[$key]:-}" ] || AGG_OUT[$key]="      (cycle $cyc)
$out"
	return 1
}
agg_report() {
	local key=$1 desc=$2
	if [ "${AGG_N[$key]:-0}" -eq 0 ]; then
		not_ok "$desc (never checked)"
	elif [ -z "${AGG_BAD[$key]:-}" ]; then
		ok "$desc (${AGG_N[$key]} times)"
	else
		not_ok "$desc (failed in cycles ${AGG_BAD[$key]} of ${AGG_N[$key]})"
		printf '%s\n' "${AGG_OUT[$key]}" | head -n 16
	fi
}

# fail_show FILE...: show the files, and fail.
fail_show() {
	show "$@"
	return 1
}

# field_of LINE KEY: the value of KEY=VALUE in LINE.
field_of() {
	sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p;s/^$2=\([^[:space:]]*\).*/\1/p" \
		<<<"$1" | head -n 1
}

# img_nfds IMG PID: how many descriptors process PID has in image IMG.
img_nfds() {
	"$CAPCR" show --json -D "$1" 2>/dev/null | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("-"); sys.exit(0)
for p in d.get("processes", []):
    if p.get("pid") == int(sys.argv[1]):
        print(len(p.get("fds", []))); sys.exit(0)
print("-")' "$2"
}
