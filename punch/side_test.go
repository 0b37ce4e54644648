package punch

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The phases of one side, without a lab: sockets on loopback, a Board
// for the rendezvous.

func listenLoop(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr+":0")))
	if err != nil {
		t.Skipf("no loopback address %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Step 2 announces the public endpoint, and the host's own address
// unless it is the public one, missing, or left out with PublicOnly.
func TestRegisterAnnounces(t *testing.T) {
	pub, local := netip.MustParseAddrPort("203.0.113.3:40000"), netip.MustParseAddrPort("192.168.1.2:4000")
	for _, tc := range []struct {
		name       string
		local      netip.AddrPort
		publicOnly bool
		want       []netip.AddrPort
	}{
		{"behind a nat", local, false, []netip.AddrPort{pub, local}},
		{"public only", local, true, []netip.AddrPort{pub}},
		{"no nat", pub, false, []netip.AddrPort{pub}},
		{"no local address", netip.AddrPort{}, false, []netip.AddrPort{pub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			board := NewBoard()
			s := newSide(withDefaults(Config{PublicOnly: tc.publicOnly}), Peer{Name: "alice", Local: tc.local, Exchange: board}, "bob", &eventLog{start: time.Now()})
			s.res.Public = pub
			if err := s.register(context.Background()); err != nil {
				t.Fatal(err)
			}
			reg, err := board.Fetch(context.Background(), "punch", "alice", time.Second)
			if err != nil || !slices.Equal(reg.Endpoints, tc.want) {
				t.Errorf("registered %v (%v), want %v", reg.Endpoints, err, tc.want)
			}
		})
	}
}

// Step 3 punches to what the other announced and, with prediction, the
// ports after it.
func TestFetchTargets(t *testing.T) {
	bob := netip.MustParseAddrPort("203.0.113.4:50000")
	for _, predict := range []bool{false, true} {
		board := NewBoard()
		board.Register(context.Background(), "punch", "bob", []netip.AddrPort{bob})
		s := newSide(withDefaults(Config{Predict: predict}), Peer{Name: "alice", Exchange: board}, "bob", &eventLog{start: time.Now()})
		if err := s.fetch(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		want := 1
		if predict {
			want = 17
		}
		if len(s.targets) != want || s.targets[0] != bob || s.targets[len(s.targets)-1].Port() != bob.Port()+uint16(want-1) {
			t.Errorf("predict=%v: targets %v", predict, s.targets)
		}
	}
}

// Step 5: the first packet of the other side says where it is, and the
// punches go only there; a punch is answered where it came from; an
// acknowledgement confirms the path. Packets of other sessions or peers
// change nothing.
func TestReceiveAnswerConfirm(t *testing.T) {
	alice, bob := listenLoop(t, "127.0.0.1"), listenLoop(t, "127.0.0.2")
	announced := netip.MustParseAddrPort("203.0.113.4:50000")
	s := newSide(withDefaults(Config{Session: "s"}), Peer{Name: "alice", Conn: alice}, "bob", &eventLog{start: time.Now()})
	s.res.Announced, s.targets, s.start = []netip.AddrPort{announced}, []netip.AddrPort{announced}, time.Now()

	for _, junk := range []string{"hello", "NATLAB PUNCH other bob alice 1", "NATLAB PUNCH s carol alice 1", "NATLAB PUNCH s bob carol 1", "NATLAB PUNCH s bob alice x"} {
		if _, _, ok := s.receive(packet{[]byte(junk), addrOf(bob)}); ok || s.heard {
			t.Errorf("%q was taken for bob's", junk)
		}
	}
	if _, ok := s.answer(); ok {
		t.Error("an answer with no punch to answer")
	}
	kind, n, ok := s.receive(packet{[]byte("NATLAB PUNCH s bob alice 7"), addrOf(bob)})
	if !ok || kind != "PUNCH" || n != 7 || !s.heard || s.res.Seen != addrOf(bob) || !s.res.Reflexive || !slices.Equal(s.targets, []netip.AddrPort{addrOf(bob)}) {
		t.Fatalf("bob's punch from an endpoint he did not announce: %s %d %v; state %+v, targets %v", kind, n, ok, s.res, s.targets)
	}
	to, ok := s.answer()
	if !ok || to != addrOf(bob) {
		t.Fatalf("answered %v, %v; want bob at %v", to, ok, addrOf(bob))
	}
	buf := make([]byte, 100)
	bob.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, from, err := bob.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:m]) != "NATLAB ACK s alice bob 0" || from != addrOf(alice) {
		t.Errorf("bob got %q from %v (%v)", buf[:m], from, err)
	}
	if _, ok := s.answer(); ok {
		t.Error("one punch answered twice")
	}
	s.confirm()
	if s.done {
		t.Fatal("confirmed before bob acknowledged a punch")
	}
	if _, _, ok := s.receive(packet{[]byte("NATLAB ACK s bob alice 0"), addrOf(bob)}); !ok || !s.acked {
		t.Fatal("bob's acknowledgement not taken")
	}
	s.confirm()
	select {
	case <-s.confirmed:
	default:
		t.Error("heard and acknowledged, but not confirmed")
	}
	// The punches counted, to where the targets are now.
	if first, last := s.punch(); first != 1 || last != 1 || s.res.Punches != 1 {
		t.Errorf("punch: %d-%d, %d punches", first, last, s.res.Punches)
	}
	bob.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, _, err := bob.ReadFromUDPAddrPort(buf); err != nil || string(buf[:m]) != "NATLAB PUNCH s alice bob 1" {
		t.Errorf("bob got %q (%v) of the punch", buf[:m], err)
	}
}
