package labtest_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/nat"
)

// TestExample runs the package example's test for real.
func TestExample(t *testing.T) { testEchoThroughSymmetricNAT(t) }

// whoAmI is the echo program's client: it asks the server at server which
// address and port its datagram came from.
func whoAmI(c *net.UDPConn, server netip.AddrPort) (netip.AddrPort, error) {
	if _, err := c.WriteToUDPAddrPort([]byte("who am I?"), server); err != nil {
		return netip.AddrPort{}, err
	}
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("ask %v: %w", server, err)
		}
		if from == server {
			return netip.ParseAddrPort(string(buf[:n]))
		}
	}
}

// arrives reports whether payload reaches c within wait.
func arrives(c *net.UDPConn, payload string, wait time.Duration) bool {
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == payload {
			return true
		}
	}
}

// TestEchoAcrossNATTypes checks the echo program from behind each NAT type
// and what else reaches the socket it used, against RFC 4787: which
// mapping the NAT gives (the same public port for every destination, or
// one per destination) and which packets its filter lets in (from anyone
// once mapped, only from addresses the host sent to, or only from the
// exact address and port).
func TestEchoAcrossNATTypes(t *testing.T) {
	testutil.CheckRoutines(t)
	tests := []struct {
		typ nat.Type
		// samePort: both echo servers see the same public port
		// (endpoint-independent mapping); cone NATs also preserve the
		// host's own port.
		samePort bool
		// fromOtherPort: the echo server's address, from another port,
		// gets through.
		fromOtherPort bool
		// fromStranger: a host the socket never sent to gets through.
		fromStranger bool
	}{
		{nat.FullCone, true, true, true},
		{nat.AddressRestrictedCone, true, true, false},
		{nat.PortRestrictedCone, true, false, false},
		{nat.Symmetric, false, false, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.typ), func(t *testing.T) {
			t.Parallel()
			lb := labtest.Up(t, fmt.Sprintf(`
nodes:
  echo:     {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  stranger: {kind: host}
  home:     {kind: nat, type: %s}
  alice:    {kind: host, behind: home}
`, tc.typ))
			echo := lb.Node("echo")
			var servers []netip.AddrPort
			for _, a := range echo.Addrs() {
				s := netip.AddrPortFrom(a, 3478)
				c, err := echo.ListenUDP("udp4", s.String())
				if err != nil {
					t.Fatal(err)
				}
				go serveEcho(c)
				servers = append(servers, s)
			}

			alice, err := lb.Node("alice").ListenUDP("udp4", ":0")
			if err != nil {
				t.Fatal(err)
			}
			local := uint16(alice.LocalAddr().(*net.UDPAddr).Port)
			var seen []netip.AddrPort
			for _, s := range servers {
				m, err := whoAmI(alice, s)
				if err != nil {
					t.Fatalf("echo through %s: %v", tc.typ, err)
				}
				seen = append(seen, m)
			}
			public := lb.Node("home").Addr()
			if seen[0].Addr() != public || seen[1].Addr() != public {
				t.Fatalf("the echo servers saw %v, want the NAT's public address %v", seen, public)
			}
			if same := seen[0].Port() == seen[1].Port(); same != tc.samePort {
				t.Errorf("ports seen %d and %d: same %v, want %v", seen[0].Port(), seen[1].Port(), same, tc.samePort)
			}
			if tc.samePort && seen[0].Port() != local {
				t.Errorf("a %s NAT mapped port %d to %d; it preserves ports", tc.typ, local, seen[0].Port())
			}

			// Knock on the mapping the first server saw.
			other, err := echo.ListenUDP("udp4", netip.AddrPortFrom(servers[0].Addr(), 3479).String())
			if err != nil {
				t.Fatal(err)
			}
			stranger, err := lb.Node("stranger").ListenUDP("udp4", ":3478")
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []struct {
				from *net.UDPConn
				what string
				want bool
			}{
				{other, "the echo server's address from another port", tc.fromOtherPort},
				{stranger, "a stranger", tc.fromStranger},
			} {
				if _, err := k.from.WriteToUDPAddrPort([]byte("knock"), seen[0]); err != nil {
					t.Fatal(err)
				}
				// A NAT drops or forwards at once: half a second is long
				// for a lab whose round trips take microseconds.
				if got := arrives(alice, "knock", 500*time.Millisecond); got != k.want {
					t.Errorf("%s reached alice through %s: %v, want %v", k.what, tc.typ, got, k.want)
				}
			}
		})
	}
}
