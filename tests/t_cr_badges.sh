#!/bin/bash
# SPDX-License-Identifier: MIT
# Badges are candidates, the kernel decides: a region that gives another
# file's badge to a descriptor, or another badge to a dup, neither merges
# nor splits open file descriptions in the checkpoint (tests/progs/cr_badges.c).
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root"
mkdir -p "$T/img" "$T/dir"
start prog env CR_GO="$T/go" CR_DIR="$T/dir" "$CAPCR" run -- "$TPROGS/cr_badges"
MON=$SPID
pid=$(wait_line prog '^ready pid=' | sed 's/.*=//')
check "the program is ready" [ -n "$pid" ]
"$CAPCR" dump -t "$pid" -D "$T/img" >"$T/dump.log" 2>&1
check "dump succeeds" [ $? -eq 0 ]
check "dump says the kernel's word was taken over a badge" \
	grep -q "kernel's word was taken" "$T/dump.log"
wait "$MON"
start rst "$CAPCR" restore -D "$T/img"
RST=$SPID
for ((i = 0; i < 250; i++)); do kill -0 "$pid" 2>/dev/null && break; sleep 0.02; done
touch "$T/go"
wait "$RST"
check "the restored program exits 0" [ $? -eq 0 ]
check "it prints PASS" grep -q "^PASS cr_badges" "$T/prog.out"
show "$T/dump.log" "$T/prog.out" "$T/rst.err"
finish
