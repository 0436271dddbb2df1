#!/bin/bash
# SPDX-License-Identifier: MIT
# in_tmpfs.sh DIR KIB LEFT COPY -- CMD...: in a private mount namespace
# (run me under unshare -m), mount a tmpfs of KIB KiB over DIR, run CMD,
# list what is left in DIR into LEFT, copy DIR to COPY when CMD succeeded,
# and exit with CMD's status.  For the full-disk points of the sweep.
set -u
dir=$1 kib=$2 left=$3 copy=$4
shift 5
mount -t tmpfs -o "size=${kib}k,mode=0755" capcr-faults "$dir" || exit 125
"$@"
rc=$?
ls -A "$dir" >"$left"
[ $rc = 0 ] && cp -a "$dir" "$copy"
exit $rc
