#!/bin/bash
# SPDX-License-Identifier: MIT
# Seed corpus for the fuzzers, from real dumps: dumps a few test programs
# (build/tests) with build/bin/capcr into a temporary directory and packs
# each image as fuzz_image.c reads it (u8 kind, u32 length, file; kind 0
# inventory, 1 files, 2 core, 3 mm, 4 fds); writes a well-formed region for
# fuzz_region.c.  Needs root (capcr dump).
#   tests/fuzz/mkcorpus.sh [BUILD [OUT]]   (default build, tests/fuzz/corpus)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/tests/fuzz/corpus}
tmp=$(mktemp -d /tmp/capcr-mkcorpus.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$out/image" "$out/region"

pack() { # DIR OUT: one image as one input
	python3 - "$1" "$2" <<'PY'
import os, struct, sys
d, out = sys.argv[1], sys.argv[2]
def rec(kind, name):
    b = open(os.path.join(d, name), "rb").read()
    return struct.pack("<BI", kind, len(b)) + b
# inventory.img: the PIDs are its field 8; read them from the names.
pids = sorted(int(n[5:-4]) for n in os.listdir(d)
              if n.startswith("core-") and n.endswith(".img"))
blob = rec(0, "inventory.img") + rec(1, "files.img")
for p in pids:
    blob += rec(2, "core-%d.img" % p) + rec(3, "mm-%d.img" % p) + \
            rec(4, "fds-%d.img" % p)
open(out, "wb").write(blob)
PY
}

# PROG plain|run: start it (with ARGS, under capcr run for run), wait for
# "ready pid=N", dump N (with DOPTS).
dump() {
	local name=$1 mode=$2 p line
	mkdir -p "$tmp/$name.d" "$tmp/$name.img"
	if [ "$mode" = run ]; then
		env CR_GO="$tmp/$name.go" CR_DIR="$tmp/$name.d" \
			"$build/bin/capcr" run "$build/tests/$name" ${ARGS:-} \
			>"$tmp/$name.out" 2>&1 </dev/null &
	else
		env CR_GO="$tmp/$name.go" CR_DIR="$tmp/$name.d" \
			"$build/tests/$name" ${ARGS:-} >"$tmp/$name.out" 2>&1 </dev/null &
	fi
	pids+=($!)
	for _ in $(seq 200); do
		line=$(grep -m1 '^ready pid=' "$tmp/$name.out" || true)
		[ -n "$line" ] && break
		sleep 0.05
	done
	p=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' <<<"$line")
	[ -n "$p" ] || { echo "$name: not ready" >&2; return 0; }
	pids+=("$p")
	if "$build/bin/capcr" dump -t "$p" -D "$tmp/$name.img" ${DOPTS:-} \
		>"$tmp/$name.dump" 2>&1; then
		pack "$tmp/$name.img" "$out/image/$name-$mode"
		echo "$name ($mode): $(stat -c %s "$out/image/$name-$mode") bytes"
	else
		echo "$name: dump failed: $(tail -n 1 "$tmp/$name.dump")" >&2
	fi
}

for prog in cr_memory cr_signals cr_timers cr_unix cr_sysv cr_ipc_kinds \
	cr_attrs cr_tcp cr_sockopts cr_pty cr_inflight; do
	dump "$prog" plain
done
ARGS=$$ dump cr_fds plain
DOPTS=--file-locks dump cr_locks plain
dump cr_badges run
ARGS=$$ dump cr_fds run

# A region with four well-formed entries: flags 4 (badge pointers are
# offsets in the entries), count byte 4, header, array, entries.
python3 - "$root/include/capcr/capinfo.h" "$out/region/four" <<'PY'
import re, struct, sys
h = open(sys.argv[1]).read()
magic = int(re.search(r"#define CAPCR_CAPINFO_MAGIC\s+(0x[0-9a-fA-F]+)", h).group(1), 16)
abi = int(re.search(r"#define CAPCR_CAPINFO_ABI_VERSION\s+(\d+)", h).group(1))
n = 4
hdr = struct.pack("<QHHHHIIIIQQiIQ", magic, abi, 64, 16, 512, 256 * 1024,
                  (256 * 1024 - 64) // 16, 0, n, 2, 7 << 32, 0, 1, n)
arr = b"".join(struct.pack("<iHHQ", 3 + i, 2, 0, i * 512) for i in range(n))
ents = b""
for i in range(n):
    e = struct.pack("<QQiHHiIiiiiqqIIII", (7 << 32) + 1 + i, 0, 3 + i, 2, 1,
                    2, 0o644, 0, 0, 0, -100, 0, 0, 1, 0, 0, 0)
    e += bytes(256) + (b"/tmp/f%d" % i).ljust(176, b"\0")
    ents += e
open(sys.argv[2], "wb").write(bytes([4, n]) + hdr + arr + ents)
PY
ls -l "$out/image" "$out/region"
