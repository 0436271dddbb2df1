# SPDX-License-Identifier: MIT
# The start of a checkpoint/restore test script that runs test programs
# (tests/progs/cr_*.c): the paths (BUILD, CAPCR, CAPCR_LIB, TPROGS,
# exported, each taken from the environment when set), lib.sh, lib_cr.sh,
# and cr_need.  Sourced first, never run.
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
: "${BUILD:=$ROOT/build}" "${CAPCR:=$BUILD/bin/capcr}" \
	"${CAPCR_LIB:=$BUILD/lib/libcapcr.so}" "${TPROGS:=$ROOT/build/tests}"
export BUILD CAPCR CAPCR_LIB TPROGS
. "$HERE/lib.sh"
. "$HERE/lib_cr.sh"

# cr_need PROG...: skipped unless root (a restore needs clone3 with
# set_tid); failed unless every test program named is built.
cr_need() {
	local p
	[ "$(id -u)" -eq 0 ] || skip "capcr restore needs root (clone3 with set_tid)"
	for p in "$@"; do
		if [ ! -x "$TPROGS/$p" ]; then
			not_ok "$TPROGS/$p is missing (make all)"
			finish
		fi
	done
}
