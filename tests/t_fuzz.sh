#!/bin/bash
# SPDX-License-Identifier: MIT
# The fuzzers (tests/fuzz/), briefly: the image reader and validator, and
# the monitor's region reader, each for FUZZ_TEST_SECONDS (20) from its seed
# corpus, built with clang, ASan and UBSan into build-fuzz/.  A crash, leak,
# timeout or unbounded allocation fails the test.  `make fuzz` runs them
# for long.  The fuzzers do not depend on BUILD: they run once, with the
# plain build.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${FUZZ_TEST_SECONDS:-20}
case $BUILD in
*-san)
	skip "the fuzzers are sanitized builds of their own, run with $ROOT/build"
	;;
esac
if ! command -v clang >/dev/null; then
	not_ok "clang is installed (scripts/deps.sh installs it)"
	finish
fi
if make -C "$ROOT" --no-print-directory fuzz-build >"$T/build.log" 2>&1; then
	ok "fuzzers build (make fuzz-build)"
else
	not_ok "fuzzers build (make fuzz-build)"
	tail -n 20 "$T/build.log"
	finish
fi
for f in image region; do
	if "$ROOT/tests/fuzz/run.sh" "$ROOT/build-fuzz" "$SECS" "$f" \
		>"$T/$f.out" 2>&1; then
		ok "$(head -n 1 "$T/$f.out")"
	else
		not_ok "fuzz_$f found something (build-fuzz/artifacts/)"
		head -n 40 "$T/$f.out"
	fi
done
finish
