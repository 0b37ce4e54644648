package lab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/topology"
)

// refused sends from a new connected socket in node to at, where to
// listens, and reports whether the NAT refused the flow with an ICMP host
// unreachable, which the socket reads as EHOSTUNREACH; it fails the test
// if the packet got through.
func refused(t *testing.T, l *labtest.Lab, node string, to *labtest.UDPConn, at netip.AddrPort, payload string) bool {
	t.Helper()
	c, err := l.DialContext(node)(context.Background(), "udp", at.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Linux reports a host unreachable, a soft error, only to a socket
	// that asks for ICMP errors (udp_err), as P2P stacks' sockets do.
	raw, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1) }); err != nil || serr != nil {
		t.Fatalf("IP_RECVERR: %v %v", err, serr)
	}
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(arrival))
	_, err = c.Read(make([]byte, 64))
	if to.Arrives(payload, silence) {
		t.Errorf("%q got through", payload)
	}
	return errors.Is(err, syscall.EHOSTUNREACH)
}

// A carrier-grade NAT with blocks of four ports on a range of eight has
// blocks for two subscribers: h1 (the lower address) holds 20000-20003 and
// h2 20004-20007. h1's four mappings take its four ports; a fifth is
// refused, with an ICMP host unreachable (RFC 6888 REQ-8) unless
// exhausted: drop says not, and h2's mappings still take ports of its
// own block.
func TestPortBlocks(t *testing.T) {
	for _, tc := range []struct {
		block string
		icmp  bool
	}{{"4", true}, {"{size: 4, exhausted: drop}", false}} {
		t.Run(tc.block, func(t *testing.T) {
			t.Parallel()
			l := natLab(t, "type: symmetric, port-range: 20000-20007, port-block: "+tc.block)
			s := openServers(l)
			extra := netip.AddrPortFrom(l.Addr("server", 0), 3480)
			fifth := l.UDP("server", extra.String())
			h1 := l.UDP("h1", "")
			seen := map[uint16]bool{}
			for _, to := range []*labtest.UDPConn{s.a1p1, s.a1p2, s.a2p1, s.a2p2} {
				p := s.seen(t, h1, to).Port()
				if p < 20000 || p > 20003 || seen[p] {
					t.Errorf("h1's mapping got public port %d: want each of its block's 20000-20003 once", p)
				}
				seen[p] = true
			}
			if got := refused(t, l, "h1", fifth, extra, "one too many"); got != tc.icmp {
				t.Errorf("h1's fifth flow, past its quota: ICMP host unreachable %v, want %v", got, tc.icmp)
			}
			h2 := l.UDP("h2", "")
			for _, to := range []*labtest.UDPConn{s.a1p1, s.a2p2} {
				if p := s.seen(t, h2, to).Port(); p < 20004 || p > 20007 {
					t.Errorf("h2's mapping got public port %d: want one of its block's 20004-20007", p)
				}
			}
		})
	}
}

// A freed port rests: a subscriber whose two ports' mappings expired
// (after the timeout of 1s) gets neither for the reuse delay of 3s more,
// and is refused; after it, a new mapping takes one of them again.
func TestPortBlockReuseDelay(t *testing.T) {
	l := natLab(t, "type: port-restricted-cone, timeout: 1s, port-range: 20000-20003, port-block: {size: 2, reuse-delay: 3s}")
	s := openServers(l)
	for _, to := range []*labtest.UDPConn{s.a1p1, s.a1p2} {
		h := l.UDP("h1", "")
		if p := s.seen(t, h, to).Port(); p < 20000 || p > 20001 {
			t.Fatalf("h1's mapping got public port %d: want one of its block's 20000-20001", p)
		}
	}
	last := time.Now()
	time.Sleep(time.Until(last.Add(1500 * time.Millisecond)))
	if !refused(t, l, "h1", s.a2p1, netip.AddrPortFrom(l.Addr("server", 1), port1), "while its ports rest") {
		t.Error("a flow while both of h1's ports rested got no ICMP host unreachable")
	}
	// The ports rest until 4s after the mappings' last packets.
	time.Sleep(time.Until(last.Add(4500 * time.Millisecond)))
	h := l.UDP("h1", "")
	if p := s.seen(t, h, s.a2p2).Port(); p < 20000 || p > 20001 {
		t.Errorf("after the reuse delay h1's mapping got public port %d: want one of 20000-20001", p)
	}
}

// The largest quota a file may give (topology.MaxQuota) makes the largest
// table natlab loads, some 4,300 rules and, for two subscribers, 2,048
// map elements in one transaction, which once overflowed the netlink
// socket's buffers (EMSGSIZE sending it, ENOBUFS for its
// acknowledgements, after which up hung) and a netlink attribute
// (ERANGE for the elements in one message); such a NAT comes up, and a
// subscriber's mapping takes a port of its own blocks.
func TestLargestQuota(t *testing.T) {
	t.Parallel()
	l := natLab(t, fmt.Sprintf("type: symmetric, port-block: {size: %d, blocks: 2}", topology.MaxQuota/2))
	s := openServers(l)
	sub := l.Topo.Subscribers(l.Topo.Node("nat"))
	if len(sub) == 0 || sub[0].Node.Name != "h1" {
		t.Fatalf("subscribers %+v", sub)
	}
	first, last := sub[0].Blocks[0].First, sub[0].Blocks[len(sub[0].Blocks)-1].Last
	if p := s.seen(t, l.UDP("h1", ""), s.a1p1).Port(); p < first || p > last {
		t.Errorf("h1's mapping got public port %d: want one of its blocks %v", p, sub[0].Ranges())
	}
}
