package lab_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/lab"
)

const roamLab = `
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  home:   {kind: nat, type: full-cone, public: 203.0.113.1, lan: 192.168.1.0/24, port-mapping: nat-pmp}
  cell:   {kind: nat, type: symmetric, public: 203.0.113.2, lan: 10.20.0.0/24}
  alice:  {kind: host, behind: home}
  bob:    {kind: host, behind: cell}
`

// addrsIn lists the IPv4 addresses on node's eth0, as the kernel has them.
func addrsIn(t *testing.T, l *labtest.Lab, node string) []netip.Addr {
	t.Helper()
	var got []netip.Addr
	l.Do(node, func() error {
		link, err := netlink.LinkByName(lab.HostUplink)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		for _, a := range addrs {
			ip, _ := netip.AddrFromSlice(a.IP)
			got = append(got, ip.Unmap())
		}
		return err
	})
	return got
}

// A host that moves to another NAT's LAN gets an address there and goes
// out through that NAT, from the socket it had; the NAT it left forgets
// it; the record has it where it is.
func TestMove(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, roamLab)
	s := openServers(l)
	h := l.UDP("alice", ":40000")
	old := l.Addr("alice", 0)
	if got := s.seen(t, h, s.a1p1); got.Addr() != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("before the move the server sees alice at %v, want home's address", got)
	}
	if tab := readTable(t, l, "home", l.Addr("home", 0)); len(tab.Mappings) == 0 {
		t.Fatal("before the move home holds no mapping of alice; the test proves nothing")
	}

	n, err := lab.Move(context.Background(), l.Topo.Name, "alice", "cell")
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr("10.20.0.3") // .1 is cell's gateway, .2 bob
	if n.Behind != "cell" || len(n.Addresses) != 1 || n.Addresses[0] != want {
		t.Errorf("the moved host is behind %q at %v, want behind cell at %v", n.Behind, n.Addresses, want)
	}
	if got := addrsIn(t, l, "alice"); len(got) != 1 || got[0] != want {
		t.Errorf("alice's eth0 has %v, want %v", got, want)
	}
	tab := readTable(t, l, "home", l.Addr("home", 0))
	for _, m := range tab.Mappings {
		if m.Private.Addr() == old {
			t.Errorf("after the move home still maps alice's old address: %+v", m)
		}
	}
	for _, f := range tab.Flows {
		if f.Private.Addr() == old {
			t.Errorf("after the move home still has a flow of alice's old address: %+v", f)
		}
	}
	if got := s.seen(t, h, s.a1p1); got.Addr() != netip.MustParseAddr("203.0.113.2") {
		t.Errorf("after the move the server sees alice at %v, want cell's address 203.0.113.2", got)
	}
	if a := recorded(t, l).Node("alice"); a.Behind != "cell" || a.Addresses[0] != want {
		t.Errorf("the record has alice behind %q at %v, want behind cell at %v", a.Behind, a.Addresses, want)
	}

	// Back home: the lowest free address there again.
	n, err = lab.Move(context.Background(), l.Topo.Name, "alice", "home")
	if err != nil {
		t.Fatal(err)
	}
	if n.Addresses[0] != old {
		t.Errorf("back home alice is at %v, want %v", n.Addresses[0], old)
	}
	if got := s.seen(t, h, s.a1p1); got.Addr() != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("back home the server sees alice at %v, want home's address", got)
	}

	for _, tc := range []struct{ node, nat string }{
		{"home", "cell"}, {"server", "cell"}, {"alice", "bob"}, {"alice", "home"}, {"alice", "nowhere"}, {"nobody", "cell"},
	} {
		if _, err := lab.Move(context.Background(), l.Topo.Name, tc.node, tc.nat); !errors.Is(err, lab.ErrBadChange) {
			t.Errorf("move %s behind %s: %v, want ErrBadChange", tc.node, tc.nat, err)
		}
	}
}

// A host that moves keeps its link's conditions on its new uplink.
func TestMoveKeepsTheLink(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server}
  home:   {kind: nat, type: full-cone}
  cell:   {kind: nat, type: symmetric, lan: 10.20.0.0/24}
  alice:  {kind: host, behind: home, link: {mtu: 1400}}
`)
	mtu := func() int {
		var got int
		l.Do("alice", func() error {
			link, err := netlink.LinkByName(lab.HostUplink)
			if err == nil {
				got = link.Attrs().MTU
			}
			return err
		})
		return got
	}
	if got := mtu(); got != 1400 {
		t.Fatalf("before the move alice's eth0 has MTU %d, want 1400; the test proves nothing", got)
	}
	oldAddr := l.Addr("alice", 0)
	if got := mtuRoute(t, l, "home", oldAddr); got != 1400 {
		t.Fatalf("before the move home routes to alice's %v with MTU %d, want 1400; the test proves nothing", oldAddr, got)
	}
	moved, err := lab.Move(context.Background(), l.Topo.Name, "alice", "cell")
	if err != nil {
		t.Fatal(err)
	}
	if got := mtu(); got != 1400 {
		t.Errorf("after the move alice's eth0 has MTU %d, want the link's 1400", got)
	}
	// The NAT she left forgets its route to her old address; the one
	// she joined routes to her new one with her link's MTU.
	if got := mtuRoute(t, l, "home", oldAddr); got != -1 {
		t.Errorf("after the move home still routes to alice's old %v (MTU %d)", oldAddr, got)
	}
	if got := mtuRoute(t, l, "cell", moved.Addresses[0]); got != 1400 {
		t.Errorf("after the move cell routes to alice's %v with MTU %d, want 1400", moved.Addresses[0], got)
	}
}

// mtuRoute is the MTU of node's route to exactly to, -1 if it has none.
func mtuRoute(t *testing.T, l *labtest.Lab, node string, to netip.Addr) int {
	t.Helper()
	mtu := -1
	l.Do(node, func() error {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.Equal(to.AsSlice()) {
				mtu = r.MTU
			}
		}
		return err
	})
	return mtu
}
