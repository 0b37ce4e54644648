#!/bin/sh
# Installs the Debian packages natlab needs, and nothing that is already
# there. For the demo (the default): iproute2 and nftables, conntrack and
# iputils-ping (the demo shows the translation table and pings through a
# NAT), curl and unzip (scripts/go.sh fetches Go with them when it is
# missing). With "test", also what the tests cross-check natlab with:
# tcpdump and natpmpc, chromium for natlab ui's browser tests, and iperf3
# for the data path benchmark's quick run.
#
#   scripts/deps.sh [demo|test]
set -eu
cd "$(dirname "$0")/.."

packages="iproute2 nftables conntrack iputils-ping curl unzip ca-certificates"
case "${1:-demo}" in
demo) ;;
test) packages="$packages tcpdump natpmpc iperf3 chromium" ;;
*)
	echo "usage: scripts/deps.sh [demo|test]" >&2
	exit 2
	;;
esac

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages:$missing; run as root (sudo make ...) to install them" >&2
		exit 1
	fi
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq $missing >&2
fi
scripts/go.sh >/dev/null
