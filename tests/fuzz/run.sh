#!/bin/bash
# SPDX-License-Identifier: MIT
# Run each fuzzer of DIR (make fuzz-build) for SECONDS, from a working copy
# of its seed corpus, and print what it did: executions, their rate, and
# the coverage libFuzzer reached.  Status 1 if any fuzzer found a crash,
# leak or timeout; the reproducer is kept in DIR/artifacts/.
#   tests/fuzz/run.sh DIR SECONDS [FUZZER...]
set -u
dir=$1 secs=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(image region)
status=0
for n in "${names[@]}"; do
	bin=$dir/fuzz_$n
	work=$dir/corpus/$n
	mkdir -p "$work" "$dir/artifacts"
	# The seeds as they are now (an image format change makes old
	# copies stale: they would stop at the header check).
	cp "$root"/tests/fuzz/corpus/"$n"/* "$work"/ 2>/dev/null
	log=$dir/fuzz_$n.log
	# -rss_limit_mb / -malloc_limit_mb: an allocation the input's sizes
	# could drive unbounded is a finding, not just slowness.
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		-malloc_limit_mb=256 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/$n-" "$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1)
	ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -n 1)
	corp=$(ls "$work" | wc -l)
	echo "fuzz_$n: ${execs:-?} execs in ${secs}s (${rate:-?}/s), ${cov:-cov: ?}, ${ft:-ft: ?}, corpus $corp, status $rc"
	if [ $rc -ne 0 ]; then
		status=1
		grep -E -A25 '==ERROR|runtime error|SUMMARY|Test unit written' \
			"$log" | head -n 40
	fi
done
exit $status
