#!/bin/sh
# Install the Debian packages capcr needs to build and test, when missing.
# As root, apt-get installs them; otherwise this names them and stops.
set -eu
PKGS="gcc make libc6-dev pkg-config libcmocka-dev python3 strace
	libprotobuf-c-dev protobuf-c-compiler libxxhash-dev perl
	clang libclang-rt-14-dev tmux sqlite3 vim less nftables iproute2
	redis-server nginx curl"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "capcr: installing build dependencies:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || true
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
	echo "capcr: missing Debian packages:$missing" >&2
	echo "capcr: install them with: sudo apt-get install$missing" >&2
	exit 1
fi
