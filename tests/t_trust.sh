#!/bin/bash
# SPDX-License-Identifier: MIT
# The image directory as an attacker's: every attack of issue #8 tried
# again must fail with a clear message and harm nothing (docs/security.md).
#
#  a. dump: links planted in the image directory under the names capcr
#     writes (pages-PID.img, NAME.tmp, inventory.img) towards a root-owned
#     file: the file stays untouched; a directory others may write, or that
#     another user owns, is refused (unless --allow-untrusted-dir; a sticky
#     one is fine); an older image of ours in the directory is replaced; a
#     full disk says so, with how much was written.
#  b. restore and show: an image another user owns, or that others may
#     write, or with a file of two links, is refused naming the fix; an
#     image file that is a FIFO, a link to /dev/zero or a link at all is
#     refused at once (no hang); the checksum is no defence (img_edit
#     recomputes it), the owner check is.
#  c. names inside the image: a pipe's data file "../../../../etc/shadow",
#     a name the inventory does not list: refused, also with
#     --allow-untrusted-dir.  A path rewritten to a root-only file in an
#     image of another user's, with --allow-untrusted-dir: opened with that
#     user's rights, so refused.
#  d. a deleted file whose image mode is 04777 comes back 0755: no set-id
#     bit, no write for others.
. "$(dirname "$0")/lib_cr2.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (restore, chown to nobody)"
EDIT=$TPROGS/img_edit
[ -x "$EDIT" ] || { echo "FAIL - $EDIT missing (run make all first)"; exit 1; }
id nobody >/dev/null 2>&1 || skip "no user nobody"

# The root-owned file every planted link points to.
VICTIM=$T/victim
printf 'precious\n' >"$VICTIM"
chmod 600 "$VICTIM"
untouched() {
	[ "$(cat "$VICTIM")" = precious ] && [ "$(stat -c %a "$VICTIM")" = 600 ] ||
		{ echo "      victim now: $(stat -c '%a %s' "$VICTIM")"; return 1; }
}

# fast_fail LOG SECS CMD...: CMD fails within SECS seconds (no hang).
fast_fail() {
	local log=$1 secs=$2 t0 t1
	shift 2
	t0=$(date +%s%N)
	timeout -k 1 20 "$@" >"$T/$log.log" 2>&1 </dev/null
	RC=$?
	LAST_LOG=$T/$log.log
	t1=$(date +%s%N)
	if [ "$RC" -eq 0 ] || [ "$RC" -ge 124 ]; then
		echo "      exit status $RC"
		show "$LAST_LOG"
		return 1
	fi
	[ $(((t1 - t0) / 1000000)) -lt $((secs * 1000 * TSCALE)) ] ||
		{ echo "      took $(((t1 - t0) / 1000000)) ms"; return 1; }
}

shows() { "$CAPCR" show -D "$1" >/dev/null; }

counter() { # NAME: a counter writing to $T/NAME.out; sets P
	cr_start "$1" "$TPROGS/crr_counter" -i 10 -n "${2:-100000}"
	P=$SPID
	cr_wait_lines "$T/$1.out" 3 || not_ok "counter $1 started"
}

# ---------------------------------------------------------------------------
echo "# a. dump"
counter cnt
D=$T/a-planted
mkdir "$D"
ln -s "$VICTIM" "$D/pages-$P.img"
cr_dump a-planted -R -t "$P" -D "$D"
check "dump with pages-$P.img a link to a root file: refused" failed_cleanly
check "  ... saying the name is a symbolic link" says a-planted \
	"pages-$P\.img" "symbolic link"
check "  ... the file it points to is untouched" untouched
check "  ... the link is left as it was" test -L "$D/pages-$P.img"
check "  ... the target goes on" cr_free_running "$P"

D=$T/a-tmp
mkdir "$D"
for n in core-$P.img files.img mm-$P.img fds-$P.img inventory.img; do
	ln -s "$VICTIM" "$D/$n.tmp"
done
cr_dump a-tmp -R -t "$P" -D "$D"
check "dump with every NAME.tmp a link to a root file: succeeds" rc_is 0
check "  ... the file they point to is untouched" untouched
check "  ... no image file is a link" \
	test -z "$(find "$D" -name '*.img' -type l)"
check "  ... the image is good" shows "$D"

D=$T/a-inv
mkdir "$D"
ln -s "$VICTIM" "$D/inventory.img"
cr_dump a-inv -R -t "$P" -D "$D"
check "dump with inventory.img a link to a root file: refused" failed_cleanly
check "  ... saying so" says a-inv "inventory\.img" "symbolic link"
check "  ... the file it points to is untouched" untouched

D=$T/a-again
mkdir "$D"
cr_dump a-again1 -R -t "$P" -D "$D"
ino1=$(stat -c %i "$D/core-$P.img")
cr_dump a-again2 -R -t "$P" -D "$D"
check "a second dump into the same directory replaces the first" rc_is 0
check "  ... with new files" test "$(stat -c %i "$D/core-$P.img")" != "$ino1"
check "  ... a good image" shows "$D"

D=$T/a-world
mkdir "$D"
chmod 777 "$D"
cr_dump a-world -R -t "$P" -D "$D"
check "dump into a world-writable directory: refused" failed_cleanly
check "  ... naming it and the fix" says a-world "$D" "writable by every user" \
	"chmod go-w" "allow-untrusted-dir"
check "  ... writes nothing" empty_dir "$D"
chmod 775 "$D"
cr_dump a-group -R -t "$P" -D "$D"
check "dump into a group-writable directory: refused" failed_cleanly
check "  ... naming it and the fix" says a-group "writable by its group" \
	"chmod go-w"
chmod 1777 "$D"
cr_dump a-sticky -R -t "$P" -D "$D"
check "dump into a sticky world-writable directory (like /tmp): fine" rc_is 0

D=$T/a-nobody
mkdir "$D"
chown nobody "$D"
cr_dump a-nobody -R -t "$P" -D "$D"
check "dump into a directory nobody owns: refused" failed_cleanly
check "  ... naming the owner and the fix" says a-nobody "belongs to nobody" \
	"chown" "allow-untrusted-dir"
check "  ... writes nothing" empty_dir "$D"
cr_dump a-nobody-ok -R --allow-untrusted-dir -t "$P" -D "$D"
check "  ... and with --allow-untrusted-dir, done" rc_is 0

# A full disk: a tmpfs too small for the pages.
FULL=$T/full
mkdir "$FULL"
if mount -t tmpfs -o size=64k,mode=700 tmpfs "$FULL" 2>/dev/null; then
	cr_dump a-full -R -t "$P" -D "$FULL"
	check "dump onto a full disk: fails" failed_cleanly
	check "  ... saying the disk is full, how much was written and needed" \
		says a-full "No space left on device" "disk is full" \
		"[0-9.]+ [KM]iB of the image were written" \
		"memory alone needs about [1-9][0-9]* KiB" "[0-9]+ KiB free"
	check "  ... leaves nothing behind" empty_dir "$FULL"
	check "  ... the target goes on" cr_free_running "$P"
	umount "$FULL"
else
	echo "# (no tmpfs mount here: full disk not tried)"
fi
kill -KILL "$P" 2>/dev/null
cr_reap "$P"

# ---------------------------------------------------------------------------
echo "# b. restore and show"
counter good 150
G=$T/good
mkdir "$G"
cr_dump b-good -t "$P" -D "$G"
check "a good image" rc_is 0
cr_reap "$P"

copy() { # NAME: a fresh copy of the good image
	rm -rf "${T:?}/$1"
	cp -a "$G" "$T/$1"
}
refused() { # NAME DESC REGEX...: restore and show of $T/NAME both refuse
	local name=$1 desc=$2
	shift 2
	fast_fail "r-$name" 5 "$TPROGS/crr_reaper" "$CAPCR" restore -D "$T/$name"
	check "restore, $desc: refused at once" test $? -eq 0
	check "  ... saying why" says "r-$name" "$@"
	check "  ... nothing left behind" no_stray "r-$name"
	check "  ... no process $P" cr_gone "$P"
	fast_fail "s-$name" 5 "$CAPCR" show -D "$T/$name"
	check "show, $desc: refused at once" test $? -eq 0
	check "  ... saying why" says "s-$name" "$@"
}

copy owned
chown -R nobody "$T/owned"
refused owned "image of user nobody" "belongs to nobody" "chown" \
	"allow-untrusted-dir"

copy gw
chmod g+w "$T/gw"
refused gw "group-writable image directory" "writable by its group" \
	"chmod go-w"

copy fw
chmod o+w "$T/fw/files.img"
refused fw "a world-writable image file" "files\.img" "writable by every user" \
	"chmod go-w"

copy fo
chown nobody "$T/fo/mm-$P.img"
refused fo "an image file of user nobody" "mm-$P\.img" "belongs to nobody"

copy hl
ln "$T/hl/core-$P.img" "$T/hl-extra"
refused hl "an image file with two links" "core-$P\.img" "hard links"
rm -f "$T/hl-extra"

copy fifo
rm "$T/fifo/pages-$P.img"
mkfifo -m 600 "$T/fifo/pages-$P.img"
refused fifo "pages-$P.img a FIFO" "pages-$P\.img" "FIFO" "not a regular file"

copy fifoinv
rm "$T/fifoinv/inventory.img"
mkfifo -m 600 "$T/fifoinv/inventory.img"
refused fifoinv "inventory.img a FIFO" "inventory\.img" "FIFO"

copy zero
rm "$T/zero/files.img"
ln -s /dev/zero "$T/zero/files.img"
refused zero "files.img a link to /dev/zero" "files\.img" "symbolic link"
check "  ... and no 'size of the target' talk" not_says r-zero "truncated"

copy zerobig
rm "$T/zerobig/pages-$P.img"
ln -s /dev/zero "$T/zerobig/pages-$P.img"
refused zerobig "pages-$P.img a link to /dev/zero" "pages-$P\.img" \
	"symbolic link"

# The checksum is no defence: recomputed, the edit passes it; the owner
# check is what stops another user's edit.
copy shadow
SECRET=$T/secret
printf 'root-only\n' >"$SECRET"
chmod 600 "$SECRET"
"$EDIT" "$T/shadow" path "$T/good.out" "$SECRET" >/dev/null
check "img_edit points the counter's stdout at a root-only file" test $? -eq 0
check "  ... and the checksums still match" shows "$T/shadow"
chown -R nobody "$T/shadow"
refused shadow "that image, as nobody's" "belongs to nobody"
cr_restore c-shadow-opt --allow-untrusted-dir -D "$T/shadow"
check "  ... with --allow-untrusted-dir: opened with nobody's rights, refused" \
	failed_cleanly
# The image's process was root's: refused for its credentials first
# (t_creds.sh), or for the path opened with nobody's rights.
check "  ... saying so" says c-shadow-opt \
	"only root's images may restore|secret.*Permission denied.*rights of uid 65534"
check "  ... the secret is untouched" \
	test "$(cat "$SECRET")" = root-only
check "  ... nothing left behind" no_stray c-shadow-opt

# A descriptor number capcr cannot give: said precisely, not "unknown".
copy bigfd
"$EDIT" "$T/bigfd" fd "$P" 1 1048575 >/dev/null
cr_restore c-bigfd -D "$T/bigfd"
check "restore, descriptor 1 renumbered 1048575: refused" failed_cleanly
check "  ... saying which descriptor and what limit" says c-bigfd \
	"descriptor 1048575" "ulimit -n"
check "  ... nothing left behind" no_stray c-bigfd

# ---------------------------------------------------------------------------
echo "# c. names inside the image"
rm -f "$T/pcnt.pid"
( printf 'pipe-data-1234' |
	{ echo "$BASHPID" >"$T/pcnt.pid"; exec "$TPROGS/crr_counter" -i 10 -n 200 \
		>"$T/pcnt.out" 2>/dev/null; } ) 2>/dev/null &
for ((i = 0; i < 200; i++)); do [ -s "$T/pcnt.pid" ] && break; sleep 0.01; done
PP=$(cat "$T/pcnt.pid")
cr_track "$PP" crr_counter
cr_wait_lines "$T/pcnt.out" 3 || not_ok "piped counter started"
PI=$T/pipe
mkdir "$PI"
cr_dump c-pipe -t "$PP" -D "$PI"
check "a counter reading a pipe with data: dumped" rc_is 0
pdata=$(cd "$PI" && ls pipe-*.img 2>/dev/null | head -n 1)
check "  ... the pipe's data is in $pdata" test -n "$pdata"
cp -a "$PI" "$T/pipe-ok"

for bad in ../../../../etc/shadow /etc/shadow . .. "" shadow; do
	tag=$(printf '%s' "$bad" | tr -c 'a-z' '_')
	rm -rf "$T/pn"
	cp -a "$T/pipe-ok" "$T/pn"
	"$EDIT" "$T/pn" data-file "$pdata" "$bad" >/dev/null
	for opt in "" --allow-untrusted-dir; do
		cr_restore "c-pn$tag$opt" $opt -D "$T/pn"
		check "pipe data file '$bad' ${opt:+($opt) }: refused" failed_cleanly
		if [ "$bad" = shadow ]; then
			check "  ... saying the inventory does not list it" \
				says "c-pn$tag$opt" "does not list|not in inventory"
		else
			check "  ... saying it is no plain name" \
				says "c-pn$tag$opt" "not a plain name|names a bad file"
		fi
		check "  ... nothing left behind" no_stray "c-pn$tag$opt"
	done
done

# ---------------------------------------------------------------------------
echo "# d. a deleted file of mode 04777"
rm -f "$T/gcnt.pid"
(
	exec 5<>"$T/ghost"
	printf 'ghost-data' >&5
	rm "$T/ghost"
	echo "$BASHPID" >"$T/gcnt.pid"
	exec "$TPROGS/crr_counter" -i 10 -n 400 >"$T/gcnt.out" 2>/dev/null
) </dev/null &
for ((i = 0; i < 200; i++)); do [ -s "$T/gcnt.pid" ] && break; sleep 0.01; done
GP=$(cat "$T/gcnt.pid")
cr_track "$GP" crr_counter
cr_wait_lines "$T/gcnt.out" 3 || not_ok "counter with a deleted file started"
GI=$T/ghostimg
mkdir "$GI"
cr_dump d-ghost -t "$GP" -D "$GI"
check "a counter holding a deleted file: dumped" rc_is 0
cr_reap "$GP"
"$EDIT" "$GI" mode /ghost 4777 >/dev/null
check "img_edit sets the deleted file's mode to 04777" test $? -eq 0
n0=$(cr_lines "$T/gcnt.out")
cr_start d-ghost-r timeout -k 2 $((30 * TSCALE)) "$CAPCR" restore -D "$GI"
R=$SPID
check "restored" cr_wait_lines "$T/gcnt.out" $((n0 + 3)) 10
mode=$(stat -L -c %a "/proc/$GP/fd/5" 2>/dev/null)
check "  ... the re-created file has mode 755, not 4777 (got $mode)" \
	test "$mode" = 755
check "  ... owned by root" test "$(stat -L -c %u "/proc/$GP/fd/5" 2>/dev/null)" = 0
check "  ... still deleted" \
	grep -q ' (deleted)$' <<<"$(readlink "/proc/$GP/fd/5" 2>/dev/null)"
check "  ... with its contents" \
	test "$(cat "/proc/$GP/fd/5" 2>/dev/null)" = ghost-data
cr_wait_exit "$R" 30
check "  ... runs to its end" rc_is 0

# ---------------------------------------------------------------------------
echo "# e. after all that, the good image restores"
cr_restore e-good -D "$G"
check "restore of the untouched good image" rc_is 0
check "  ... its output consecutive" counting "$T/good.out" 150
check "the root file the links pointed to is untouched" untouched
finish
