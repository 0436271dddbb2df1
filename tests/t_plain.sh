#!/bin/bash
# Without a monitor the runtime changes nothing: a program (and sh, and
# python3) behaves and prints exactly the same with the runtime preloaded
# (no CAPCR_PD, or a CAPCR_PD nobody serves) as without it, and as under
# `capcr run --capinfo=off`; caps calls such processes not monitored.
# Under `capcr run` (shm) the target sees no descriptor of capcr's own.
. "$(dirname "$0")/lib.sh"

# run_to NAME CMD...: run CMD with no stdin, stdout+stderr through a pipe
# (so descriptor 1 and 2 look the same in every run) into $T/NAME.
run_to() {
	local name=$1
	shift
	"$@" </dev/null 2>&1 | cat >"$T/$name"
}

same() { # DESC A B
	if cmp -s "$T/$2" "$T/$3"; then
		ok "$1"
	else
		not_ok "$1"
		diff "$T/$2" "$T/$3" | head -n 20
	fi
}

run_to plain env -u CAPCR_PD -u LD_PRELOAD "$TPROGS/plain_ops"
check "plain_ops runs plain" grep -q '^monitored=no' "$T/plain"
run_to pre env -u CAPCR_PD LD_PRELOAD="$RT_PRELOAD" "$TPROGS/plain_ops"
same "preloaded, no CAPCR_PD: same output" plain pre
run_to bogus env CAPCR_PD=capcr-pd.nobody.listens LD_PRELOAD="$RT_PRELOAD" \
	"$TPROGS/plain_ops"
same "preloaded, CAPCR_PD nobody serves: same output" plain bogus
run_to long env CAPCR_PD="$(printf 'x%.0s' {1..300})" LD_PRELOAD="$RT_PRELOAD" \
	"$TPROGS/plain_ops"
same "preloaded, absurd CAPCR_PD: same output" plain long
run_to off "$CAPCR" run --capinfo=off -- "$TPROGS/plain_ops"
same "capcr run --capinfo=off: same output" plain off
run_to shm "$CAPCR" run -- "$TPROGS/plain_ops"
check "capcr run (shm): the target is monitored and has a region" \
	test "$(head -n 2 "$T/shm" | tr '\n' ' ')" = "monitored=yes region=yes "
sed -i -e 's/^monitored=yes$/monitored=no/' -e 's/^region=yes$/region=no/' "$T/shm"
same "capcr run (shm): same descriptors and results otherwise" plain shm

# sh and python3, with and without the runtime.
SH='echo $((6*7)); ls /proc/self/fd | wc -l; exec 3</etc/hostname; cat <&3 | wc -c; (echo sub) | cat; true'
run_to sh0 env -u LD_PRELOAD -u CAPCR_PD sh -c "$SH"
run_to sh1 env -u CAPCR_PD LD_PRELOAD="$RT_PRELOAD" sh -c "$SH"
same "sh -c: same output with the runtime preloaded" sh0 sh1
check "sh -c printed something" grep -q '^42$' "$T/sh0"
PYS='
import os, socket, subprocess, tempfile
s = socket.socket(); a, b = socket.socketpair(); r, w = os.pipe()
t = tempfile.TemporaryFile()
print(s.fileno(), a.fileno(), b.fileno(), r, w, t.fileno())
print(subprocess.run(["echo", "child"], capture_output=True).stdout)
fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
print([(fd, os.readlink("/proc/self/fd/%d" % fd).split(":")[0]) for fd in fds])
'
run_to py0 env -u LD_PRELOAD -u CAPCR_PD /usr/bin/python3 -c "$PYS"
run_to py1 env -u CAPCR_PD LD_PRELOAD="$RT_PRELOAD" /usr/bin/python3 -c "$PYS"
same "python3 -c: same output with the runtime preloaded" py0 py1
check "python3 -c printed something" grep -q "child" "$T/py0"

# caps on a preloaded process nobody monitors, and on --capinfo=off.
for how in preload off; do
	if [ $how = preload ]; then
		start "w$how" env -u CAPCR_PD LD_PRELOAD="$RT_PRELOAD" \
			"$TPROGS/plain_ops" wait
	else
		start "w$how" "$CAPCR" run --capinfo=off -- "$TPROGS/plain_ops" wait
	fi
	if ! line=$(wait_line "w$how" '^ready pid=' 20); then
		not_ok "$how: plain_ops did not get ready"
		continue
	fi
	pid=$(field "$line" pid)
	caps "w$how" "$pid"
	check "$how: caps exits 0, no warning" test "$CRC" -eq 0 -a ! -s "$T/w$how.cerr"
	jcheck "$how: caps says not monitored, kernel table only" "$T/w$how.json" '
expect(d["monitored"] is False, "monitored %s" % d["monitored"])
expect("region" not in d and "problem" not in d, "region/problem: %s" % d)
fd = int(args[0])
for r in caps:
    expect(r["kernel"] and not r["reported"] and r["badge"] is None, "fd %d: %s" % (r["fd"], r))
expect(cap(fd)["kind"] == "file" and cap(fd)["object"] == "/etc/hostname", "fd %d: %s" % (fd, cap(fd)))
expect(cap(60)["object"] == "/etc/hostname", "fd 60")
' "$(field "$line" fd)"
	go "$pid"
	wait_exit "$SPID" 10
	check "$how: exits 0" [ "$RC" -eq 0 ]
done
finish
