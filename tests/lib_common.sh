# SPDX-License-Identifier: MIT
# What every shell test's helpers share (tests/lib.sh, tests/lib_cr2.sh):
# the test's name and temporary directory, its counts, and the runner's
# time scale.  Sourced, never run.

TNAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/capcr-$TNAME.XXXXXX")
FAILS=0
CHECKS=0
SKIPS=0

# TSCALE: the runner's time scale (CAPCR_TEST_TIMEOUT_SCALE) rounded up to
# an integer >= 1; every wait of N seconds waits N * TSCALE.  tsecs N
# prints N * TSCALE.
TSCALE=$(awk -v s="${CAPCR_TEST_TIMEOUT_SCALE:-1}" \
	'BEGIN { s += 0; n = int(s); if (n < s) n++; if (n < 1) n = 1; print n }')
tsecs() {
	echo $(($1 * TSCALE))
}

# _counts STATE: the counts so far into $CAPCR_TEST_COUNTS (when set), for
# the runner; STATE is running, finished or skipped.
_counts() {
	[ -n "${CAPCR_TEST_COUNTS:-}" ] || return 0
	printf 'checks %d\nfails %d\nskips %d\nstate %s\n' \
		"$CHECKS" "$FAILS" "$SKIPS" "$1" >"$CAPCR_TEST_COUNTS"
}

# skip REASON: this test (or the rest of it) cannot run here: say why,
# count it as skipped and end the test (status 0, unless a check failed).
skip() {
	SKIPS=$((SKIPS + 1))
	echo "skip - $TNAME: $*"
	_counts skipped
	[ "$FAILS" -eq 0 ]
	exit $?
}
