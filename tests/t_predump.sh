#!/bin/bash
# SPDX-License-Identifier: MIT
# Incremental dumps: capcr pre-dump and dump --prev-images-dir (write
# tracking by async write protection and PAGEMAP_SCAN, src/pages/).
#
#  1. cr_incr (64 MiB written, then 1% of it rewritten, then 4% more,
#     pages dropped, an area mapped and one grown): pre-dump, step 1,
#     pre-dump --prev-images-dir, step 2, dump --prev-images-dir, restore
#     through the chain of two parents: the program checks every word.
#     The second pre-dump and the dump write a small part of the area
#     (sizes of their pages files); the holders end once they handed over.
#  2. The holder of the write tracking killed: the dump warns and is a
#     full one (no parent), and restores right.
#  3. A parent edited to be inconsistent: restore refuses it (the parent's
#     checksum the child recorded; then, with that fixed up as an
#     attacker would, the validator: pages the child says are in the
#     parent that it does not hold), and nothing is made.
#  4. A pre-dump alone is refused by restore; capcr check says whether
#     this kernel has what incremental dumps need.
. "$(dirname "$0")/lib_crt.sh"

cr_need cr_incr img_edit

MIB=64
AREA=$((MIB * 1048576))
HOLDER=

# predump TAG PID DIR [OPTS...]: capcr -v pre-dump, must succeed; HOLDER
# is the process left holding the tracking.
predump() {
	local tag=$1 pid=$2 dir=$3 rc
	shift 3
	mkdir -p "$dir"
	timeout -k 1 $((30 * TSCALE)) "$CAPCR" -v pre-dump -t "$pid" -D "$dir" \
		"$@" >>"$T/$tag.pre.err" 2>&1 </dev/null
	rc=$?
	HOLDER=$(sed -n 's/.*held by process \([0-9]*\).*/\1/p' "$T/$tag.pre.err" |
		tail -n 1)
	[ -n "$HOLDER" ] && PIDS+=("$HOLDER")
	check "pre-dump into $(basename "$dir") $* exits 0 (status $rc)" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || sed 's/^/      /' "$T/$tag.pre.err"
	return "$rc"
}

# step TAG N: the program does step N.
step() {
	touch "$T/$1.d/step.$2"
	wait_line "$1" "^stepped $2\$" 20 >/dev/null
}

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# gone PID: it ended (within 5 s).
gone() {
	local i
	for ((i = 0; i < 500; i++)); do
		[ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ] ||
			return 0
		sleep 0.01
	done
	return 1
}

# start TAG: cr_incr running, PID set.
start() {
	cr_env "$1"
	cr_start "$1" "${CR_ENV[@]}" "$TPROGS/cr_incr" "$MIB"
	cr_ready "$1" "cr_incr"
}

echo "# 1. pre-dump, 1% changed, pre-dump, more changed, dump, restore"
if start inc; then
	pid=$PID
	predump inc "$pid" "$T/inc.p1"
	h1=$HOLDER
	check "a holder keeps the tracking (process $h1)" [ -n "$h1" ] && [ -d "/proc/$h1" ]
	step inc 1
	predump inc "$pid" "$T/inc.p2" --prev-images-dir ../inc.p1
	h2=$HOLDER
	check "the first holder ended once it handed over" gone "$h1"
	s1=$(size_of "$T/inc.p1/pages-$pid.img")
	s2=$(size_of "$T/inc.p2/pages-$pid.img")
	echo "      pages files: first pre-dump $s1 bytes, second $s2 (area $AREA)"
	check "the first pre-dump wrote the whole area ($s1 >= $AREA)" [ "$s1" -ge "$AREA" ]
	check "the second pre-dump wrote under 5% of the area ($s2 bytes)" \
		[ "$s2" -lt $((AREA / 20)) ]
	step inc 2
	CR_IMG=$T/inc.img cr_dump inc "$pid" -v --prev-images-dir ../inc.p2
	check "dump --prev-images-dir exits 0 (status $DRC)" [ "$DRC" -eq 0 ]
	grep -E '^capcr: (dumped|incremental)' "$T/inc.dump.err" | sed 's/^/      /'
	check "the dump was incremental" grep -q '^capcr: incremental:' "$T/inc.dump.err"
	check "the second holder ended once it handed over" gone "$h2"
	s3=$(size_of "$T/inc.img/pages-$pid.img")
	check "the dump wrote under 15% of the area ($s3 bytes)" [ "$s3" -lt $((AREA * 15 / 100)) ]
	kill -KILL "$pid" 2>/dev/null
	cr_reap "$SPID"
	cp -a "$T/inc.img" "$T/inc.img2"
	cp -a "$T/inc.p2" "$T/inc.p2b"
	if cr_restore inc; then
		check "restored with the same PID ($NPID, was $pid)" [ "$NPID" = "$pid" ]
		touch "$T/inc.go"
		cr_reap "$RPID"
		cr_end inc "cr_incr restored through two parents"
	else
		not_ok "capcr restore through two parents (status $RC)"
		sed 's/^/      /' "$T/inc.rst.err"
	fi
fi

echo "# 2. the holder killed: a full dump, with a warning"
if start kh; then
	pid=$PID
	predump kh "$pid" "$T/kh.p1"
	[ -n "$HOLDER" ] && kill -KILL "$HOLDER"
	gone "$HOLDER"
	step kh 1
	CR_IMG=$T/kh.img cr_dump kh "$pid" -v --prev-images-dir ../kh.p1
	check "dump with its holder gone exits 0 (status $DRC)" [ "$DRC" -eq 0 ]
	check "  ... and says it is a full dump" grep -q 'a full dump instead' "$T/kh.dump.err"
	grep 'full dump' "$T/kh.dump.err" | sed 's/^/      /'
	s=$(size_of "$T/kh.img/pages-$pid.img")
	check "  ... which holds the whole area ($s bytes)" [ "$s" -ge "$AREA" ]
	kill -KILL "$pid" 2>/dev/null
	cr_reap "$SPID"
	rm -rf "$T/kh.p1"
	if cr_restore kh; then
		touch "$T/kh.go"
		cr_reap "$RPID"
		cr_end kh "cr_incr from the full dump"
	else
		not_ok "capcr restore of the full dump (status $RC)"
		sed 's/^/      /' "$T/kh.rst.err"
	fi
fi

# refused TAG WHAT RE: restore from $T/TAG.img fails, saying RE.
refused() {
	local tag=$1 what=$2 re=$3
	rm -f "$T/$tag.rst.err"
	"$CAPCR" restore -D "$T/inc.img2" >/dev/null 2>"$T/$tag.rst.err" </dev/null
	local rc=$?
	check "$what: restore refused (status $rc)" [ "$rc" -ne 0 ]
	if grep -Eq -- "$re" "$T/$tag.rst.err"; then
		ok "$what: says why"
	else
		not_ok "$what: says why ($re)"
	fi
	sed 's/^/      /' "$T/$tag.rst.err" | head -n 3
}

echo "# 3. a parent edited to be inconsistent"
if [ -d "$T/inc.img2" ]; then
	mv "$T/inc.p2" "$T/inc.p2.used"
	cp -a "$T/inc.p2b" "$T/inc.p2"
	pid=$(ls "$T/inc.p2" | sed -n 's/^mm-\([0-9]*\)\.img$/\1/p')
	"$TPROGS/img_edit" "$T/inc.p2" drop-runs "$pid" >/dev/null
	refused bad1 "a parent changed since" "not the parent image"
	"$TPROGS/img_edit" "$T/inc.img2" rehash-parent "$T/inc.p2" >/dev/null
	refused bad2 "a parent without the pages the image says it has" \
		"in the parent image, but mm-$pid.img of .* holds no such page"
	check "  ... and made no process" [ ! -d "/proc/$pid" ]
fi

echo "# 4. a pre-dump alone; capcr check"
if [ -d "$T/inc.p1" ]; then
	"$CAPCR" restore -D "$T/inc.p1" >/dev/null 2>"$T/pre.rst.err" </dev/null
	rc=$?
	check "restore of a pre-dump refused (status $rc)" [ "$rc" -ne 0 ]
	check "  ... saying it is a pre-dump" grep -q 'is a pre-dump' "$T/pre.rst.err"
fi
"$CAPCR" check >"$T/check.out" 2>&1
check "capcr check says incremental dumps work here" \
	grep -q '^  incremental dumps (pre-dump, --prev-images-dir): yes' "$T/check.out"

finish
