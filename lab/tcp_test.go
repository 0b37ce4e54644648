package lab_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/labtest"
)

// The tests here check that a NAT's knobs apply to TCP as they do to UDP
// (RFC 5382): with real TCP sockets, what public endpoint a server sees
// for one private port (mapping), whether a SYN from a remote the host
// has not connected to reaches the host's port (filtering), how the
// public ports are picked, and that two hosts on one private port get two
// public ports.

// privatePort is the port the hosts connect from.
const privatePort = 40000

// reuse lets a socket share its port with the host's other sockets, as
// every socket of a TCP hole punch does: one private port listens and
// connects to several remotes at once.
func reuse(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err == nil {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// tcpServe listens at local inside node and answers every connection with
// one line, the node's name and the remote endpoint the connection came
// from, until the test ends: a TCP mirror, as STUN is for UDP.
func tcpServe(t *testing.T, l *labtest.Lab, node string, local netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	l.Do(node, func() error {
		var err error
		ln, err = (&net.ListenConfig{Control: reuse}).Listen(context.Background(), "tcp4", local.String())
		return err
	})
	var serving sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		serving.Wait()
	})
	serving.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", node, c.RemoteAddr())
			// The connection stays open until the test ends, and with it
			// its flow through the NAT; the peer closes it.
			serving.Go(func() {
				c.Read(make([]byte, 1))
				c.Close()
			})
		}
	})
}

// tcpDial connects from local inside node to to, waiting at most timeout,
// and returns the first line the remote sends. The connection stays open
// until the test ends.
func tcpDial(t *testing.T, l *labtest.Lab, node string, local, to netip.AddrPort, timeout time.Duration) (string, error) {
	t.Helper()
	var c net.Conn
	var dialErr error
	l.Do(node, func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Control: reuse, Timeout: timeout}
		c, dialErr = d.Dial("tcp4", to.String())
		return nil
	})
	if dialErr != nil {
		return "", dialErr
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// tcpSeen connects from node's private port to a mirror at to and returns
// the public endpoint the mirror saw.
func tcpSeen(t *testing.T, l *labtest.Lab, node string, to netip.AddrPort) netip.AddrPort {
	t.Helper()
	line, err := tcpDial(t, l, node, netip.AddrPortFrom(netip.IPv4Unspecified(), privatePort), to, arrival)
	if err != nil {
		t.Fatalf("TCP from %s port %d to %v: %v", node, privatePort, to, err)
	}
	_, seen := mirrored(t, line)
	return seen
}

// mirrored reads a mirror's line: who answered, and whom it saw.
func mirrored(t *testing.T, line string) (node string, seen netip.AddrPort) {
	t.Helper()
	node, addr, _ := strings.Cut(line, " ")
	seen, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatalf("a mirror answered %q: %v", line, err)
	}
	return node, seen
}

func TestTCPMapping(t *testing.T) {
	for _, tc := range []struct {
		mapping                     string
		sameForPort, sameForAddress bool
	}{
		{"endpoint-independent", true, true},
		{"address-dependent", true, false},
		{"address-and-port-dependent", false, false},
	} {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "mapping: "+tc.mapping+", filtering: endpoint-independent")
			a1p1 := netip.AddrPortFrom(l.Addr("server", 0), port1)
			a1p2 := netip.AddrPortFrom(l.Addr("server", 0), port2)
			a2p1 := netip.AddrPortFrom(l.Addr("server", 1), port1)
			for _, at := range []netip.AddrPort{a1p1, a1p2, a2p1} {
				tcpServe(t, l, "server", at)
			}
			first := tcpSeen(t, l, "h1", a1p1)
			otherPort := tcpSeen(t, l, "h1", a1p2)
			otherAddr := tcpSeen(t, l, "h1", a2p1)
			public := l.Addr("nat", 0)
			if first.Addr() != public || otherPort.Addr() != public || otherAddr.Addr() != public {
				t.Fatalf("the mirrors saw %v, %v, %v; want all from the NAT's public address %v", first, otherPort, otherAddr, public)
			}
			if first.Port() != privatePort {
				t.Errorf("the first connection's public port is %d, want the private port %d preserved", first.Port(), privatePort)
			}
			if got := otherPort == first; got != tc.sameForPort {
				t.Errorf("one private port to another port of the same address: public %v then %v; same=%v, want %v", first, otherPort, got, tc.sameForPort)
			}
			if got := otherAddr == first; got != tc.sameForAddress {
				t.Errorf("one private port to another address: public %v then %v; same=%v, want %v", first, otherAddr, got, tc.sameForAddress)
			}
		})
	}
}

func TestTCPFiltering(t *testing.T) {
	for _, tc := range []struct {
		filtering string
		// Whether a SYN to the mapping gets in from another port of the
		// address the host connected to, and from another address.
		otherPort, otherAddr bool
	}{
		{"endpoint-independent", true, true},
		{"address-dependent", true, false},
		{"address-and-port-dependent", false, false},
	} {
		t.Run(tc.filtering, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "mapping: endpoint-independent, filtering: "+tc.filtering)
			server := netip.AddrPortFrom(l.Addr("server", 0), port1)
			tcpServe(t, l, "server", server)
			// The host listens on the port it connects from, as a TCP
			// hole punch does; what gets in is answered.
			tcpServe(t, l, "h1", netip.AddrPortFrom(netip.IPv4Unspecified(), privatePort))
			public := tcpSeen(t, l, "h1", server)
			for _, c := range []struct {
				name string
				from netip.AddrPort
				want bool
			}{
				{"another port of the same address", netip.AddrPortFrom(server.Addr(), port2), tc.otherPort},
				{"another address", netip.AddrPortFrom(l.Addr("server", 1), port1), tc.otherAddr},
			} {
				timeout := arrival
				if !c.want {
					timeout = silence
				}
				line, err := tcpDial(t, l, "server", c.from, public, timeout)
				switch got := err == nil; {
				case got != c.want:
					t.Errorf("a SYN from %s (%v) to the mapping %v: connected=%v (%v), want %v", c.name, c.from, public, got, err, c.want)
				case got:
					// The host saw the remote as it is: destination NAT
					// only, no invented source.
					if node, seen := mirrored(t, line); node != "h1" || seen != c.from {
						t.Errorf("a connection from %s (%v) reached %s as from %v, want h1 as from the remote", c.name, c.from, node, seen)
					}
				}
			}
		})
	}
}

// An unsolicited SYN is dropped by the wall, and leaves the port to the
// host: its first connection out keeps the port, as for UDP (trap 1).
func TestTCPUnsolicitedIsDropped(t *testing.T) {
	for _, typ := range []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "type: "+typ)
			server := netip.AddrPortFrom(l.Addr("server", 0), port1)
			tcpServe(t, l, "server", server)
			tcpServe(t, l, "h1", netip.AddrPortFrom(netip.IPv4Unspecified(), privatePort))
			knock := netip.AddrPortFrom(l.Addr("nat", 0), privatePort)
			if _, err := tcpDial(t, l, "server", netip.AddrPortFrom(l.Addr("server", 1), 0), knock, silence); err == nil {
				t.Fatal("an unsolicited SYN reached the host")
			}
			from := tcpSeen(t, l, "h1", server)
			if typ != "symmetric" && from.Port() != privatePort {
				t.Errorf("after an unsolicited SYN to port %d the host's mapping is %v, want the port preserved", privatePort, from)
			}
		})
	}
}

func TestTCPPortAllocation(t *testing.T) {
	t.Parallel()
	// A symmetric NAT makes a new mapping per destination, so three
	// destinations give three consecutive ports.
	l := natLab(t, "type: symmetric, ports: sequential, port-range: 48721-65535")
	var to []netip.AddrPort
	for _, at := range []netip.AddrPort{
		netip.AddrPortFrom(l.Addr("server", 0), port1),
		netip.AddrPortFrom(l.Addr("server", 0), port2),
		netip.AddrPortFrom(l.Addr("server", 1), port1),
	} {
		tcpServe(t, l, "server", at)
		to = append(to, at)
	}
	for i, at := range to {
		if got, want := tcpSeen(t, l, "h1", at).Port(), uint16(48721+i); got != want {
			t.Errorf("connection %d got public port %d, want %d", i+1, got, want)
		}
	}
}

// Two hosts connect from the same private port: endpoint-independent
// mapping gives them different public ports and keeps each one's towards
// every destination (trap 2, for TCP), and each mapping lets in SYNs for
// its own host only.
func TestTCPSamePrivatePort(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: full-cone")
	a1 := netip.AddrPortFrom(l.Addr("server", 0), port1)
	a2 := netip.AddrPortFrom(l.Addr("server", 1), port2)
	tcpServe(t, l, "server", a1)
	tcpServe(t, l, "server", a2)
	p1 := tcpSeen(t, l, "h1", a1)
	p2 := tcpSeen(t, l, "h2", a1)
	if p1 == p2 {
		t.Fatalf("both hosts got the public endpoint %v", p1)
	}
	if got := tcpSeen(t, l, "h2", a2); got != p2 {
		t.Errorf("h2 towards another server got %v, want its mapping %v", got, p2)
	}
	if got := tcpSeen(t, l, "h1", a2); got != p1 {
		t.Errorf("h1 towards another server got %v, want its mapping %v", got, p1)
	}
	for _, h := range []string{"h1", "h2"} {
		tcpServe(t, l, h, netip.AddrPortFrom(netip.IPv4Unspecified(), privatePort))
	}
	// Full cone: anyone reaches each mapping's owner, and only its owner.
	for _, c := range []struct {
		host   string
		public netip.AddrPort
	}{{"h1", p1}, {"h2", p2}} {
		line, err := tcpDial(t, l, "server", netip.AddrPortFrom(l.Addr("server", 1), 0), c.public, arrival)
		if err != nil {
			t.Errorf("a SYN to %s's mapping %v: %v", c.host, c.public, err)
			continue
		}
		if node, _ := mirrored(t, line); node != c.host {
			t.Errorf("a SYN to %s's mapping %v reached %s", c.host, c.public, node)
		}
	}
}

// TestTCPHairpinFiltering is TestHairpinFiltering over TCP: a SYN from
// inside to one of the NAT's public endpoints meets the filtering of
// that mapping, coming from the sender's public endpoint. h2 (b) connects
// from port 40000 to out:9000 and gets the mapping P; h1's ports (a, a2,
// a3) connect to out:9000 too and get theirs; each of those ports also
// listens, so a SYN that gets in is answered.
func TestTCPHairpinFiltering(t *testing.T) {
	type want struct {
		otherPort, unsolicited, toOther, afterPublic, toA3, afterA3 bool
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
			out := netip.AddrPortFrom(l.Addr("server", 0), 9000)
			tcpServe(t, l, "server", out)
			any := netip.IPv4Unspecified()
			b := netip.AddrPortFrom(any, 40000)
			a, a2, a3 := netip.AddrPortFrom(any, 41000), netip.AddrPortFrom(any, 41001), netip.AddrPortFrom(any, 41002)
			seen := func(node string, local netip.AddrPort) netip.AddrPort {
				t.Helper()
				tcpServe(t, l, node, local)
				line, err := tcpDial(t, l, node, local, out, arrival)
				if err != nil {
					t.Fatalf("%s from %v to %v: %v", node, local, out, err)
				}
				_, at := mirrored(t, line)
				return at
			}
			p := seen("h2", b)
			pa, pa2, pa3 := seen("h1", a), seen("h1", a2), seen("h1", a3)
			cone := tc.knobs != "type: symmetric"

			// check connects from node's local port to to: a connection
			// made must reach host at its mirror and come from the
			// sender's public endpoint (under symmetric NAT a new one).
			check := func(step, node string, local, to netip.AddrPort, host string, from netip.AddrPort, want bool) {
				t.Helper()
				timeout := arrival
				if !want {
					timeout = silence
				}
				line, err := tcpDial(t, l, node, local, to, timeout)
				if got := err == nil; got != want {
					t.Errorf("%s: connected=%v (%v), want %v", step, got, err, want)
					return
				}
				if !want {
					return
				}
				if at, saw := mirrored(t, line); at != host || (cone && saw != from) {
					t.Errorf("%s: reached %s from %v, want %s from the sender's public endpoint %v", step, at, saw, host, from)
				}
			}
			w := tc.want
			other := netip.AddrPortFrom(out.Addr(), 9001)
			check("out:9001 to P", "server", other, p, "h2", other, w.otherPort)
			check("a to P, unsolicited", "h1", a, p, "h2", pa, w.unsolicited)
			check("b to a2's public endpoint", "h2", b, pa2, "h1", p, w.toOther)
			// A connection that was made holds its four-tuple, at both
			// ends: a cannot connect to P again, nor a3 to P once b's
			// connection reached it, and need not, the filtering having
			// let them in already.
			if !w.unsolicited {
				check("a to P, once P has sent to the public address", "h1", a, p, "h2", pa, w.afterPublic)
			}
			check("b to a3's public endpoint", "h2", b, pa3, "h1", p, w.toA3)
			if !w.toA3 {
				check("a3 to P, once P has sent to a3's public endpoint", "h1", a3, p, "h2", pa3, w.afterA3)
			}
		})
	}
}
