package lab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/nattable"
)

// A NAT with a pool of public addresses (RFC 4787 section 4.1), seen from
// two servers on different addresses, as a host would see it with two
// STUN servers.

var pool = []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")}

// pooledHosts picks n private addresses of 192.168.1.0/24 whose paired
// addresses are pool[0], pool[1], ... in turn, so that the hosts of a test
// show different public addresses; natrules.PoolIndex says which address
// each gets, which the tests check the kernel agrees with.
func pooledHosts(t *testing.T, n int) []netip.Addr {
	t.Helper()
	var hosts []netip.Addr
	for a := netip.MustParseAddr("192.168.1.2"); len(hosts) < n && a.As4()[3] < 250; a = a.Next() {
		if natrules.PoolIndex(nat.PoolingPaired, netip.AddrPortFrom(a, 0), len(pool)) == len(hosts)%len(pool) {
			hosts = append(hosts, a)
		}
	}
	if len(hosts) < n {
		t.Fatalf("no %d hosts of 192.168.1.0/24 with pool addresses in turn", n)
	}
	return hosts
}

// poolLab is natLab with the pool and hosts h0, h1, ... at the addresses
// given.
func poolLab(t *testing.T, knobs string, hosts []netip.Addr) *labtest.Lab {
	spec := fmt.Sprintf(`
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  nat:    {kind: nat, public: [%v, %v, %v], lan: 192.168.1.0/24, %s}
`, pool[0], pool[1], pool[2], knobs)
	for i, a := range hosts {
		spec += fmt.Sprintf("  h%d: {kind: host, behind: nat, address: %v}\n", i, a)
	}
	return labtest.Up(t, spec)
}

func TestPoolPaired(t *testing.T) {
	for _, typ := range []string{"full-cone", "symmetric"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			hosts := pooledHosts(t, 3)
			l := poolLab(t, "type: "+typ, hosts)
			s := openServers(l)
			for i, priv := range hosts {
				want := natrules.PoolAddr(nat.PoolingPaired, pool, netip.AddrPortFrom(priv, 0))
				// Two sockets, each to both servers' addresses: one public
				// address for all four mappings (RFC 4787 REQ-2).
				for j := range 2 {
					h := l.UDP(fmt.Sprintf("h%d", i), "")
					for _, to := range []*labtest.UDPConn{s.a1p1, s.a2p1} {
						if got := s.seen(t, h, to); got.Addr() != want {
							t.Errorf("h%d (%v), socket %d, to %v: seen from %v, want paired address %v", i, priv, j, s.addr[to], got, want)
						}
					}
				}
			}
		})
	}
}

func TestPoolArbitrary(t *testing.T) {
	t.Parallel()
	hosts := pooledHosts(t, 1)
	l := poolLab(t, "type: full-cone, pooling: arbitrary", hosts)
	s := openServers(l)
	seen := map[netip.Addr]bool{}
	for port := uint16(40000); port < 40008; port++ {
		priv := netip.AddrPortFrom(hosts[0], port)
		h := l.UDP("h0", priv.String())
		want := natrules.PoolAddr(nat.PoolingArbitrary, pool, priv)
		first := s.seen(t, h, s.a1p1)
		// Endpoint-independent mapping still holds: the other server
		// sees the same address and port.
		if again := s.seen(t, h, s.a2p1); again != first {
			t.Errorf("%v: seen as %v by %v and as %v by %v, want one mapping", priv, first, s.addr[s.a1p1], again, s.addr[s.a2p1])
		}
		if first.Addr() != want {
			t.Errorf("%v: seen from %v, want %v, the address natrules.PoolAddr says", priv, first, want)
		}
		seen[first.Addr()] = true
	}
	if len(seen) < 2 {
		t.Errorf("eight sockets of one host all seen from %v; arbitrary pooling should spread them over the pool", seen)
	}
}

// TestPoolFiltering checks the filtering of a mapping on an address of the
// pool other than the first: what the filtering admits gets in, nothing
// gets in to the same port on another address of the pool, and a host on
// one address hairpins to a host on another as the filtering says.
func TestPoolFiltering(t *testing.T) {
	for _, tc := range []struct {
		typ                  string
		otherPort, otherAddr bool
	}{
		{"full-cone", true, true},
		{"address-restricted-cone", true, false},
		{"port-restricted-cone", false, false},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			hosts := pooledHosts(t, 3)
			l := poolLab(t, "type: "+tc.typ, hosts)
			s := openServers(l)
			// h1's address is pool[1], h2's pool[2].
			h := l.UDP("h1", "")
			public := s.seen(t, h, s.a1p1)
			if public.Addr() != pool[1] {
				t.Fatalf("h1 is seen from %v, want %v", public, pool[1])
			}
			dropped := 0
			for _, c := range []struct {
				name string
				from *labtest.UDPConn
				to   netip.AddrPort
				want bool
			}{
				{"another address", s.a2p1, public, tc.otherAddr},
				{"another port of the same address", s.a1p2, public, tc.otherPort},
				{"the endpoint the host sent to, to the port on the first address", s.a1p1, netip.AddrPortFrom(pool[0], public.Port()), false},
				{"the endpoint the host sent to, to the port on the third address", s.a1p1, netip.AddrPortFrom(pool[2], public.Port()), false},
				{"another address, to the port on the first address", s.a2p1, netip.AddrPortFrom(pool[0], public.Port()), false},
				{"the endpoint the host sent to", s.a1p1, public, true},
			} {
				msg := "from " + c.name
				c.from.Send(c.to, msg)
				if got := h.Arrives(msg, silence); got != c.want {
					t.Errorf("packet from %s (%v) to %v: arrived=%v, want %v", c.name, s.addr[c.from], c.to, got, c.want)
				}
				if !c.want {
					dropped++
				}
			}
			// The wall counted each packet it kept out, those that a
			// mapping's port on another address let through destination
			// NAT included.
			ns, err := namedns.Open(l.Namespace("nat"))
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			if n, err := nattable.WallDrops(t.Context(), ns.Fd()); err != nil || n != uint64(dropped) {
				t.Errorf("the wall counts %d drops (%v), want %d", n, err, dropped)
			}

			// Hairpinning between h1 (pool[1]) and h2 (pool[2]): h1's
			// first packet reaches h2 only if the filtering admits
			// anyone; once h2 has sent to h1's public endpoint, h1's
			// next one gets in, and h2's reached h1, which had sent to
			// h2's public endpoint.
			h2 := l.UDP("h2", "")
			p2 := s.seen(t, h2, s.a1p1)
			if p2.Addr() != pool[2] {
				t.Fatalf("h2 is seen from %v, want %v", p2, pool[2])
			}
			h.Send(p2, "hairpin 1")
			if got := h2.Arrives("hairpin 1", silence); got != tc.otherAddr {
				t.Errorf("h1's first hairpinned packet to %v: arrived=%v, want %v", p2, got, tc.otherAddr)
			}
			h2.Send(public, "hairpin 2")
			if from := h.Expect("hairpin 2", arrival); from != p2 {
				t.Errorf("h1 saw h2's hairpinned packet from %v, want h2's public endpoint %v", from, p2)
			}
			h.Send(p2, "hairpin 3")
			if from := h2.Expect("hairpin 3", arrival); from != public {
				t.Errorf("h2 saw h1's hairpinned packet from %v, want h1's public endpoint %v", from, public)
			}
		})
	}
}

// TestPoolTCPGoesOutPaired checks that TCP, which conntrack alone
// translates, leaves from the host's paired address too.
func TestPoolTCPGoesOutPaired(t *testing.T) {
	t.Parallel()
	hosts := pooledHosts(t, 3)
	l := poolLab(t, "type: port-restricted-cone", hosts)
	var ln net.Listener
	l.Do("server", func() error {
		var err error
		ln, err = net.Listen("tcp4", "203.0.113.10:8080")
		return err
	})
	t.Cleanup(func() { ln.Close() })
	from := make(chan netip.AddrPort, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			from <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	for i := range hosts {
		if _, err := l.TCPDial(fmt.Sprintf("h%d", i), "203.0.113.10:8080", arrival); err != nil {
			t.Fatalf("h%d: %v", i, err)
		}
		if got := (<-from).Addr(); got != pool[i] {
			t.Errorf("h%d's TCP connection came from %v, want its paired address %v", i, got, pool[i])
		}
	}
}

// A pooled NAT reboots (its maps forgotten, its pool's sets kept) and
// switches type with its pool, each host on its paired address still;
// renumbering it, or making it one-to-one, is refused as bad input.
func TestPoolRebootAndSwitch(t *testing.T) {
	t.Parallel()
	hosts := pooledHosts(t, 2)
	l := poolLab(t, "type: full-cone", hosts)
	s := openServers(l)
	if got := s.seen(t, l.UDP("h1", ""), s.a1p1); got.Addr() != pool[1] {
		t.Fatalf("h1 seen from %v, want %v", got, pool[1])
	}
	ctx := context.Background()
	if _, err := lab.Reboot(ctx, l.Topo.Name, "nat", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := s.seen(t, l.UDP("h1", ""), s.a1p1); got.Addr() != pool[1] {
		t.Errorf("after the reboot h1 is seen from %v, want %v", got, pool[1])
	}
	if _, err := lab.SwitchNAT(ctx, l.Topo.Name, "nat", nat.Symmetric); err != nil {
		t.Fatal(err)
	}
	h := l.UDP("h1", "")
	first, second := s.seen(t, h, s.a1p1), s.seen(t, h, s.a2p1)
	if first.Addr() != pool[1] || second.Addr() != pool[1] || first == second {
		t.Errorf("symmetric now: h1 seen from %v and %v, want two mappings on %v", first, second, pool[1])
	}
	if _, err := lab.Renumber(ctx, l.Topo.Name, "nat", netip.MustParseAddr("203.0.113.77")); !errors.Is(err, lab.ErrBadChange) || !strings.Contains(err.Error(), "pool") {
		t.Errorf("renumbering a pool: %v, want a bad change", err)
	}
	if _, err := lab.SwitchNAT(ctx, l.Topo.Name, "nat", nat.OneToOne); !errors.Is(err, lab.ErrBadChange) || !strings.Contains(err.Error(), "pool") {
		t.Errorf("making a pool one-to-one: %v, want a bad change", err)
	}
}

// Pools nest as NATs do (carrier-grade NAT): an inner NAT's pool is on
// the outer's LAN, so the outer sees its addresses as private hosts and
// pairs each with one of its own. What alice sends leaves from the outer
// pool, and answers find their way back through both.
func TestPoolBehindPool(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  isp:    {kind: nat, type: full-cone, public: [203.0.113.1, 203.0.113.2], lan: 100.64.0.0/24}
  home:   {kind: nat, type: full-cone, behind: isp, public: [100.64.0.10, 100.64.0.11, 100.64.0.12], pooling: arbitrary}
  alice:  {kind: host, behind: home}
`)
	s := openServers(l)
	outer := l.Topo.Node("isp").Addresses
	for port := 40000; port < 40006; port++ {
		h := l.UDP("alice", fmt.Sprintf(":%d", port))
		public := s.seen(t, h, s.a1p1)
		if !slices.Contains(outer, public.Addr()) {
			t.Errorf("alice's socket %d seen from %v, none of isp's %v", port, public, outer)
		}
		if again := s.seen(t, h, s.a2p1); again != public {
			t.Errorf("alice's socket %d seen from %v and %v, want one mapping through both full cones", port, public, again)
		}
		msg := fmt.Sprintf("answer to %d", port)
		s.a2p2.Send(public, msg)
		h.Expect(msg, arrival)
	}
}
