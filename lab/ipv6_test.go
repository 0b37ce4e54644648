package lab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/labtest"
)

const dualStack = `
internet6: 2001:db8::/32
nodes:
  server: {kind: server}
  other:  {kind: server}
  home:   {kind: nat, type: symmetric, firewall6: %s}
  alice:  {kind: host, behind: home}
  cgnat:  {kind: nat, type: symmetric, lan: 100.64.0.0/10}
  inner:  {kind: nat, type: full-cone, behind: cgnat, firewall6: off}
  bob:    {kind: host, behind: inner}
`

func v6(l *labtest.Lab, node string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(l.Topo.Node(node).Addresses6[0], port)
}

// IPv6 needs no NAT: every host has a global address, routed through the
// NATs, and the NATs' firewalls filter what comes in.
func TestIPv6Firewall(t *testing.T) {
	for _, tc := range []struct {
		filtering           string
		sameRemoteOtherPort bool
		otherRemote         bool
	}{
		{"endpoint-independent", true, true},
		{"address-dependent", true, false},
		{"address-and-port-dependent", false, false},
	} {
		t.Run(tc.filtering, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(dualStack, tc.filtering))
			a := l.UDP6("alice", "[::]:5000")
			srv := l.UDP6("server", "[::]:3478")
			srv2 := l.UDP6("server", "[::]:3479")
			oth := l.UDP6("other", "[::]:3478")
			// Unsolicited: dropped whatever the filtering.
			srv.Send(v6(l, "alice", 5000), "knock")
			if a.Arrives("knock", silence) {
				t.Error("an unsolicited IPv6 packet reached alice")
			}
			a.Send(v6(l, "server", 3478), "hello")
			from := srv.Expect("hello", arrival)
			if from != v6(l, "alice", 5000) {
				t.Errorf("the server saw alice as %v, want her own address %v: no NAT for IPv6", from, v6(l, "alice", 5000))
			}
			srv.Send(from, "reply")
			a.Expect("reply", arrival)
			srv2.Send(from, "other port")
			if got := a.Arrives("other port", silence); got != tc.sameRemoteOtherPort {
				t.Errorf("from another port of the server: arrived=%v, want %v", got, tc.sameRemoteOtherPort)
			}
			oth.Send(from, "other remote")
			if got := a.Arrives("other remote", silence); got != tc.otherRemote {
				t.Errorf("from another remote: arrived=%v, want %v", got, tc.otherRemote)
			}
		})
	}
	t.Run("off, through two NATs", func(t *testing.T) {
		t.Parallel()
		l := labtest.Up(t, fmt.Sprintf(dualStack, "address-and-port-dependent"))
		b := l.UDP6("bob", "[::]:6000")
		// cgnat's firewall (the default) stops strangers even though
		// inner's is off.
		l.UDP6("server", "").Send(v6(l, "bob", 6000), "knock")
		if b.Arrives("knock", silence) {
			t.Error("an unsolicited packet crossed cgnat's firewall")
		}
		srv := l.UDP6("server", "[::]:3478")
		b.Send(v6(l, "server", 3478), "out")
		from := srv.Expect("out", arrival)
		if from != v6(l, "bob", 6000) {
			t.Errorf("the server saw bob as %v, want %v", from, v6(l, "bob", 6000))
		}
		srv.Send(from, "back")
		b.Expect("back", arrival)
	})
}

// Two hosts on one dual-stack LAN reach each other over IPv6 directly, as
// over IPv4: the LAN's bridge is a switch, and the NAT's IPv6 firewall is
// not in their way, even where br_netfilter is loaded and would pass
// bridged frames through the NAT's filters (it dropped the neighbour
// solicitations).
func TestIPv6SameLAN(t *testing.T) {
	l := labtest.Up(t, `
internet6: 2001:db8::/32
nodes:
  home:  {kind: nat, type: symmetric, firewall6: address-and-port-dependent}
  alice: {kind: host, behind: home}
  bob:   {kind: host, behind: home}
`)
	a := l.UDP6("alice", "[::]:5000")
	b := l.UDP6("bob", "[::]:6000")
	a.Send(v6(l, "bob", 6000), "hello over the LAN")
	if from := b.Expect("hello over the LAN", arrival); from != v6(l, "alice", 5000) {
		t.Errorf("bob heard alice from %v, want her own address %v", from, v6(l, "alice", 5000))
	}
	b.Send(v6(l, "alice", 5000), "and back")
	a.Expect("and back", arrival)
}

// The IPv6 firewall filters TCP as it filters UDP (RFC 5382 asks of TCP
// what RFC 4787 asks of UDP): once alice has connected out from port
// 7000, a connection to that port from the same server's address is let
// in under endpoint-independent and address-dependent filtering, and one
// from another server only under endpoint-independent; a connection
// before she sent anything never is.
func TestIPv6FirewallTCP(t *testing.T) {
	reuse := func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return errors.Join(err, serr)
	}
	for _, tc := range []struct {
		filtering             string
		sameAddress, otherOne bool
	}{
		{"endpoint-independent", true, true},
		{"address-dependent", true, false},
		{"address-and-port-dependent", false, false},
	} {
		t.Run(tc.filtering, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(dualStack, tc.filtering))
			alice := l.Lab.Node("alice")
			var ln net.Listener
			if err := alice.Do(func() (err error) {
				ln, err = (&net.ListenConfig{Control: reuse}).Listen(context.Background(), "tcp6", "[::]:7000")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			defer ln.Close()
			wg.Go(func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			})
			srv, err := l.Lab.Node("server").Listen("tcp6", "[::]:80")
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			connects := func(from string) bool {
				// A SYN the firewall drops is sent again for two
				// minutes: a second is plenty for one it lets in.
				ctx, cancel := context.WithTimeout(context.Background(), silence*3)
				defer cancel()
				c, err := l.Lab.Node(from).DialContext(ctx, "tcp6", v6(l, "alice", 7000).String())
				if err == nil {
					c.Close()
				}
				return err == nil
			}
			if connects("server") {
				t.Error("a connection reached alice before she sent anything")
			}
			var out net.Conn
			if err := alice.Do(func() (err error) {
				d := net.Dialer{Control: reuse, LocalAddr: &net.TCPAddr{Port: 7000}, Timeout: arrival}
				out, err = d.Dial("tcp6", v6(l, "server", 80).String())
				return err
			}); err != nil {
				t.Fatalf("alice connects out from port 7000: %v", err)
			}
			defer out.Close()
			if got := connects("server"); got != tc.sameAddress {
				t.Errorf("a connection from the server's address after alice's: got in %v, want %v", got, tc.sameAddress)
			}
			if got := connects("other"); got != tc.otherOne {
				t.Errorf("a connection from another server after alice's: got in %v, want %v", got, tc.otherOne)
			}
		})
	}
}
