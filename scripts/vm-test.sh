#!/bin/sh
# make vm-test: natlab's kernel-level tests (internal/vmtest/tests.txt) on
# Debian's own kernel, booted in qemu under TCG emulation with an
# initramfs of the static test binaries (internal/vmtest does the work).
#
# The kernel is Debian's package VM_KERNEL_PACKAGE (linux-image-amd64,
# the kernel Debian 12 installs, by default): the installed one if it is
# installed, else fetched with apt-get download and unpacked into
# .tools/vm/, never installed: installing a kernel can make it the one
# the machine boots next. VM_KERNEL=vmlinuz VM_MODULES=.../lib/modules/REL
# boot another kernel instead.
#
#   VM_TESTS='./lab:^TestMapping$ ./trace'   other tests than the list's
#   VM_RUN=PATTERN                            a -test.run for every package
#   VM_MEM=2048 VM_SMP=2 VM_TIMEOUT=20m       the guest
#   VM_SHELL=1                                a shell in the guest afterwards
#
# With VM_OPTIONAL=1 (make test) a machine that cannot run the VM (no
# qemu, no Debian kernel package) gets one line saying why, and success.
set -eu
cd "$(dirname "$0")/.."

optional=${VM_OPTIONAL:-}
skip() {
	if [ -n "$optional" ]; then
		echo "vm-test: SKIPPED: $*" >&2
		exit 0
	fi
	echo "vm-test: $*" >&2
	exit 1
}

if [ -z "$optional" ]; then
	scripts/deps.sh vm >/dev/null
fi
PATH=$PATH:/sbin:/usr/sbin
for tool in qemu-system-x86_64 modprobe depmod; do
	command -v "$tool" >/dev/null 2>&1 || skip "needs $tool (scripts/deps.sh vm installs it)"
done
[ -x /bin/busybox ] || skip "needs a static busybox at /bin/busybox (busybox-static; scripts/deps.sh vm installs it)"

if [ -n "${VM_KERNEL:-}" ]; then
	kernel=$VM_KERNEL
	modules=${VM_MODULES:?VM_KERNEL needs VM_MODULES, the directory .../lib/modules/RELEASE of its modules}
else
	pkg=${VM_KERNEL_PACKAGE:-linux-image-amd64}
	# A metapackage (linux-image-amd64) names the versioned package
	# that holds the kernel; a versioned package names none.
	image() {
		dep=$(apt-cache depends "$pkg" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
		if [ -n "$dep" ]; then
			echo "$dep"
		elif apt-cache show "$pkg" >/dev/null 2>&1; then
			echo "$pkg"
		fi
	}
	img=$(image)
	if [ -z "$img" ] && [ "$(id -u)" -eq 0 ]; then
		apt-get update -qq >&2 || true
		img=$(image)
	fi
	[ -n "$img" ] || skip "apt knows no package $pkg: the VM boots a Debian kernel (VM_KERNEL and VM_MODULES name another)"
	release=${img#linux-image-}
	release=${release%-unsigned}
	if [ -f "/boot/vmlinuz-$release" ] && [ -f "/lib/modules/$release/modules.dep" ]; then
		kernel=/boot/vmlinuz-$release
		modules=/lib/modules/$release
	else
		dir=.tools/vm/$release
		if [ ! -f "$dir/boot/vmlinuz-$release" ]; then
			echo "vm-test: fetching $img into $dir" >&2
			tmp=$(mktemp -d)
			# apt-get download runs as _apt where it can, which needs
			# to write to the directory.
			chmod 0777 "$tmp"
			(cd "$tmp" && apt-get download -q "$img" >&2) || { rm -rf "$tmp"; skip "could not fetch $img"; }
			rm -rf "$dir.part" && mkdir -p "$dir.part"
			dpkg-deb -x "$tmp"/*.deb "$dir.part"
			rm -rf "$tmp" "$dir" && mv "$dir.part" "$dir"
		fi
		kernel=$dir/boot/vmlinuz-$release
		modules=$dir/lib/modules/$release
		# Merged /usr: newer packages ship their modules under usr/.
		[ -d "$modules" ] || modules=$dir/usr/lib/modules/$release
		[ -f "$modules/modules.dep" ] || depmod -b "${modules%/lib/modules/*}" "$release"
	fi
fi

GO=$(scripts/go.sh)
export CGO_ENABLED=0
mkdir -p bin
"$GO" build -o bin/natlab-vmtest ./internal/vmtest
exec bin/natlab-vmtest -go "$GO" -kernel "$kernel" -modules "$modules" \
	-tests "${VM_TESTS:-}" -run "${VM_RUN:-}" \
	-mem "${VM_MEM:-2048}" -smp "${VM_SMP:-2}" -timeout "${VM_TIMEOUT:-20m}" \
	${VM_SHELL:+-shell}
