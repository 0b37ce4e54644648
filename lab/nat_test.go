package lab_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
)

// The tests here bring up a lab with one NAT configured as the test needs,
// two hosts behind it and a server with two addresses, and check the NAT's
// behaviour with real UDP sockets: what the server sees (mapping), what
// gets back in (filtering), which ports are used, hairpinning, timeouts
// and port forwards.

const (
	port1 = 3478
	port2 = 3479
	// silence is how long a packet that should be dropped is waited for.
	silence = 400 * time.Millisecond
	arrival = 2 * time.Second
)

func natLab(t *testing.T, knobs string) *labtest.Lab {
	return labtest.Up(t, fmt.Sprintf(`
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  nat:    {kind: nat, public: 203.0.113.1, lan: 192.168.1.0/24, %s}
  h1:     {kind: host, behind: nat}
  h2:     {kind: host, behind: nat}
`, knobs))
}

// servers opens the four server endpoints: two addresses, two ports each.
type servers struct {
	a1p1, a1p2, a2p1, a2p2 *labtest.UDPConn
	addr                   map[*labtest.UDPConn]netip.AddrPort
}

func openServers(l *labtest.Lab) *servers {
	a1, a2 := l.Addr("server", 0), l.Addr("server", 1)
	s := &servers{addr: map[*labtest.UDPConn]netip.AddrPort{}}
	for _, e := range []struct {
		conn **labtest.UDPConn
		at   netip.AddrPort
	}{
		{&s.a1p1, netip.AddrPortFrom(a1, port1)},
		{&s.a1p2, netip.AddrPortFrom(a1, port2)},
		{&s.a2p1, netip.AddrPortFrom(a2, port1)},
		{&s.a2p2, netip.AddrPortFrom(a2, port2)},
	} {
		*e.conn = l.UDP("server", e.at.String())
		s.addr[*e.conn] = e.at
	}
	return s
}

// seen sends from host to server endpoint and returns the source the
// server saw: the host's public endpoint towards that server.
func (s *servers) seen(t *testing.T, from *labtest.UDPConn, to *labtest.UDPConn) netip.AddrPort {
	t.Helper()
	msg := fmt.Sprintf("probe %v", s.addr[to])
	from.Send(s.addr[to], msg)
	return to.Expect(msg, arrival)
}

func TestMapping(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.1")
	for _, tc := range []struct {
		mapping string
		// Which of (other port, other address, both) keep the public port.
		sameForPort, sameForAddress bool
	}{
		{"endpoint-independent", true, true},
		{"address-dependent", true, false},
		{"address-and-port-dependent", false, false},
	} {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "mapping: "+tc.mapping+", filtering: endpoint-independent")
			s := openServers(l)
			h := l.UDP("h1", "")
			first := s.seen(t, h, s.a1p1)
			otherPort := s.seen(t, h, s.a1p2)
			otherAddr := s.seen(t, h, s.a2p1)
			if first.Addr() != public || otherPort.Addr() != public || otherAddr.Addr() != public {
				t.Fatalf("server saw %v, %v, %v; want all from the NAT's public address %v", first, otherPort, otherAddr, public)
			}
			if got := otherPort == first; got != tc.sameForPort {
				t.Errorf("same private endpoint to another port of the same address: public %v then %v; same=%v, want %v", first, otherPort, got, tc.sameForPort)
			}
			if got := otherAddr == first; got != tc.sameForAddress {
				t.Errorf("same private endpoint to another address: public %v then %v; same=%v, want %v", first, otherAddr, got, tc.sameForAddress)
			}
			if again := s.seen(t, h, s.a1p1); again != first {
				t.Errorf("the same flow again came from %v, want the mapping %v to hold", again, first)
			}
		})
	}
}

func TestFiltering(t *testing.T) {
	for _, tc := range []struct {
		filtering string
		// Whether a packet gets in from the endpoint the host sent to, from
		// another port of its address, and from another address.
		same, otherPort, otherAddr bool
	}{
		{"endpoint-independent", true, true, true},
		{"address-dependent", true, true, false},
		{"address-and-port-dependent", true, false, false},
	} {
		t.Run(tc.filtering, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "mapping: endpoint-independent, filtering: "+tc.filtering)
			s := openServers(l)
			h := l.UDP("h1", "")
			public := s.seen(t, h, s.a1p1)
			for _, c := range []struct {
				name string
				from *labtest.UDPConn
				want bool
			}{
				{"another address", s.a2p1, tc.otherAddr},
				{"another port of the same address", s.a1p2, tc.otherPort},
				{"the endpoint the host sent to", s.a1p1, tc.same},
			} {
				msg := "from " + c.name
				c.from.Send(public, msg)
				if got := h.Arrives(msg, silence); got != c.want {
					t.Errorf("packet from %s (%v) to the mapping %v: arrived=%v, want %v", c.name, s.addr[c.from], public, got, c.want)
				}
			}
		})
	}
}

func TestUnsolicitedIsDropped(t *testing.T) {
	for _, typ := range []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "type: "+typ)
			s := openServers(l)
			h := l.UDP("h1", "192.168.1.2:40000")
			// Nothing has gone out yet: no mapping, nothing gets in, whatever
			// the port.
			s.a1p1.Send(netip.MustParseAddrPort("203.0.113.1:40000"), "knock")
			if h.Arrives("knock", silence) {
				t.Fatal("an unsolicited packet reached the host")
			}
			// The wall did not claim the port: the host's first packet out
			// still keeps its port, and the server's answer gets in.
			from := s.seen(t, h, s.a1p1)
			if typ != "symmetric" && from.Port() != 40000 {
				t.Errorf("after an unsolicited packet to port 40000 the host's mapping is %v, want port 40000 preserved", from)
			}
			s.a1p1.Send(from, "answer")
			h.Expect("answer", arrival)
		})
	}
}

func TestPortAllocation(t *testing.T) {
	t.Run("preserve", func(t *testing.T) {
		t.Parallel()
		l := natLab(t, "type: full-cone, ports: preserve")
		s := openServers(l)
		h := l.UDP("h1", ":40000")
		if got := s.seen(t, h, s.a1p1).Port(); got != 40000 {
			t.Errorf("public port %d, want the private port 40000 preserved", got)
		}
	})
	t.Run("sequential", func(t *testing.T) {
		t.Parallel()
		// A symmetric NAT makes a new mapping per destination, so four
		// destinations give four consecutive ports.
		l := natLab(t, "type: symmetric, ports: sequential, port-range: 48721-65535")
		s := openServers(l)
		h := l.UDP("h1", "")
		for i, to := range []*labtest.UDPConn{s.a1p1, s.a1p2, s.a2p1, s.a2p2} {
			if got, want := s.seen(t, h, to).Port(), uint16(48721+i); got != want {
				t.Errorf("mapping %d got public port %d, want %d", i+1, got, want)
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		l := natLab(t, "type: symmetric, ports: random, port-range: 20000-29999")
		s := openServers(l)
		h := l.UDP("h1", ":40000")
		var ports []uint16
		consecutive := true
		for i, to := range []*labtest.UDPConn{s.a1p1, s.a1p2, s.a2p1, s.a2p2} {
			p := s.seen(t, h, to).Port()
			if p < 20000 || p > 29999 {
				t.Errorf("public port %d outside the range 20000-29999", p)
			}
			if i > 0 && p != ports[i-1]+1 {
				consecutive = false
			}
			ports = append(ports, p)
		}
		if consecutive {
			t.Errorf("ports %v are consecutive; want random", ports)
		}
	})
}

// Two hosts bind the same private port: endpoint-independent mapping must
// give them different public ports and keep each one's port towards every
// destination (nat-behaviour.md, trap 2).
func TestSamePrivatePort(t *testing.T) {
	l := natLab(t, "type: full-cone")
	s := openServers(l)
	h1 := l.UDP("h1", ":5000")
	h2 := l.UDP("h2", ":5000")
	p1 := s.seen(t, h1, s.a1p1)
	p2 := s.seen(t, h2, s.a1p1)
	if p1 == p2 {
		t.Fatalf("both hosts got the public endpoint %v", p1)
	}
	if got := s.seen(t, h2, s.a2p2); got != p2 {
		t.Errorf("h2 towards another server got %v, want its mapping %v", got, p2)
	}
	if got := s.seen(t, h1, s.a2p2); got != p1 {
		t.Errorf("h1 towards another server got %v, want its mapping %v", got, p1)
	}
	// Full cone: anyone reaches each mapping's owner, and only its owner.
	s.a2p1.Send(p1, "to h1")
	s.a2p1.Send(p2, "to h2")
	h1.Expect("to h1", arrival)
	h2.Expect("to h2", arrival)
	if h1.Arrives("to h2", silence) {
		t.Error("h2's packet reached h1")
	}
}

func TestHairpin(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("hairpin=%v", on), func(t *testing.T) {
			t.Parallel()
			l := natLab(t, fmt.Sprintf("type: full-cone, hairpin: %v", on))
			s := openServers(l)
			h1, h2 := l.UDP("h1", ""), l.UDP("h2", "")
			p1 := s.seen(t, h1, s.a1p1)
			p2 := s.seen(t, h2, s.a1p1)
			h1.Send(p2, "via the public address")
			if !on {
				if h2.Arrives("via the public address", silence) {
					t.Error("a packet to h2's public endpoint looped back without hairpinning")
				}
				return
			}
			from := h2.Expect("via the public address", arrival)
			if from != p1 {
				t.Errorf("h2 saw the hairpinned packet from %v, want h1's public endpoint %v", from, p1)
			}
		})
	}
}

func TestMappingTimeout(t *testing.T) {
	for _, keepalive := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keepalive), func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "type: full-cone, timeout: 2s")
			s := openServers(l)
			h := l.UDP("h1", "")
			public := s.seen(t, h, s.a1p1)
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
				if keepalive {
					s.seen(t, h, s.a1p1)
				}
				time.Sleep(time.Second)
			}
			s.a2p2.Send(public, "still there?")
			if got := h.Arrives("still there?", silence); got != keepalive {
				t.Errorf("after 3s with a 2s mapping timeout (keepalive=%v) a packet to the mapping arrived=%v, want %v", keepalive, got, keepalive)
			}
		})
	}
}

// With refresh: outbound only packets from inside keep a mapping alive
// (RFC 4787 REQ-6): a mapping whose remote keeps sending while its host
// only listens expires at its timeout, and the remote's packets stop
// reaching the host. With refresh: both (the default) the same traffic
// keeps it. Both ways inbound packets come through: as conntrack replies
// (port-restricted cone) and through natlab's maps (full cone, where a
// new remote is then let in too, or not).
func TestRefreshDirection(t *testing.T) {
	for _, typ := range []string{"full-cone", "port-restricted-cone"} {
		for _, refresh := range []string{"both", "outbound"} {
			t.Run(typ+"/"+refresh, func(t *testing.T) {
				t.Parallel()
				l := natLab(t, "type: "+typ+", timeout: 2s, refresh: "+refresh)
				s := openServers(l)
				h := l.UDP("h1", "")
				public := s.seen(t, h, s.a1p1)
				s.a1p1.Send(public, "first")
				h.Expect("first", arrival)
				// Twice the timeout of inbound traffic only.
				for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
					s.a1p1.Send(public, "keepalive from outside")
				}
				s.a1p1.Send(public, "still there?")
				want := refresh == "both"
				if got := h.Arrives("still there?", silence); got != want {
					t.Errorf("after 4s of inbound traffic only, with a 2s timeout and refresh %s, a packet from the remote arrived=%v, want %v", refresh, got, want)
				}
				if typ == "full-cone" {
					s.a2p2.Send(public, "a new remote")
					if got := h.Arrives("a new remote", silence); got != want {
						t.Errorf("refresh %s: a packet from a new remote to the mapping arrived=%v, want %v", refresh, got, want)
					}
				}
			})
		}
	}
}

func TestPortForward(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  friend:    {kind: host}
  nat:       {kind: nat, type: symmetric, forward: [{proto: tcp, port: 25565, to: minecraft}, {proto: udp, port: 27015, to: "game:27016"}]}
  minecraft: {kind: host, behind: nat}
  game:      {kind: host, behind: nat}
`)
	public := l.Addr("nat", 0)
	private := l.Addr("minecraft", 0)
	l.TCPListen("minecraft", ":25565")
	l.TCPListen("minecraft", ":25566")
	got, err := l.TCPDial("friend", netip.AddrPortFrom(public, 25565).String(), arrival)
	if err != nil || got != "hello from minecraft" {
		t.Errorf("friend -> %v:25565 (forwarded): %q, %v; want the game server's greeting", public, got, err)
	}
	if _, err := l.TCPDial("friend", netip.AddrPortFrom(public, 25566).String(), silence); err == nil {
		t.Errorf("friend reached %v:25566, which is not forwarded", public)
	}
	if _, err := l.TCPDial("friend", netip.AddrPortFrom(private, 25565).String(), silence); err == nil {
		t.Errorf("friend reached the private address %v directly", private)
	}
	game := l.UDP("game", ":27016")
	friend := l.UDP("friend", "")
	friend.Send(netip.AddrPortFrom(public, 27015), "udp forward")
	from := game.Expect("udp forward", arrival)
	game.Send(from, "reply")
	if _, src, ok := friend.Recv(arrival); !ok || src != netip.AddrPortFrom(public, 27015) {
		t.Errorf("the game server's reply came from %v (arrived=%v), want %v:27015", src, ok, public)
	}
}

func TestCarrierGradeNAT(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  server: {kind: server}
  cgnat:  {kind: nat, type: symmetric, lan: 100.64.0.0/10}
  home:   {kind: nat, type: full-cone, behind: cgnat}
  laptop: {kind: host, behind: home}
`)
	srv := l.UDP("server", ":3478")
	h := l.UDP("laptop", "")
	h.Send(netip.AddrPortFrom(l.Addr("server", 0), 3478), "through two NATs")
	from := srv.Expect("through two NATs", arrival)
	if from.Addr() != l.Addr("cgnat", 0) {
		t.Errorf("server saw %v, want the carrier NAT's address %v", from, l.Addr("cgnat", 0))
	}
	if home := l.Addr("home", 0); !strings.HasPrefix(home.String(), "100.") {
		t.Errorf("the home NAT's public address %v is not in the carrier's 100.64.0.0/10", home)
	}
	srv.Send(from, "back")
	h.Expect("back", arrival)
}

func TestTCPAndPingGoOut(t *testing.T) {
	l := natLab(t, "type: symmetric")
	l.TCPListen("server", ":80")
	if got, err := l.TCPDial("h1", "203.0.113.10:80", arrival); err != nil || got != "hello from server" {
		t.Errorf("TCP from behind the NAT: %q, %v", got, err)
	}
	// TCP needs no tool, so it is checked also where ping is missing
	// (make vm-test's guest).
	testutil.RequireTool(t, "ping")
	out, err := runIn(l.Namespace("h1"), "ping", "-c", "1", "-W", "2", "203.0.113.10")
	if err != nil {
		t.Errorf("ping from behind the NAT: %v\n%s", err, out)
	}
}

// A NAT whose range has room for four mappings gives out exactly those
// four ports, whichever is free, and refuses a fifth.
func TestSmallPortRange(t *testing.T) {
	l := natLab(t, "type: symmetric, port-range: 40000-40003")
	s := openServers(l)
	h := l.UDP("h1", ":5000")
	seen := map[uint16]bool{}
	for _, to := range []*labtest.UDPConn{s.a1p1, s.a1p2, s.a2p1, s.a2p2} {
		p := s.seen(t, h, to).Port()
		if p < 40000 || p > 40003 || seen[p] {
			t.Errorf("public port %d: want each of 40000-40003 once", p)
		}
		seen[p] = true
	}
	// A fifth destination: no port left.
	h2 := l.UDP("h2", "")
	h2.Send(netip.MustParseAddrPort("203.0.113.10:3478"), "one too many")
	if s.a1p1.Arrives("one too many", silence) {
		t.Error("a fifth mapping was made in a range of four ports")
	}
}

// Port preservation keeps a private port only when it lies in the range.
func TestPreserveWithinRange(t *testing.T) {
	l := natLab(t, "type: full-cone, ports: preserve, port-range: 40000-40100")
	s := openServers(l)
	if p := s.seen(t, l.UDP("h1", ":40050"), s.a1p1).Port(); p != 40050 {
		t.Errorf("a private port in the range: public %d, want it kept", p)
	}
	if p := s.seen(t, l.UDP("h2", ":5000"), s.a1p1).Port(); p < 40000 || p > 40100 {
		t.Errorf("a private port outside the range: public %d, want one from 40000-40100", p)
	}
}
