# SPDX-License-Identifier: MIT
# Helpers for the shell tests (tests/t_*.sh).  Sourced, never run.
#
# The runner (tests/run.sh) gives every test:
#   CAPCR      BUILD/bin/capcr          the CLI under test
#   CAPCR_LIB  BUILD/lib/libcapcr.so    the runtime under test
#   TPROGS     BUILD/tests              the test programs (ASan+UBSan in build-san)
#   BUILD      the build directory
#
# and, when run by tests/run.sh:
#   CAPCR_TEST_COUNTS         a file where the test's counts go (see below)
#   CAPCR_TEST_TIMEOUT_SCALE  how much slower than usual the machine may be
#                             (TSCALE, an integer >= 1, multiplies waits)
#
# A test calls check/jcheck for each assertion ("ok - ..." or "FAIL - ...")
# and ends with `finish`, whose status is the test's; a test that cannot run
# here (not root, a tool missing) calls `skip REASON` instead, which counts
# as skipped, never as passed.  The counts (checks, failed, skipped, and
# whether finish or skip was reached) are kept in $CAPCR_TEST_COUNTS after
# every check, so the runner can count the checks of a test that dies.
# Processes started with `start` are killed by PID when the test ends,
# however it ends.

set -u
: "${CAPCR:?run me from tests/run.sh}" "${CAPCR_LIB:?}" "${TPROGS:?}" \
	"${BUILD:?}"

# The system python: the pyenv shim on PATH spawns dozens of processes.
PY=/usr/bin/python3

# RT_PRELOAD: the LD_PRELOAD that loads the runtime under test by hand as
# `capcr run` does (src/monitor/run.c): ASan's runtime first when the
# runtime needs it (built with make SAN=1), as its DT_NEEDED says.
RT_ASAN=$(readelf -d "$CAPCR_LIB" 2>/dev/null |
	sed -n 's/.*(NEEDED).*\[\(libasan\.so[^]]*\)\].*/\1/p' | head -n 1)
RT_PRELOAD=${RT_ASAN:+$RT_ASAN:}$CAPCR_LIB
. "$(dirname "${BASH_SOURCE[0]}")/lib_common.sh"

# Everything this test started, by PID: the processes `start` ran, and the
# targets whose "ready pid=N" lines wait_line saw, each remembered in
# $T/pids with its start time, so that a PID the kernel has since given to
# someone else is left alone; and PIDS, which other helpers (lib_cr.sh)
# append to, killed only while still in this test's session.  TERM first
# (capcr run passes it on), then KILL.
PIDS=()

_stat_field() { # PID N: field N of /proc/PID/stat after the command name
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	awk -v n="$2" '{print $n}' <<<"$st"
}

_remember() {
	local t
	t=$(_stat_field "$1" 20) && echo "$1 $t" >>"$T/pids"
}

_cleanup() {
	local p t live=() sid
	sid=$(_stat_field "$BASHPID" 4)
	if [ -f "$T/pids" ]; then
		while read -r p t; do
			[ "$(_stat_field "$p" 20)" = "$t" ] && live+=("$p")
		done <"$T/pids"
	fi
	for p in "${PIDS[@]}"; do
		[ -n "$p" ] && [ "$(_stat_field "$p" 4)" = "$sid" ] && live+=("$p")
	done
	for p in "${live[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${live[@]}"; do
		alive "$p" && sleep 0.1 && break
	done
	for p in "${live[@]}"; do
		alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap _cleanup EXIT
trap 'echo "FAIL - $TNAME: interrupted"; exit 143' TERM INT

ok() {
	CHECKS=$((CHECKS + 1))
	_counts running
	echo "ok   - $*"
}

FAILED=()
not_ok() {
	CHECKS=$((CHECKS + 1))
	FAILS=$((FAILS + 1))
	FAILED+=("$*")
	_counts running
	echo "FAIL - $*"
}

# check DESC CMD...: CMD's status decides.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# show FILE...: put files in the log (for failures).
show() {
	local f
	for f in "$@"; do
		echo "---- $(basename "$f")"
		tail -n 40 "$f" 2>/dev/null
	done
}

finish() {
	# The failed checks once more, last, where a runner showing the end
	# of the output finds them.
	if [ "$FAILS" -gt 0 ]; then
		echo "---- failed checks:"
		printf '  %s\n' "${FAILED[@]}" | head -n 25
	fi
	echo "$TNAME: $CHECKS checks, $FAILS failed"
	_counts finished
	[ "$FAILS" -eq 0 ]
	exit $?
}

# start NAME CMD...: run CMD in the background, stdout to $T/NAME.out,
# stderr to $T/NAME.err, no stdin.  Sets SPID to its PID.
start() {
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	SPID=$!
	_remember "$SPID"
}

# wait_line NAME REGEX [SECONDS]: wait until $T/NAME.out has a line
# matching REGEX (grep -E); print the last such line.  Fails on timeout.
wait_line() {
	local f=$T/$1.out re=$2 secs=$((${3:-20} * TSCALE)) i
	for ((i = 0; i < secs * 50; i++)); do
		if grep -Eq -- "$re" "$f" 2>/dev/null; then
			grep -E -- "$re" "$f" | tail -n 1
			# Remember targets by PID, for the cleanup.
			local p
			for p in $(grep -Eo -- '(^| )(pid|child|kid)=[0-9]+' \
				"$f" | sed 's/.*=//'); do
				_remember "$p"
			done
			return 0
		fi
		sleep 0.02
	done
	echo "timeout after ${secs}s waiting for /$re/ in $1.out" >&2
	show "$f" "$T/$1.err" >&2
	return 1
}

# field LINE KEY: the value of KEY=VALUE in LINE.
field() {
	sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p;s/^$2=\([^[:space:]]*\).*/\1/p" \
		<<<"$1" | head -n 1
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_exit PID [SECONDS]: wait for a child started with `start` to end;
# sets RC to its status (or 255 after the timeout, having killed it).
wait_exit() {
	local p=$1 secs=$((${2:-20} * TSCALE)) i
	for ((i = 0; i < secs * 50; i++)); do
		alive "$p" || break
		sleep 0.02
	done
	if alive "$p"; then
		echo "PID $p still running after ${secs}s: killed" >&2
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
		RC=255
		return 1
	fi
	wait "$p"
	RC=$?
	return 0
}

# go PID: tell a test program waiting in tp_wait_go() to go on.
go() {
	kill -USR2 "$1"
}

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# caps NAME PID [OPTS...]: `capcr caps --json PID` into $T/NAME.json and
# $T/NAME.cerr; sets CRC (status) and CMS (milliseconds taken).
caps() {
	local name=$1 pid=$2 t0
	shift 2
	t0=$(now_ms)
	timeout -k 1 $((10 * TSCALE)) "$CAPCR" caps --json "$@" "$pid" >"$T/$name.json" \
		2>"$T/$name.cerr"
	CRC=$?
	CMS=$(($(now_ms) - t0))
	# A sanitizer report (build-san) is a failure whatever the status.
	if grep -qE 'runtime error:|AddressSanitizer|LeakSanitizer' \
		"$T/$name.cerr"; then
		not_ok "capcr caps $* $pid: sanitizer report"
		grep -E -A8 'runtime error:|Sanitizer' "$T/$name.cerr" |
			head -n 12 | sed 's/^/      /'
	fi
	return 0
}

# jcheck DESC FILE PYCODE [ARGS...]: run PYCODE on the JSON in FILE.
# PYCODE sees d (the document), caps (d["caps"]), args (ARGS), cap(fd)
# (the one row for fd; fails if none or several), rows(fd) (all rows for
# fd), kernel_fds(), reported_fds(), and expect(cond, msg), which records
# a failure and goes on.  A failed assert or expect fails the check and
# prints why, with the document.
jcheck() {
	local desc=$1 file=$2 code=$3
	shift 3
	if "$PY" - "$file" "$@" >"$T/jcheck.log" 2>&1 <<EOF; then
import json, sys
args = sys.argv[2:]
raw = open(sys.argv[1], "rb").read()
try:
    try:
        d = json.loads(raw)
    except UnicodeDecodeError:
        # Not UTF-8 (a separate check says so): read it anyway, so the
        # other checks still run.
        d = json.loads(raw.decode("utf-8", "surrogateescape"))
except Exception as ex:
    print("not JSON (%s): %r" % (ex, raw[:400]))
    sys.exit(1)
caps = d.get("caps", [])
errs = []
def expect(cond, msg):
    if not cond:
        errs.append(msg)
    return cond
def rows(fd):
    return [c for c in caps if c["fd"] == int(fd)]
def cap(fd):
    r = rows(fd)
    assert len(r) == 1, "fd %s: %d rows in caps" % (fd, len(r))
    return r[0]
def kernel_fds():
    return sorted(c["fd"] for c in caps if c["kernel"])
def reported_fds():
    return sorted(c["fd"] for c in caps if c["reported"])
def prov(fd):
    c = cap(fd)
    assert "provenance" in c, "fd %s: no provenance: %s" % (fd, c)
    return c["provenance"]
try:
$(sed 's/^/    /' <<<"$code")
except AssertionError as ex:
    errs.append("assertion: %s" % ex)
if errs:
    for e in errs[:15]:
        print(e)
    if len(errs) > 15:
        print("... and %d more" % (len(errs) - 15))
    print("document:", json.dumps(d)[:1200])
    sys.exit(1)
EOF
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/      /' "$T/jcheck.log"
	fi
}
