#!/bin/sh
# Package lists are words on purpose: they are split where they are used.
# shellcheck disable=SC2086
# Installs the Debian packages natlab needs, and nothing that is already
# there. For the demo (the default): iproute2 and nftables, conntrack and
# iputils-ping (the demo shows the translation table and pings through a
# NAT), curl and unzip (scripts/go.sh fetches Go with them when it is
# missing). With "test", also what the tests cross-check natlab with:
# tcpdump, natpmpc and miniupnpc (the port-mapping tests' independent
# clients), chromium for natlab ui's browser tests, iperf3
# for the data path benchmark's quick run, and zsh and fish, which parse
# natlab's completion scripts for them, and bash-completion, which bash
# needs to load natlab's. With "vm", what make vm-test
# boots Debian's kernel with: qemu (without its recommends: a GUI, UEFI
# firmware and disk tools the VM does not use), a static busybox for the
# guest's shell, and kmod's modprobe, which orders the kernel modules the
# guest loads by their dependencies; "test" installs those too where apt
# has Debian's kernel, since make test runs vm-test there. The kernel is
# fetched, never installed (scripts/vm-test.sh).
#
#   scripts/deps.sh [demo|test|vm]
set -eu
cd "$(dirname "$0")/.."

packages="iproute2 nftables conntrack iputils-ping curl unzip ca-certificates"
vm="qemu-system-x86 busybox-static kmod mmdebstrap rsync"
case "${1:-demo}" in
demo) ;;
test) packages="$packages tcpdump natpmpc miniupnpc iperf3 chromium zsh fish bash-completion gcc libc6-dev"
	lean="vagrant vagrant-libvirt shellcheck"
	vm_lean=$vm ;;
vm) packages="curl unzip ca-certificates"
	need_lean=$vm ;;
*)
	echo "usage: scripts/deps.sh [demo|test|vm]" >&2
	exit 2
	;;
esac
# Ubuntu has no chromium package (its chromium-browser is a snap), but
# GitHub's Ubuntu runners ship Google Chrome, which the browser tests use
# as well: apt is asked for chromium only where no such browser is found.
if command -v google-chrome >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
	without=""
	for p in $packages; do
		[ "$p" = chromium ] || without="$without $p"
	done
	packages=$without
fi

# missing prints those of its packages that are not installed.
missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf ' %s' "$p"
	done
}

# need installs the packages that are missing, with apt-get install's
# options $1, or fails saying which they are.
need() {
	opts=$1
	shift
	m=$(missing "$@")
	[ -n "$m" ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages:$m; run as root (sudo make ...) to install them" >&2
		exit 1
	fi
	echo "deps: installing$m" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq $opts $m >&2
}

need "" $packages
# What make vm-test needs, without recommends.
need --no-install-recommends ${need_lean:-}

# make lint's checks of vagrant/ (vagrant validate with the libvirt plugin,
# and the shell linter), without recommends: vagrant-libvirt's are a whole libvirt
# and QEMU stack that validating a Vagrantfile does not need (this way 73
# packages, 20 MiB to fetch). Optional: where apt cannot install them,
# make lint skips those checks, and make test the VM (vm-test says so).
# The VM's packages only where apt has Debian's kernel for it (not on
# Ubuntu, whose kernel package has another name): apt's lists are read
# by now, since the packages above were installed with them.
if [ -n "${vm_lean:-}" ] && apt-cache show linux-image-amd64 >/dev/null 2>&1; then
	lean="$lean $vm_lean"
fi
m=$(missing ${lean:-})
if [ -n "$m" ] && [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing$m" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends $m >&2 ||
		echo "deps: could not install$m; make lint skips the checks that need them, make test the VM" >&2
fi
scripts/go.sh >/dev/null
