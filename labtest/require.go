package labtest

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Require skips the test, with a one-line reason, unless labs can be
// built here: it needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN, and a
// kernel that can create veth pairs and nftables NAT chains. Every Up
// calls it; a test calls it itself to skip before doing other work.
func Require(t testing.TB) {
	t.Helper()
	if reason := skipReason(os.Geteuid(), hasCapability, kernelProblem); reason != "" {
		t.Skip(reason)
	}
}

// skipReason says why labs cannot be built, or "" if they can. The kernel
// is only probed once the privileges are there, since without them the
// probe fails for that reason.
func skipReason(euid int, hasCap func(capability int) (bool, error), kernel func() error) string {
	if euid != 0 {
		return "labtest: needs root to build network namespaces (run the tests as root, e.g. go test -exec sudo)"
	}
	for _, c := range []struct {
		capability int
		name, why  string
	}{
		{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN", "links, addresses and nftables rules"},
		{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "creating and entering network namespaces"},
	} {
		ok, err := hasCap(c.capability)
		if err != nil {
			return fmt.Sprintf("labtest: cannot read this process's capabilities: %v", err)
		}
		if !ok {
			return fmt.Sprintf("labtest: runs as root but without %s, which %s need", c.name, c.why)
		}
	}
	if err := kernel(); err != nil {
		return fmt.Sprintf("labtest: this kernel cannot build labs: %v", err)
	}
	return ""
}

// hasCapability reports whether capability is in this process's effective
// set.
func hasCapability(capability int) (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("capget: %w", err)
	}
	return data[capability/32].Effective&(1<<(capability%32)) != 0, nil
}

// The kernel is probed once per test binary: its modules do not come and
// go between tests.
var (
	probeOnce sync.Once
	probeErr  error
)

func kernelProblem() error {
	probeOnce.Do(func() { probeErr = probeKernel() })
	return probeErr
}

// probeKernel builds the pieces a lab is made of, a veth pair and an
// nftables NAT chain, in a namespace of its own that nothing names: it
// dies with the thread that made it, and the root namespace is never
// touched.
func probeKernel() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine's end takes the thread, and the
		// namespace with it, out of the Go runtime.
		runtime.LockOSThread()
		errc <- probeHere()
	}()
	return <-errc
}

func probeHere() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("create a network namespace: %w", err)
	}
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return fmt.Errorf("open the probe's namespace: %w", err)
	}
	defer self.Close()

	// The routing family only, as labs use: with no family named,
	// NewHandle opens an XFRM socket too, which Debian's kernel serves
	// from the xfrm_user module; where that cannot be loaded, every lab
	// test skipped though labs need no XFRM (make vm-test found it).
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "probe0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "probe1"}); err != nil {
		return fmt.Errorf("create a veth pair: %w", err)
	}

	conn, err := nftables.New(nftables.WithNetNSFd(int(self.Fd())))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	table := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "probe"})
	conn.AddChain(&nftables.Chain{
		Name:     "postrouting",
		Table:    table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("create an nftables NAT chain: %w", err)
	}
	return nil
}
