#!/bin/bash
# SPDX-License-Identifier: MIT
# Cgroups (issue #9): a restored tree comes back in the cgroups it was in.
#
# cr_cgroup (a parent with a second thread, and a child, playing rounds
# through pipes) is put in cgroups of its own: the parent in capcr-test-PID
# of cgroup v2 and, when the v1 pids controller is mounted, of pids (with
# pids.max 50), the child in a nested cgroup of each (pids.max 20).
#  1. (v1 pids) one thread moved alone into another cgroup: the dump is
#     refused naming the thread, and the process runs on.
#  2. dumped, killed, restored without option: both processes back in
#     their cgroups, still working; pids.max changed meanwhile comes back
#     with --manage-cgroups=full.
#  3. the cgroups removed: a restore without option is refused naming the
#     cgroup and both options, leaving no process and no cgroup; one with
#     --manage-cgroups that fails after making them (injected failure in
#     the takeover) leaves none either; with --manage-cgroups they are
#     made again with pids.max and the processes are back in them.
#  4. --manage-cgroups=ignore: the processes come back in the cgroups of
#     capcr restore.
#  5. an image nobody owns (the processes run as nobody) may not place its
#     processes in cgroups whose cgroup.procs nobody may not write, may
#     once it may, and may never create one.
# Every cgroup made is removed at the end, however the test ends.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"

if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	V2=/sys/fs/cgroup/unified
elif [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
	V2=/sys/fs/cgroup
else
	skip "no cgroup v2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup"
fi
NAME=capcr-test-$$
U=$V2/$NAME
V1=
[ "$(stat -f -c %T /sys/fs/cgroup/pids 2>/dev/null)" = cgroupfs ] &&
	V1=/sys/fs/cgroup/pids/$NAME
# Deepest first: the order they are removed in.
CGROUPS=("$U/a" "$U")
[ -n "$V1" ] && CGROUPS=("$V1/k" "$V1" "${CGROUPS[@]}")
ROOT= KID=

# Every process left in our cgroups is ours: killed, then the cgroups go.
cg_cleanup() {
	local d p i
	for d in "${CGROUPS[@]}"; do
		[ -d "$d" ] || continue
		for p in $(cat "$d/cgroup.procs" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
	done
	for p in $ROOT $KID; do
		kill -KILL "$p" 2>/dev/null
	done
	for d in "${CGROUPS[@]}"; do
		for ((i = 0; i < 100; i++)); do
			[ -d "$d" ] || break
			rmdir "$d" 2>/dev/null || sleep 0.05
		done
	done
}
trap 'cg_cleanup; _cleanup' EXIT

make_cgroups() {
	mkdir -p "$U/a" || return 1
	[ -z "$V1" ] && return 0
	mkdir -p "$V1/k" && echo 50 >"$V1/pids.max" && echo 20 >"$V1/k/pids.max"
}

# in_cg PID HIERARCHY PATH: /proc/PID/cgroup says PID is in PATH there
# ("" for v2).
in_cg() {
	grep -qx "[0-9]*:$2:$3" "/proc/$1/cgroup"
}

# in_ours: root and child in the cgroups made for them.
in_ours() {
	in_cg "$ROOT" "" "/$NAME" && in_cg "$KID" "" "/$NAME/a" || return 1
	[ -z "$V1" ] && return 0
	in_cg "$ROOT" pids "/$NAME" && in_cg "$KID" pids "/$NAME/k"
}

# gone PID...: each has ended (5 s at most).
gone() {
	local p i
	for p in "$@"; do
		for ((i = 0; i < 250 * TSCALE; i++)); do
			alive "$p" || break
			sleep 0.02
		done
		alive "$p" && return 1
	done
	return 0
}

# works FILE: after SIGUSR1, the root plays three more rounds with its
# child and says so in FILE.
works() {
	local n i
	n=$(grep -c '^works' "$1")
	kill -USR1 "$ROOT" 2>/dev/null || return 1
	for ((i = 0; i < 500 * TSCALE; i++)); do
		[ "$(grep -c '^works' "$1")" -gt "$n" ] && break
		sleep 0.02
	done
	[ "$(grep -c '^works' "$1")" -gt "$n" ] && ! grep -q FAIL "$1"
}

# dump NAME: capcr dump of the tree (killed) into $T/NAME.img; both gone.
dump() {
	mkdir "$T/$1.img"
	"$CAPCR" dump -t "$ROOT" -D "$T/$1.img" 2>"$T/$1.dump.err"
	RC=$?
	gone "$ROOT" "$KID"
}

# restore NAME IMG [OPTION...]: capcr restore -d; RC its status.
restore() {
	local name=$1 img=$2
	shift 2
	"$CAPCR" restore -D "$img" -d "$@" 2>"$T/$name.err"
	RC=$?
	PIDS+=("$ROOT" "$KID")
}

# restore_in CGROUP NAME IMG [OPTION...]: restore, capcr restore itself
# started in CGROUP (of cgroup v2).
restore_in() {
	local cg=$1 name=$2 img=$3
	shift 3
	(echo "$BASHPID" >"$cg/cgroup.procs" &&
		exec "$CAPCR" restore -D "$img" -d "$@") 2>"$T/$name.err"
	RC=$?
	PIDS+=("$ROOT" "$KID")
}

no_cgroups() {
	local d
	for d in "${CGROUPS[@]}"; do
		[ -d "$d" ] && return 1
	done
	return 0
}

remove_cgroups() {
	local d
	for d in "${CGROUPS[@]}"; do
		rmdir "$d" || return 1
	done
}

check "cgroups made (v2${V1:+, v1 pids})" make_cgroups
OUT=$T/run.out
start run "$TPROGS/cr_cgroup"
line=$(wait_line run '^ready pid=' 20) || { not_ok "cr_cgroup started"; finish; }
ROOT=$(field "$line" pid) KID=$(field "$line" kid) TID=$(field "$line" tid)
echo "$ROOT" >"$U/cgroup.procs" && echo "$KID" >"$U/a/cgroup.procs" &&
	if [ -n "$V1" ]; then
		echo "$ROOT" >"$V1/cgroup.procs" && echo "$KID" >"$V1/k/cgroup.procs"
	fi
check "the processes are in their cgroups" in_ours

# ---------------------------------------------------------------------------
if [ -n "$V1" ]; then
	echo "# 1. a thread in another cgroup than its leader"
	echo "$TID" >"$V1/k/tasks"
	mkdir "$T/thr.img"
	"$CAPCR" dump -t "$ROOT" -D "$T/thr.img" 2>"$T/thr.err"
	check "dump refused" [ $? -ne 0 ]
	check "... naming the thread and its cgroup" \
		grep -q "thread $TID of process $ROOT is not in the cgroups of its leader.*pids:/$NAME/k" "$T/thr.err"
	show "$T/thr.err"
	check "... and the process works on" works "$OUT"
	echo "$TID" >"$V1/tasks"
fi

# ---------------------------------------------------------------------------
echo "# 2. dump and restore in existing cgroups"
dump a
check "dump: exits 0, the processes are gone" [ "$RC" -eq 0 ]
wait_exit "$SPID" 5
restore a "$T/a.img"
check "restore without option: exits 0" [ "$RC" -eq 0 ]
check "... both processes back in their cgroups" in_ours
check "... and working" works "$OUT"
show "$T/a.err"
if [ -n "$V1" ]; then
	dump b
	echo 30 >"$V1/pids.max"
	restore b "$T/b.img" --manage-cgroups=full
	check "restore --manage-cgroups=full: exits 0" [ "$RC" -eq 0 ]
	check "... pids.max is the recorded 50 again" \
		[ "$(cat "$V1/pids.max")" = 50 ]
	check "... in their cgroups, working" eval 'in_ours && works "$OUT"'
	show "$T/b.err"
fi

# ---------------------------------------------------------------------------
echo "# 3. the cgroups removed"
dump c
check "dump: exits 0" [ "$RC" -eq 0 ]
check "the cgroups removed" remove_cgroups
restore c0 "$T/c.img"
check "restore without option: refused" [ "$RC" -ne 0 ]
check "... naming the cgroup and the options" \
	grep -q "cgroup /$NAME of .*does not exist here.*--manage-cgroups creates it, --manage-cgroups=ignore leaves" "$T/c0.err"
check "... leaving no process" eval '! alive "$ROOT" && ! alive "$KID"'
check "... and no cgroup" no_cgroups
show "$T/c0.err"
CAPCR_FAIL_AT=restore-mm restore c1 "$T/c.img" --manage-cgroups
check "restore --manage-cgroups failing in the takeover: fails" [ "$RC" -ne 0 ]
check "... leaving no process" eval '! alive "$ROOT" && ! alive "$KID"'
check "... and none of the cgroups it made" no_cgroups
show "$T/c1.err"
restore c2 "$T/c.img" --manage-cgroups
check "restore --manage-cgroups: exits 0" [ "$RC" -eq 0 ]
check "... the processes back in their cgroups, made again" in_ours
if [ -n "$V1" ]; then
	check "... with their pids.max" [ "$(cat "$V1/pids.max" \
		"$V1/k/pids.max" | tr '\n' ' ')" = "50 20 " ]
fi
check "... working" works "$OUT"
show "$T/c2.err"

# ---------------------------------------------------------------------------
echo "# 4. --manage-cgroups=ignore"
dump d
check "dump: exits 0" [ "$RC" -eq 0 ]
restore d "$T/d.img" --manage-cgroups=ignore
check "restore --manage-cgroups=ignore: exits 0" [ "$RC" -eq 0 ]
mine=$(grep -E '^[0-9]+:(pids)?:' /proc/self/cgroup | sort)
check "... both processes in capcr restore's cgroups" eval \
	'[ "$(grep -E "^[0-9]+:(pids)?:" /proc/$ROOT/cgroup | sort)" = "$mine" ] &&
	 [ "$(grep -E "^[0-9]+:(pids)?:" /proc/$KID/cgroup | sort)" = "$mine" ]'
check "... working" works "$OUT"
show "$T/d.err"
kill -KILL "$ROOT" "$KID"
gone "$ROOT" "$KID"

# ---------------------------------------------------------------------------
echo "# 5. an image nobody owns"
command -v setpriv >/dev/null || { echo "# setpriv missing: part 5 left out"; finish; }
# nobody's output, where nobody may open it again at restore.
chmod 711 "$T"
mkdir "$T/nb" && chown 65534:65534 "$T/nb"
NOUT=$T/nb/out
touch "$NOUT" && chown 65534:65534 "$NOUT"
setpriv --reuid=65534 --regid=65534 --clear-groups "$TPROGS/cr_cgroup" \
	>>"$NOUT" 2>&1 </dev/null &
for ((i = 0; i < 500 * TSCALE; i++)); do
	grep -q '^ready' "$NOUT" && break
	sleep 0.02
done
line=$(grep '^ready' "$NOUT")
ROOT=$(field "$line" pid) KID=$(field "$line" kid)
_remember "$ROOT"
echo "$ROOT" >"$U/cgroup.procs" && echo "$KID" >"$U/a/cgroup.procs" &&
	if [ -n "$V1" ]; then
		echo "$ROOT" >"$V1/cgroup.procs" && echo "$KID" >"$V1/k/cgroup.procs"
	fi
check "nobody's processes in their cgroups" in_ours
dump nb
check "dump: exits 0" [ "$RC" -eq 0 ]
wait "$!" 2>/dev/null
chown -R 65534:65534 "$T/nb.img"
# capcr restore runs in nobody's v2 cgroup, as in a delegated subtree.
restore_in "$U" nb0 "$T/nb.img" --allow-untrusted-dir
check "restore of nobody's image: refused" [ "$RC" -ne 0 ]
check "... naming the cgroup and why" \
	grep -q "uid 65534, who may not write .*/$NAME.*/cgroup.procs (Permission denied)" "$T/nb0.err"
check "... leaving no process" eval '! alive "$ROOT" && ! alive "$KID"'
show "$T/nb0.err"
for d in "${CGROUPS[@]}"; do
	chown 65534 "$d/cgroup.procs"
done
restore nba "$T/nb.img" --allow-untrusted-dir
check "from the root cgroup of v2: refused" [ "$RC" -ne 0 ]
check "... naming the common ancestor nobody may not write" \
	grep -q "who may not write $V2/cgroup.procs (Permission denied), the common ancestor" "$T/nba.err"
check "... leaving no process" eval '! alive "$ROOT" && ! alive "$KID"'
show "$T/nba.err"
restore_in "$U" nb1 "$T/nb.img" --allow-untrusted-dir
check "once nobody may write their cgroup.procs: restored" [ "$RC" -eq 0 ]
check "... in their cgroups, working" eval 'in_ours && works "$NOUT"'
show "$T/nb1.err"
dump nb2
chown -R 65534:65534 "$T/nb2.img"
check "the cgroups removed" remove_cgroups
restore nb3 "$T/nb2.img" --allow-untrusted-dir --manage-cgroups
check "restore --manage-cgroups of nobody's image: refused" [ "$RC" -ne 0 ]
check "... saying only root's images may create cgroups" \
	grep -q "uid 65534, and only root's images may create cgroups: cgroup .*/$NAME" "$T/nb3.err"
check "... leaving no process and no cgroup" eval \
	'! alive "$ROOT" && ! alive "$KID" && no_cgroups'
show "$T/nb3.err"
finish
