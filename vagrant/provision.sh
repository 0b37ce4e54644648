#!/bin/sh
# Provisions the natlab VM; vagrant/Vagrantfile runs it as root inside the
# VM at the first `vagrant up` and on `vagrant provision`. It gives the VM
# the Debian packages natlab needs, Go, natlab built from the synced
# repository and installed as /usr/local/bin/natlab (so `sudo natlab tour`
# works from anywhere), bash completion, and a login message saying where
# to start. Running it again rebuilds and reinstalls.
#
# The work is done by the repository's own scripts, so the VM is what a
# Debian machine following the README gets: scripts/deps.sh installs the
# packages (and, through scripts/go.sh, Go 1.26 when Debian's is older),
# and `make build` builds.
#
# Settings, from the environment (the Vagrantfile sets the first three):
#   NATLAB_SRC    the repository (default: the directory above this script)
#   NATLAB_USER   who owns the repository and builds it, so that they can
#                 edit and rebuild without sudo (default: vagrant)
#   NATLAB_DEPS   demo, or test for what `sudo make test` needs too (default: demo)
#   DESTDIR       a directory to install into instead of / (to try this
#                 script outside a VM; packages still go to the system)
#   NATLAB_CHECK  0 skips the last check, which builds and runs one lab
set -eu

src=${NATLAB_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
user=${NATLAB_USER:-vagrant}
deps=${NATLAB_DEPS:-demo}
dest=${DESTDIR:-}
bindir=$dest/usr/local/bin

say() { printf '==> natlab: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "provision.sh: run it as root (Vagrant does)" >&2
	exit 1
fi
if [ ! -f "$src/go.mod" ] || [ ! -x "$src/scripts/deps.sh" ]; then
	echo "provision.sh: $src is not a natlab repository (set NATLAB_SRC)" >&2
	exit 1
fi
home=$(getent passwd "$user" | cut -d: -f6) || {
	echo "provision.sh: no user $user (set NATLAB_USER)" >&2
	exit 1
}

# Beyond scripts/deps.sh: make, which the README's commands and the build
# use (Debian's cloud boxes leave it out), bash-completion, which loads
# natlab's completion, and tcpdump, for watching a node's interfaces in
# class (natlab exec LAB NODE -- tcpdump -ni eth0).
missing=""
for p in make bash-completion tcpdump; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y -qq --no-install-recommends $missing
fi

say "installing natlab's packages and Go (scripts/deps.sh $deps)"
"$src/scripts/deps.sh" "$deps"
# deps.sh ran as root, so a Go it fetched into .tools/ is root's; the user
# rebuilds with it.
for d in "$src/.tools" "$src/bin"; do
	if [ -e "$d" ]; then chown -R "$user:" "$d"; fi
done

say "building natlab as $user (make build)"
if [ "$user" = root ]; then
	make -C "$src" --no-print-directory build
else
	# runuser keeps root's HOME; Go puts its caches under the user's.
	runuser -u "$user" -- env HOME="$home" make -C "$src" --no-print-directory build
fi

say "installing $bindir/natlab"
install -D -m 0755 "$src/bin/natlab" "$bindir/natlab"

# Completion for `natlab` and `sudo natlab`, where bash-completion looks
# for completions of commands installed under /usr/local.
if "$bindir/natlab" completion bash >/dev/null 2>&1; then
	compdir=$dest/usr/local/share/bash-completion/completions
	mkdir -p "$compdir"
	"$bindir/natlab" completion bash >"$compdir/natlab"
	say "installed bash completion in $compdir/natlab"
fi

# Shown at every interactive login by pam_motd, which reads /etc/motd.d
# on Debian.
mkdir -p "$dest/etc/motd.d"
cat >"$dest/etc/motd.d/natlab" <<EOF

  natlab is installed, built from $src.

    sudo natlab tour              the seven acts of the story, on the real kernel
    sudo natlab tour --act V      one act (I to VII)
    natlab list                   the built-in scenarios
    sudo natlab run act5-the-trick
    sudo natlab up act2-translation-table && sudo natlab table act2-translation-table home --watch

  The scenario files are in $src/scenarios; the course is
  $src/docs/course.md. After editing natlab's code:
    cd $src && make build && sudo install bin/natlab /usr/local/bin/

EOF

# Every built-in scenario parses, and one lab comes up, runs and goes away
# again: the kernel has what natlab needs (namespaces, veth, nftables)
# before a class sits down in front of it.
say "checking: $("$bindir/natlab" version | head -n 1)"
"$bindir/natlab" validate "$src"/scenarios/*.yaml >/dev/null
if [ "${NATLAB_CHECK:-1}" != 0 ]; then
	"$bindir/natlab" run act1-address-problem --name "provision-$$"
fi
say "ready: vagrant ssh -c 'sudo natlab tour'"
