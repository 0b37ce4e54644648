package lab_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/natlab/natlab/internal/labtest"
)

// TestHairpinFiltering checks that a hairpinned packet meets the filtering
// of the mapping it is sent to, as RFC 4787 (section 6, REQ-9) has it: it
// comes from the NAT's public address, from the sender's public endpoint.
// The scenario: h2 (b) sends from port 40000 to out:9000 and gets
// the mapping P; sockets of h1 (a) then send to P. Full cone lets
// everything in; address-restricted lets in what comes once P has sent to
// the public address; port-restricted what comes from a public endpoint P
// has sent to; symmetric nothing, because a's hairpinned packet leaves by
// a new mapping P never sent to.
// Without hairpinning nothing loops back at all.
func TestHairpinFiltering(t *testing.T) {
	type want struct {
		// otherPort: out:9001's packet to P, which b opened by sending to
		// out:9000 (the filtering as it was before hairpinning meets it).
		otherPort bool
		// unsolicited: a's packet to P before b has sent to the NAT.
		unsolicited bool
		// toOther: b's packet to a2's public endpoint, which a2 has never
		// sent to P from; afterPublic: a's packet to P after that.
		toOther, afterPublic bool
		// toA3: b's packet to a3's public endpoint; afterA3: a3's packet
		// to P after that (hole punching's second packet).
		toA3, afterA3 bool
	}
	for _, tc := range []struct {
		knobs string
		want  want
	}{
		{"type: full-cone", want{true, true, true, true, true, true}},
		{"type: address-restricted-cone", want{true, false, false, true, false, true}},
		{"type: port-restricted-cone", want{false, false, false, false, false, true}},
		{"type: symmetric", want{false, false, false, false, false, false}},
		{"type: port-restricted-cone, hairpin: false", want{false, false, false, false, false, false}},
	} {
		t.Run(tc.knobs, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, tc.knobs)
			out := l.Addr("server", 0)
			out9000, out9001 := l.UDP("server", netip.AddrPortFrom(out, 9000).String()), l.UDP("server", netip.AddrPortFrom(out, 9001).String())
			b := l.UDP("h2", ":40000")
			a, a2, a3 := l.UDP("h1", ":41000"), l.UDP("h1", ":41001"), l.UDP("h1", ":41002")
			// Each learns its public endpoint from out:9000, as from STUN.
			seen := func(c *labtest.UDPConn) netip.AddrPort {
				t.Helper()
				msg := fmt.Sprintf("probe from port %d", c.LocalPort())
				c.Send(netip.AddrPortFrom(out, 9000), msg)
				return out9000.Expect(msg, arrival)
			}
			p := seen(b)
			pa, pa2, pa3 := seen(a), seen(a2), seen(a3)
			cone := tc.knobs != "type: symmetric"

			// check says whether step reached to, and from where: a
			// hairpinned packet comes from the sender's public endpoint
			// (under symmetric NAT a new one, which nobody knows).
			check := func(step string, to *labtest.UDPConn, from netip.AddrPort, want bool) {
				t.Helper()
				if !want {
					if to.Arrives(step, silence) {
						t.Errorf("%s: arrived, want it dropped by the filtering", step)
					}
					return
				}
				if got := to.Expect(step, arrival); cone && got != from {
					t.Errorf("%s: came from %v, want the sender's public endpoint %v", step, got, from)
				}
			}
			w := tc.want
			out9001.Send(p, "out:9001 to P")
			check("out:9001 to P", b, netip.AddrPortFrom(out, 9001), w.otherPort)

			a.Send(p, "a to P, unsolicited")
			check("a to P, unsolicited", b, pa, w.unsolicited)

			b.Send(pa2, "b to a2's public endpoint")
			check("b to a2's public endpoint", a2, p, w.toOther)
			a.Send(p, "a to P, once P has sent to the public address")
			check("a to P, once P has sent to the public address", b, pa, w.afterPublic)

			b.Send(pa3, "b to a3's public endpoint")
			check("b to a3's public endpoint", a3, p, w.toA3)
			a3.Send(p, "a3 to P, once P has sent to a3's public endpoint")
			check("a3 to P, once P has sent to a3's public endpoint", b, pa3, w.afterA3)
		})
	}
}

// A static forward is reached through the public address from inside too,
// whatever the filtering: it is open to everyone, so the hairpin's
// filtering has nothing to judge.
func TestHairpinToForward(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  nat:  {kind: nat, public: 203.0.113.1, lan: 192.168.1.0/24, type: port-restricted-cone, forward: [{proto: udp, port: 27015, to: "game:27016"}]}
  game: {kind: host, behind: nat}
  h1:   {kind: host, behind: nat}
`)
	game := l.UDP("game", ":27016")
	h := l.UDP("h1", "")
	h.Send(netip.AddrPortFrom(l.Addr("nat", 0), 27015), "to the forward")
	game.Expect("to the forward", arrival)
}
