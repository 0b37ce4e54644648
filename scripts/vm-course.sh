#!/bin/sh
# make vm-course: the coursework VM for real. It builds the guest the
# Vagrantfile's box (debian/bookworm64) would be, from Debian's packages,
# runs vagrant/provision.sh in it as `vagrant up` does, boots it on the
# box's own kernel (Debian 12's, under qemu's TCG emulation: /dev/kvm hangs
# guests on natlab's machines) and runs `sudo natlab tour --no-pause` there
# as the vagrant user, as a student would. docs/course.md says what this
# checks and what it does not.
#
# The box: mmdebstrap of Debian's minbase with the packages a Vagrant
# Debian box has that matter here (the kernel, kmod, sudo, systemd, ...),
# a vagrant user with passwordless sudo, and the repository copied to
# /home/vagrant/natlab leaving out what the Vagrantfile's rsync leaves out.
# It is provisioned in a chroot on this machine (the packages and Go come
# from Debian's mirror and the Go module proxy, as in a VM), then written
# to an ext4 image and booted; the guest has no network, as the tour
# needs none.
#
# The box is cached in ~/.cache/natlab/vm-course/ (VM_COURSE_CACHE): a new one is made and
# provisioned from scratch (the first `vagrant up`) when provision.sh,
# deps.sh or go.sh change; otherwise the cached, provisioned box is
# provisioned again with the current repository (`vagrant provision`),
# which rebuilds natlab. VM_COURSE_FRESH=1 makes a new box anyway.
#
# A new box takes about ten minutes on a CI machine of two cores (Debian's
# packages, Go and natlab's modules fetched, natlab built from cold);
# provisioning a cached one and the boot with the tour about a minute
# and a half.
#
#   VM_MEM=2048 VM_SMP=2 VM_TIMEOUT=15m    the guest
#   VM_OPTIONAL=1                          skip, saying why, where it cannot run
# The hooks and the chroot's script are run by others, who expand their
# $1; the cleanup runs from a trap.
# shellcheck disable=SC2016,SC2317
set -eu
cd "$(dirname "$0")/.."
src=$PWD

optional=${VM_OPTIONAL:-}
skip() {
	if [ -n "$optional" ]; then
		echo "vm-course: SKIPPED: $*" >&2
		exit 0
	fi
	echo "vm-course: $*" >&2
	exit 1
}
say() { printf 'vm-course: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || skip "needs root (it builds a Debian system with mmdebstrap and chroot)"
if [ -z "$optional" ]; then
	scripts/deps.sh vm >/dev/null
fi
PATH=$PATH:/sbin:/usr/sbin
for tool in mmdebstrap qemu-system-x86_64 mkfs.ext4 rsync unshare timeout flock; do
	command -v "$tool" >/dev/null 2>&1 || skip "needs $tool (scripts/deps.sh vm installs it)"
done

suite=bookworm # the Vagrantfile's box, debian/bookworm64
mirror=${VM_COURSE_MIRROR:-http://deb.debian.org/debian}
# Outside the repository: CI runs from a fresh clone each time.
cache=${VM_COURSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/natlab/vm-course}
key=$(cat vagrant/provision.sh scripts/deps.sh scripts/go.sh | sha256sum | cut -c1-16)
box=$cache/$suite-$key
mkdir -p "$cache"
# One box at a time: two runs (two CI jobs) share the cache.
exec 9>"$cache/lock"
flock 9

# Boxes of older scripts are of no more use.
for old in "$cache"/"$suite"-*; do
	[ "$old" = "$box" ] || [ ! -e "$old" ] || rm -rf "$old"
done
[ -z "${VM_COURSE_FRESH:-}" ] || rm -rf "$box"

first=false
[ -f "$box/.provisioned" ] || first=true
if [ ! -f "$box/.made" ]; then
	rm -rf "$box"
	say "making the box: Debian $suite from $mirror (mmdebstrap; a few minutes)"
	mmdebstrap --quiet --variant=minbase \
		--include=linux-image-amd64,kmod,sudo,ca-certificates,systemd-sysv,udev,procps,iproute2,less \
		--customize-hook='chroot "$1" useradd --create-home --shell /bin/bash vagrant' \
		--customize-hook='echo "vagrant ALL=(ALL) NOPASSWD: ALL" >"$1/etc/sudoers.d/vagrant"' \
		--customize-hook='chmod 0440 "$1/etc/sudoers.d/vagrant"' \
		--customize-hook='echo natlab >"$1/etc/hostname"' \
		"$suite" "$box.part" "$mirror" >&2
	touch "$box.part/.made"
	mv "$box.part" "$box"
fi
# The box trusts what this machine trusts: where a machine reaches the
# internet through a proxy with a certificate authority of its own (CI
# machines do), Go's download in provision.sh must trust it too, as a
# VM behind that proxy would be set up to.
cp /etc/ssl/certs/ca-certificates.crt "$box/etc/ssl/certs/ca-certificates.crt"
root=$box
home=$root/home/vagrant

# The repository as the Vagrantfile's rsync copies it.
say "copying the repository to /home/vagrant/natlab"
rsync -a --delete --exclude=.git/ --exclude=bin/ --exclude=.tools/ --exclude=artifacts/ \
	--exclude=dist/ --exclude=/man/ --exclude=vagrant/.vagrant/ "$src/" "$home/natlab/"
chroot "$root" chown -R vagrant: /home/vagrant/natlab

# provision.sh in the box, as Vagrant runs it: as root, with the
# Vagrantfile's settings. Its own last check (a lab) is left to the boot,
# which runs the whole tour on the box's kernel. The chroot's mounts are
# in a mount namespace of their own, gone when it ends.
if $first; then what="first provisioning (vagrant up)"; else what="provisioning again (vagrant provision)"; fi
say "$what: vagrant/provision.sh"
cp /etc/resolv.conf "$root/etc/resolv.conf"
unshare --mount --propagation private sh -eu -c '
	root=$1
	mount -t proc proc "$root/proc"
	mount -t sysfs sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmp "$root/tmp"
	exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
		GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}" \
		NATLAB_SRC=/home/vagrant/natlab NATLAB_USER=vagrant NATLAB_DEPS=demo NATLAB_CHECK=0 \
		/home/vagrant/natlab/vagrant/provision.sh
' vm-course "$root" >&2 || { echo "vm-course: FAIL: vagrant/provision.sh failed in the box" >&2; exit 1; }
touch "$box/.provisioned"

# What the boot runs as the guest's first process: the tour, as the vagrant
# user with sudo, as the login message tells a student to.
cat >"$root/usr/local/sbin/natlab-course-check" <<'EOF'
#!/bin/sh
# The kernel starts process 1 with no PATH.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/netns
hostname natlab
cd /home/vagrant
echo "natlab-course: $(natlab version 2>&1 | head -n 1) on $(uname -r)"
[ -f /etc/motd.d/natlab ] || echo "natlab-course: no login message"
runuser -u vagrant -- sudo -n natlab tour --no-pause
code=$?
echo "natlab-course: exit $code"
sync
echo o >/proc/sysrq-trigger
sleep 60
EOF
chmod 755 "$root/usr/local/sbin/natlab-course-check"

# The image holds the box without the build's caches, which the guest does
# not need (they are put back for the next provisioning).
stash=$cache/stash
rm -rf "$stash" && mkdir -p "$stash"
for d in home/vagrant/.cache home/vagrant/natlab/.tools home/vagrant/natlab/bin root/.cache; do
	if [ -e "$root/$d" ]; then
		mkdir -p "$stash/$(dirname "$d")"
		mv "$root/$d" "$stash/$d"
	fi
done
restore() {
	for d in home/vagrant/.cache home/vagrant/natlab/.tools home/vagrant/natlab/bin root/.cache; do
		if [ -e "$stash/$d" ]; then mv "$stash/$d" "$root/$d"; fi
	done
	rm -rf "$stash" "$image"
}
image=$cache/box.img
trap restore EXIT
size=$(($(du -sm "$root" | cut -f1) * 13 / 10 + 256))
mkfs.ext4 -q -F -L natlab -d "$root" "$image" "${size}M"

# The box has one kernel, linux-image-amd64's.
for kernel in "$root"/boot/vmlinuz-*; do :; done
for initrd in "$root"/boot/initrd.img-*; do :; done
say "booting the box: $(basename "$kernel"), ${size} MiB disk, TCG"
log=$cache/console.log
# As vm-test boots: emulation with one host thread for the guest's CPUs
# (internal/vmtest/host.go says why), a serial console, and no network.
timeout "${VM_TIMEOUT:-15m}" qemu-system-x86_64 \
	-accel tcg,thread=single -cpu max -smp "${VM_SMP:-2}" -m "${VM_MEM:-2048}" \
	-nodefaults -no-user-config -display none -monitor none -serial stdio -nic none -no-reboot \
	-drive "file=$image,format=raw,if=virtio" \
	-kernel "$kernel" -initrd "$initrd" \
	-append "root=/dev/vda rw console=ttyS0 quiet panic=-1 init=/usr/local/sbin/natlab-course-check" \
	</dev/null 2>&1 | tr -d '\r' | tee "$log" >&2 || true

if grep -q '^natlab-course: exit 0$' "$log" && ! grep -q '^ *FAIL' "$log" && ! grep -q '^natlab-course: no login message' "$log"; then
	say "PASS: provision.sh and sudo natlab tour --no-pause on $(basename "$kernel")"
	exit 0
fi
say "FAIL: the tour did not pass in the box; its console is above and in $log"
exit 1
