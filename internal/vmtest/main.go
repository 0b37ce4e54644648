// Command vmtest runs natlab's kernel-level tests on another kernel than
// the host's: Debian's own, booted in qemu (make vm-test,
// scripts/vm-test.sh). On the host it builds the test binaries of the
// packages in tests.txt statically, packs them with their packages'
// sources, the kernel modules the labs need, busybox and itself into an
// initramfs, boots the kernel with it under qemu's TCG emulation (no KVM,
// no network), streams the guest's console and exits with the tests'
// status. In the guest the same binary is process 1: it mounts what
// tests expect, loads the modules, runs each test binary, checks nothing
// was left behind, prints a result line and powers off.
//
// The guest is a machine of its own: nothing of the host's network,
// namespaces or modules is touched, and the host needs no root for it.
package main

import (
	"os"
	"path/filepath"
)

func main() {
	switch {
	case os.Getpid() == 1:
		guestMain()
	case filepath.Base(os.Args[0]) == "modprobe":
		os.Exit(guestModprobe(os.Args[1:]))
	default:
		os.Exit(hostMain(os.Args[1:]))
	}
}
