package nattable_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/nattable"
)

// The table shows exactly the public ports the server saw, in order, the
// way the story's NAT at 203.0.113.50 hands out 48721, 48722, ...
func TestTableMatchesSockets(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
internet: 203.0.113.0/24
nodes:
  server:  {kind: server, addresses: [203.0.113.10]}
  nat:     {kind: nat, public: 203.0.113.50, type: port-restricted-cone, ports: sequential, port-range: 48721-65535}
  phone:   {kind: host, behind: nat}
  laptop:  {kind: host, behind: nat}
  console: {kind: host, behind: nat}
`)
	srv := l.UDP("server", ":3478")
	to := netip.MustParseAddrPort("203.0.113.10:3478")
	seen := map[string]netip.AddrPort{}
	for _, dev := range []string{"phone", "laptop", "console"} {
		c := l.UDP(dev, ":5000")
		c.Send(to, dev)
		seen[dev] = srv.Expect(dev, 2*time.Second)
	}
	ns, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("nat", 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Flows) != 3 || len(tab.Mappings) != 3 {
		t.Fatalf("table has %d flows and %d mappings, want 3 and 3:\n%+v", len(tab.Flows), len(tab.Mappings), tab)
	}
	for i, dev := range []string{"phone", "laptop", "console"} {
		f := tab.Flows[i]
		want := netip.AddrPortFrom(l.Addr(dev, 0), 5000)
		if f.Private != want || f.Public != seen[dev] || f.Remote != to || f.Proto != "udp" || f.Inbound {
			t.Errorf("flow %d: %+v; want %v -> %v (what the server saw) -> %v", i, f, want, seen[dev], to)
		}
		if f.Public.Port() != uint16(48721+i) {
			t.Errorf("%s got public port %d, want %d", dev, f.Public.Port(), 48721+i)
		}
		m := tab.Mappings[i]
		if m.Public != seen[dev] || m.Private != want || m.Expires <= 0 {
			t.Errorf("mapping %d: %+v", i, m)
		}
	}
	var b bytes.Buffer
	nattable.Write(&b, tab)
	if !strings.Contains(b.String(), fmt.Sprintf("%v", seen["laptop"])) {
		t.Errorf("formatted table lacks the laptop's mapping:\n%s", b.String())
	}
}

// A TCP connection out makes a TCP mapping, which the table shows apart
// from UDP's.
func TestTableShowsTCPMappings(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, public: 203.0.113.50, type: full-cone}
  phone:  {kind: host, behind: nat}
`)
	l.TCPListen("server", ":80")
	if _, err := l.TCPDial("phone", "203.0.113.10:80", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	ns, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("nat", 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Mappings) != 0 || len(tab.TCPMappings) != 1 {
		t.Fatalf("table has %d UDP and %d TCP mappings, want 0 and 1:\n%+v", len(tab.Mappings), len(tab.TCPMappings), tab)
	}
	m := tab.TCPMappings[0]
	if m.Private.Addr() != l.Addr("phone", 0) || m.Public.Addr() != l.Addr("nat", 0) || m.Public.Port() != m.Private.Port() || m.Expires <= 0 {
		t.Errorf("TCP mapping %+v; want phone's port kept on the public address, expiring", m)
	}
	var b bytes.Buffer
	nattable.Write(&b, tab)
	if !strings.Contains(b.String(), "TCP mappings") || !strings.Contains(b.String(), m.Public.String()) {
		t.Errorf("formatted table lacks the TCP mapping:\n%s", b.String())
	}
}

func TestNotANAT(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, "nodes:\n  h: {kind: host}\n")
	ns, _ := namedns.Open(l.Namespace("h"))
	defer ns.Close()
	if _, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("h", 0)); err == nil || !strings.Contains(err.Error(), "not a NAT") {
		t.Errorf("table of a host: %v", err)
	}
}

// Reading a NAT's table or wall ends with its context, naming what it
// was reading.
func TestReadContext(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, "nodes:\n  nat: {kind: nat}\n")
	ns, _ := namedns.Open(l.Namespace("nat"))
	defer ns.Close()
	if _, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("nat", 0)); err != nil {
		t.Fatalf("table of a NAT: %v", err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if tab, err := nattable.Read(cancelled, ns.Fd(), l.Addr("nat", 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("table, cancelled: %v, %v", tab, err)
	}
	if n, err := nattable.WallDrops(cancelled, ns.Fd()); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "chain") {
		t.Errorf("wall drops, cancelled: %d, %v", n, err)
	}
}

// A NAT's port forwards: the scenario's static one and the NAT-PMP lease a
// host asked for, each with where it came from and how long it has left.
func TestForwards(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  home:    {kind: nat, type: port-restricted-cone, port-mapping: nat-pmp, forward: [{proto: tcp, port: 25565, to: server}]}
  server:  {kind: host, behind: home}
  console: {kind: host, behind: home}
`)
	c, err := l.ListenUDP("console", ":0")
	if err != nil {
		t.Fatal(err)
	}
	client := natpmp.Client{Conn: c, Gateway: l.Topo.Node("home").NAT.Gateway}
	if _, err := client.Map(t.Context(), "tcp", 3074, 3074, time.Hour); err != nil {
		t.Fatal(err)
	}
	ns, err := namedns.Open(l.Namespace("home"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	public := l.Addr("home", 0)
	tab, err := nattable.Read(t.Context(), ns.Fd(), public)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Forwards) != 1 {
		t.Fatalf("Read found %d forwards, want the NAT-PMP lease: %+v", len(tab.Forwards), tab.Forwards)
	}
	tab.AddStatic(public, l.Topo.Node("home").NAT.Forwards)
	want := []nattable.Forward{
		{Proto: "tcp", Public: netip.AddrPortFrom(public, 3074), Private: netip.AddrPortFrom(l.Addr("console", 0), 3074), By: nattable.ByNATPMP},
		{Proto: "tcp", Public: netip.AddrPortFrom(public, 25565), Private: netip.AddrPortFrom(l.Addr("server", 0), 25565), By: nattable.ByScenario},
	}
	if len(tab.Forwards) != len(want) {
		t.Fatalf("forwards %+v, want %+v", tab.Forwards, want)
	}
	for i, f := range tab.Forwards {
		expires := f.Expires
		f.Expires = 0
		if f != want[i] {
			t.Errorf("forward %d: %+v, want %+v", i, f, want[i])
		}
		if lease := f.By == nattable.ByNATPMP; lease != (expires > 59*time.Minute && expires <= time.Hour) || !lease && expires != 0 {
			t.Errorf("forward %d (%s) expires in %v", i, f.By, expires)
		}
	}
	var b bytes.Buffer
	if err := nattable.Write(&b, tab); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Port forwards", "3074", "nat-pmp", "25565", "scenario", "never"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("the printed table lacks %q:\n%s", line, b.String())
		}
	}
}

// Each flow counts its packets and bytes, both ways: conntrack's
// accounting, off by default, is on in every NAT (issue 16: every flow
// showed 0 packets).
func TestFlowsCountPacketsAndBytes(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, public: 203.0.113.50, type: port-restricted-cone}
  phone:  {kind: host, behind: nat}
`)
	srv := l.UDP("server", ":3478")
	to := netip.MustParseAddrPort("203.0.113.10:3478")
	c := l.UDP("phone", ":5000")
	payload := strings.Repeat("x", 100) // 128 bytes with the IPv4 and UDP headers
	var public netip.AddrPort
	for range 5 {
		c.Send(to, payload)
		public = srv.Expect(payload, 2*time.Second)
	}
	for range 2 {
		srv.Send(public, payload)
		c.Expect(payload, 2*time.Second)
	}
	ns, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("nat", 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Flows) != 1 {
		t.Fatalf("%d flows, want 1: %+v", len(tab.Flows), tab.Flows)
	}
	if f := tab.Flows[0]; f.Packets != 7 || f.Bytes != 7*128 {
		t.Errorf("the flow counts %d packets and %d bytes, want 7 and %d", f.Packets, f.Bytes, 7*128)
	}
	var b bytes.Buffer
	nattable.Write(&b, tab)
	if !strings.Contains(b.String(), "PACKETS") || !regexp.MustCompile(`replied\s+\S+\s+7\s+896\n`).MatchString(b.String()) {
		t.Errorf("the table does not show the counts:\n%s", b.String())
	}
}

// A one-to-one NAT's table has no maps to read: natlab table shows its
// binding and the conntrack flows through it, an unsolicited one let in
// and one the host started, each with its port kept.
func TestOneToOneTable(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  cloud:  {kind: nat, type: one-to-one, public: 203.0.113.1}
  vm:     {kind: host, behind: cloud}
`)
	srv := l.UDP("server", "203.0.113.10:3478")
	vm := l.UDP("vm", ":40001")
	public := netip.MustParseAddrPort("203.0.113.1:40001")
	srv.Send(public, "unsolicited")
	vm.Expect("unsolicited", 2*time.Second)
	out := l.UDP("vm", ":41000")
	out.Send(netip.MustParseAddrPort("203.0.113.10:3478"), "out")
	srv.Expect("out", 2*time.Second)

	ns, err := namedns.Open(l.Namespace("cloud"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("cloud", 0))
	if err != nil {
		t.Fatal(err)
	}
	tab.AddOneToOne(l.Topo, l.Topo.Node("cloud"))
	vmAddr := l.Addr("vm", 0)
	want := &nattable.Binding{Public: public.Addr(), Private: vmAddr, Host: "vm"}
	if tab.OneToOne == nil || *tab.OneToOne != *want {
		t.Errorf("binding %+v, want %+v", tab.OneToOne, want)
	}
	if len(tab.Mappings) != 0 || len(tab.Flows) != 2 {
		t.Fatalf("table has %d mappings and %d flows, want none and 2:\n%+v", len(tab.Mappings), len(tab.Flows), tab)
	}
	in, outFlow := tab.Flows[0], tab.Flows[1]
	if !in.Inbound || in.Private != netip.AddrPortFrom(vmAddr, 40001) || in.Public != public {
		t.Errorf("the unsolicited flow reads %+v; want inbound, %v -> %v", in, public, netip.AddrPortFrom(vmAddr, 40001))
	}
	if outFlow.Inbound || outFlow.Private != netip.AddrPortFrom(vmAddr, 41000) || outFlow.Public != netip.MustParseAddrPort("203.0.113.1:41000") {
		t.Errorf("vm's own flow reads %+v; want %v -> 203.0.113.1:41000", outFlow, netip.AddrPortFrom(vmAddr, 41000))
	}
	var b bytes.Buffer
	if err := nattable.Write(&b, tab); err != nil {
		t.Fatal(err)
	}
	if row := "203.0.113.1  <->  " + vmAddr.String() + "  vm"; !strings.Contains(b.String(), row) {
		t.Errorf("natlab table prints\n%s\nwithout the binding row %q", b.String(), row)
	}
}

// A hairpinned packet the filtering refuses is a drop of the NAT's wall,
// as an inbound packet from outside it refuses is: WallDrops counts it,
// for every filtering that refuses one. A full cone admits it, and has no
// hairpin wall to read.
func TestWallCountsRefusedHairpins(t *testing.T) {
	for _, typ := range []string{"address-restricted-cone", "port-restricted-cone", "symmetric", "full-cone"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(`
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, type: %s}
  h1:     {kind: host, behind: nat}
  h2:     {kind: host, behind: nat}
`, typ))
			srv := l.UDP("server", "203.0.113.10:9000")
			b := l.UDP("h2", ":40000")
			b.Send(netip.MustParseAddrPort("203.0.113.10:9000"), "out")
			p := srv.Expect("out", 2*time.Second)
			ns, err := namedns.Open(l.Namespace("nat"))
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			before, err := nattable.WallDrops(t.Context(), ns.Fd())
			if err != nil {
				t.Fatal(err)
			}
			a := l.UDP("h1", ":41000")
			a.Send(p, "hairpinned, unsolicited")
			refused := typ != "full-cone"
			if got := b.Arrives("hairpinned, unsolicited", 400*time.Millisecond); got == refused {
				t.Fatalf("%s: an unsolicited hairpinned packet arrived=%v, want %v", typ, got, !refused)
			}
			after, err := nattable.WallDrops(t.Context(), ns.Fd())
			if err != nil {
				t.Fatal(err)
			}
			if want := before + map[bool]uint64{true: 1}[refused]; after != want {
				t.Errorf("the wall counted %d drops before the hairpinned packet and %d after; want %d", before, after, want)
			}
		})
	}
}

// A hairpinned packet the filtering refuses leaves the NAT no mapping it
// would not otherwise have. Under endpoint-independent and
// address-dependent mapping its outbound half makes the sender's mapping,
// which RFC 4787 hairpinning has it leave by and a punch between two
// hosts behind the NAT needs: the sender keeps that one mapping, however
// often it sends. Under address-and-port-dependent mapping the refused
// packet's mapping is one no flow holds, which the next packet could not
// use: it is not kept, so that sending again does not pile up ports.
func TestRefusedHairpinKeepsNoStrayMapping(t *testing.T) {
	for _, tc := range []struct {
		knobs string
		want  int
	}{
		{"type: address-restricted-cone", 1},
		{"type: port-restricted-cone", 1},
		{"type: symmetric", 0},
		{"mapping: address-and-port-dependent, filtering: address-dependent", 0},
	} {
		t.Run(tc.knobs, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(`
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, %s}
  h1:     {kind: host, behind: nat}
  h2:     {kind: host, behind: nat}
`, tc.knobs))
			srv := l.UDP("server", "203.0.113.10:9000")
			b := l.UDP("h2", ":40000")
			b.Send(netip.MustParseAddrPort("203.0.113.10:9000"), "out")
			p := srv.Expect("out", 2*time.Second)
			a := l.UDP("h1", ":41000")
			for i := range 3 {
				msg := fmt.Sprintf("hairpinned, unsolicited, %d", i)
				a.Send(p, msg)
				if b.Arrives(msg, 400*time.Millisecond) {
					t.Fatalf("%s let an unsolicited hairpinned packet in", tc.knobs)
				}
			}
			ns, err := namedns.Open(l.Namespace("nat"))
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("nat", 0))
			if err != nil {
				t.Fatal(err)
			}
			sender := netip.AddrPortFrom(l.Addr("h1", 0), 41000)
			var held []netip.AddrPort
			for _, m := range tab.Mappings {
				if m.Private == sender {
					held = append(held, m.Public)
				}
			}
			if len(held) != tc.want {
				t.Errorf("after three refused hairpinned packets, the NAT holds %d mappings of %v (%v); want %d", len(held), sender, held, tc.want)
			}
			// The mapping that made it through stays the NAT's: b's own.
			if !slices.ContainsFunc(tab.Mappings, func(m nattable.Mapping) bool { return m.Public == p }) {
				t.Errorf("b's mapping %v is gone from the table", p)
			}
		})
	}
}

// A NAT with a pool: each mapping shows the address of the pool the
// server saw it from, with paired pooling and with arbitrary.
func TestPoolTable(t *testing.T) {
	for _, pooling := range []string{"paired", "arbitrary"} {
		t.Run(pooling, func(t *testing.T) {
			l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, public: [203.0.113.1, 203.0.113.2, 203.0.113.3], pooling: `+pooling+`, type: full-cone}
  a:      {kind: host, behind: nat}
  b:      {kind: host, behind: nat}
  c:      {kind: host, behind: nat}
`)
			srv := l.UDP("server", ":3478")
			to := netip.MustParseAddrPort("203.0.113.10:3478")
			seen := map[netip.AddrPort]netip.AddrPort{}
			for _, dev := range []string{"a", "b", "c"} {
				for port := 5000; port < 5003; port++ {
					c := l.UDP(dev, fmt.Sprintf(":%d", port))
					c.Send(to, dev)
					seen[netip.AddrPortFrom(l.Addr(dev, 0), uint16(port))] = srv.Expect(dev, 2*time.Second)
				}
			}
			ns, err := namedns.Open(l.Namespace("nat"))
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			tab, err := nattable.ReadNAT(t.Context(), ns.Fd(), l.Topo.Node("nat"))
			if err != nil {
				t.Fatal(err)
			}
			if len(tab.Mappings) != len(seen) {
				t.Fatalf("table has %d mappings, want %d:\n%+v", len(tab.Mappings), len(seen), tab)
			}
			for _, m := range tab.Mappings {
				if want := seen[m.Private]; m.Public != want {
					t.Errorf("mapping of %v: public %v, but the server saw it from %v", m.Private, m.Public, want)
				}
			}
			for _, f := range tab.Flows {
				if want := seen[f.Private]; f.Public != want {
					t.Errorf("flow of %v: public %v, but the server saw it from %v", f.Private, f.Public, want)
				}
			}
		})
	}
}
