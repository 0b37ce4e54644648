package lab_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/topology"
)

// readTable reads node's translation table, mappings of the address it
// has now.
func readTable(t *testing.T, l *labtest.Lab, node string, public netip.Addr) *nattable.Table {
	t.Helper()
	ns, err := namedns.Open(l.Namespace(node))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tab, err := nattable.Read(context.Background(), ns.Fd(), public)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// recorded is the lab's topology as its record has it now.
func recorded(t *testing.T, l *labtest.Lab) *topology.Topology {
	t.Helper()
	st, err := labstate.Load(l.Topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := st.Topology()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// After a reboot the NAT's table is empty and the path a host had opened
// lets nothing in, until the host sends out again, while its static
// forward goes on forwarding. Under full cone the
// path is natlab's maps; under port-restricted cone, conntrack's reply
// matching: both must be forgotten.
func TestReboot(t *testing.T) {
	for _, typ := range []string{"full-cone", "port-restricted-cone"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "type: "+typ+`, forward: [{proto: udp, port: 7000, to: h2}]`)
			s := openServers(l)
			h := l.UDP("h1", ":40000")
			h2 := l.UDP("h2", ":7000")
			mapped := s.seen(t, h, s.a1p1)
			s.a1p1.Send(mapped, "before")
			h.Expect("before", arrival)
			if tab := readTable(t, l, "nat", mapped.Addr()); len(tab.Mappings)+len(tab.Flows) == 0 {
				t.Fatal("before the reboot the table is empty already; the test proves nothing")
			}

			if _, err := lab.Reboot(context.Background(), l.Topo.Name, "nat", netip.Addr{}); err != nil {
				t.Fatal(err)
			}
			tab := readTable(t, l, "nat", mapped.Addr())
			learnt := slices.DeleteFunc(tab.Mappings, func(m nattable.Mapping) bool { return m.Public.Port() == 7000 })
			if len(learnt)+len(tab.Flows) != 0 {
				t.Errorf("after the reboot the table holds %d mappings besides the forward and %d flows, want none:\n%+v", len(learnt), len(tab.Flows), tab)
			}
			s.a1p1.Send(mapped, "after the reboot")
			if h.Arrives("after the reboot", silence) {
				t.Error("after the reboot the server's packet to the old mapping got in")
			}
			again := s.seen(t, h, s.a1p1)
			s.a1p1.Send(again, "punched again")
			h.Expect("punched again", arrival)
			// What is configured stays: the static forward.
			s.a2p2.Send(netip.AddrPortFrom(mapped.Addr(), 7000), "forwarded")
			h2.Expect("forwarded", arrival)
		})
	}
}

// A renumbered NAT translates to its new address, the record says so, and
// the mappings of the old address are gone, conntrack's with them.
func TestRenumber(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: full-cone")
	s := openServers(l)
	h := l.UDP("h1", ":40000")
	old := s.seen(t, h, s.a1p1)
	public := netip.MustParseAddr("203.0.113.77")

	n, err := lab.Renumber(context.Background(), l.Topo.Name, "nat", public)
	if err != nil {
		t.Fatal(err)
	}
	if n.Addresses[0] != public {
		t.Errorf("the renumbered node has address %v, want %v", n.Addresses[0], public)
	}
	tab := readTable(t, l, "nat", public)
	if len(tab.Mappings) != 0 {
		t.Errorf("after the renumber the table holds mappings %+v, want none", tab.Mappings)
	}
	for _, f := range readTable(t, l, "nat", old.Addr()).Flows {
		if f.Public.Addr() == old.Addr() {
			t.Errorf("after the renumber a flow of the old address is left: %+v", f)
		}
	}
	s.a1p1.Send(old, "to the old address")
	if h.Arrives("to the old address", silence) {
		t.Error("after the renumber a packet to the old address got in")
	}
	now := s.seen(t, h, s.a1p1)
	if now.Addr() != public {
		t.Errorf("after the renumber the server sees the host as %v, want the address %v", now, public)
	}
	s.a2p2.Send(now, "full cone at the new address")
	h.Expect("full cone at the new address", arrival)

	if got := recorded(t, l).Node("nat").Addresses[0]; got != public {
		t.Errorf("the record has the NAT at %v, want %v", got, public)
	}
}

// A reboot with a new address is a renumber too.
func TestRebootWithNewAddress(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: port-restricted-cone")
	s := openServers(l)
	h := l.UDP("h1", ":40000")
	s.seen(t, h, s.a1p1)
	public := netip.MustParseAddr("203.0.113.78")
	if _, err := lab.Reboot(context.Background(), l.Topo.Name, "nat", public); err != nil {
		t.Fatal(err)
	}
	if got := s.seen(t, h, s.a1p1); got.Addr() != public {
		t.Errorf("after the reboot the server sees the host as %v, want the address %v", got, public)
	}
}

// Changes a lab cannot take are refused with ErrBadChange, and nothing
// changes: the record keeps the address, the host's mapping keeps working.
func TestEventsBadInput(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: full-cone")
	s := openServers(l)
	h := l.UDP("h1", ":40000")
	mapped := s.seen(t, h, s.a1p1)
	ctx := context.Background()
	name := l.Topo.Name
	for _, tc := range []struct {
		what string
		err  error
	}{
		{"renumber outside the internet", func() error {
			_, err := lab.Renumber(ctx, name, "nat", netip.MustParseAddr("198.51.100.1"))
			return err
		}()},
		{"renumber to a server's address", func() error {
			_, err := lab.Renumber(ctx, name, "nat", l.Addr("server", 0))
			return err
		}()},
		{"renumber to the network address", func() error {
			_, err := lab.Renumber(ctx, name, "nat", netip.MustParseAddr("203.0.113.0"))
			return err
		}()},
		{"renumber to its own address", func() error {
			_, err := lab.Renumber(ctx, name, "nat", mapped.Addr())
			return err
		}()},
		{"renumber to nothing", func() error {
			_, err := lab.Renumber(ctx, name, "nat", netip.Addr{})
			return err
		}()},
		{"renumber a host", func() error {
			_, err := lab.Renumber(ctx, name, "h1", netip.MustParseAddr("203.0.113.77"))
			return err
		}()},
		{"reboot a host", func() error {
			_, err := lab.Reboot(ctx, name, "h1", netip.Addr{})
			return err
		}()},
		{"reboot an unknown node", func() error {
			_, err := lab.Reboot(ctx, name, "nobody", netip.Addr{})
			return err
		}()},
		{"reboot to a taken address", func() error {
			_, err := lab.Reboot(ctx, name, "nat", l.Addr("server", 1))
			return err
		}()},
	} {
		if !errors.Is(tc.err, lab.ErrBadChange) {
			t.Errorf("%s: err = %v, want ErrBadChange", tc.what, tc.err)
		}
	}
	st, err := labstate.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Publics) != 0 {
		t.Errorf("after refused changes the record has public addresses %v, want none", st.Publics)
	}
	s.a2p2.Send(mapped, "still mapped")
	h.Expect("still mapped", arrival)
}

// A NAT's NAT-PMP service forgets its leases in a reboot and gives out
// the new address after a renumber.
func TestEventsNATPMP(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: port-restricted-cone, port-mapping: nat-pmp")
	conn, err := l.ListenUDP("h1", ":0")
	if err != nil {
		t.Fatal(err)
	}
	client := &natpmp.Client{Conn: conn, Gateway: l.Topo.Node("nat").NAT.Gateway}
	ctx := context.Background()
	if _, err := client.Map(ctx, "udp", 7000, 7000, time.Hour); err != nil {
		t.Fatal(err)
	}
	old := l.Addr("nat", 0)
	if tab := readTable(t, l, "nat", old); len(tab.Mappings) == 0 {
		t.Fatal("after a NAT-PMP lease the table holds no mapping; the test proves nothing")
	}
	if _, err := lab.Reboot(ctx, l.Topo.Name, "nat", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if tab := readTable(t, l, "nat", old); len(tab.Mappings) != 0 {
		t.Errorf("after the reboot the lease is still in the table: %+v", tab.Mappings)
	}
	public := netip.MustParseAddr("203.0.113.79")
	if _, err := lab.Renumber(ctx, l.Topo.Name, "nat", public); err != nil {
		t.Fatal(err)
	}
	if got, err := client.ExternalAddress(ctx); err != nil || got != public {
		t.Errorf("after the renumber NAT-PMP says the external address is %v (err %v), want %v", got, err, public)
	}
}

// A NAT behind another (carrier-grade NAT) is renumbered on its ISP's
// LAN: its default route through the ISP survives the change of its
// uplink's only address, so its hosts go on reaching the internet.
func TestRenumberBehindCGNAT(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  isp:    {kind: nat, type: full-cone, public: 203.0.113.1, lan: 100.64.0.0/24}
  nat:    {kind: nat, type: full-cone, behind: isp, lan: 192.168.1.0/24}
  h1:     {kind: host, behind: nat}
`)
	s := openServers(l)
	h := l.UDP("h1", ":40000")
	s.seen(t, h, s.a1p1)
	public := netip.MustParseAddr("100.64.0.9")
	if _, err := lab.Renumber(context.Background(), l.Topo.Name, "nat", public); err != nil {
		t.Fatal(err)
	}
	if got := s.seen(t, h, s.a1p1); got.Addr() != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("after the renumber the server sees h1 at %v, want the ISP's address", got)
	}
	found := false
	for _, m := range readTable(t, l, "isp", netip.MustParseAddr("203.0.113.1")).Mappings {
		found = found || m.Private.Addr() == public
	}
	if !found {
		t.Errorf("the ISP maps nothing of the NAT's new address %v", public)
	}
}

// In a dual-stack lab a reboot empties the IPv6 firewall's state too, and
// a host that moves gets an IPv6 address on its new LAN and is reached
// there.
func TestEventsIPv6(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, fmt.Sprintf(dualStack, "endpoint-independent"))
	a := l.UDP6("alice", "[::]:5000")
	srv := l.UDP6("server", "[::]:3478")
	oth := l.UDP6("other", "[::]:3478")
	a.Send(v6(l, "server", 3478), "hello")
	from := srv.Expect("hello", arrival)
	oth.Send(from, "open to anyone")
	a.Expect("open to anyone", arrival)

	if _, err := lab.Reboot(context.Background(), l.Topo.Name, "home", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	oth.Send(from, "after the reboot")
	if a.Arrives("after the reboot", silence) {
		t.Error("after the reboot home's IPv6 firewall still let a stranger in")
	}

	n, err := lab.Move(context.Background(), l.Topo.Name, "alice", "inner")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Addresses6) != 1 || !l.Topo.Node("inner").NAT.LAN6.Contains(n.Addresses6[0]) {
		t.Fatalf("the moved host has IPv6 addresses %v, want one in inner's LAN %v", n.Addresses6, l.Topo.Node("inner").NAT.LAN6)
	}
	a.Send(v6(l, "server", 3478), "from inner")
	if got := srv.Expect("from inner", arrival); got.Addr() != n.Addresses6[0] {
		t.Errorf("after the move the server sees alice at %v, want %v", got, n.Addresses6[0])
	}
	srv.Send(netip.AddrPortFrom(n.Addresses6[0], 5000), "back")
	a.Expect("back", arrival)
}

// A NAT renumbered on its ISP's LAN keeps its link's conditions there:
// the ISP routes to the new address with the link's MTU, as it did to the
// old one.
func TestRenumberKeepsTheLink(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server}
  isp:    {kind: nat, type: full-cone, lan: 100.64.0.0/24}
  home:   {kind: nat, type: full-cone, behind: isp, link: {mtu: 1400}}
`)
	old := l.Addr("home", 0)
	if got := mtuRoute(t, l, "isp", old); got != 1400 {
		t.Fatalf("before the renumber the ISP routes to home with MTU %d, want 1400; the test proves nothing", got)
	}
	public := netip.MustParseAddr("100.64.0.9")
	if _, err := lab.Renumber(context.Background(), l.Topo.Name, "home", public); err != nil {
		t.Fatal(err)
	}
	if got := mtuRoute(t, l, "isp", public); got != 1400 {
		t.Errorf("after the renumber the ISP routes to home's %v with MTU %d, want 1400", public, got)
	}
	// The route to the old address goes with it: left, it would lower
	// the MTU to whatever takes that address next.
	if got := mtuRoute(t, l, "isp", old); got != -1 {
		t.Errorf("after the renumber the ISP still routes to home's old %v (MTU %d)", old, got)
	}
}

// In a dual-stack lab SetLink refuses an MTU IPv6 cannot take, which
// would silently take the node's IPv6 away, and changes nothing.
func TestSetLinkRefusesMTUBelowIPv6(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, fmt.Sprintf(dualStack, "endpoint-independent"))
	mtu := 1200
	_, err := lab.SetLink(context.Background(), l.Topo.Name, "alice", linkcond.Change{MTU: &mtu})
	var bad *linkcond.Error
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "below 1280") || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("mtu 1200 in a dual-stack lab: %v, want a *linkcond.Error saying it is below 1280", err)
	}
	st, err := labstate.Load(l.Topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Links) != 0 {
		t.Errorf("a refused change left links %+v", st.Links)
	}
}
