package lab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// A one-to-one NAT on real namespaces: a server on the internet reaches
// the host behind it on ports the host never used, UDP and TCP; the
// host's packets arrive with the public address and their own source
// port, below the classic NATs' port range too; and the host reaches
// itself through its public address. A host behind a full-cone NAT, in
// the same lab, cannot be reached on a port it never used: the contrast
// is what one-to-one adds.
func TestOneToOne(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  cloud:  {kind: nat, type: one-to-one, public: 203.0.113.1, lan: 192.168.1.0/24}
  vm:     {kind: host, behind: cloud}
  home:   {kind: nat, type: full-cone, public: 203.0.113.2, lan: 192.168.2.0/24}
  laptop: {kind: host, behind: home}
`)
	cloud, home := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	srvAt := netip.MustParseAddrPort("203.0.113.10:3478")
	srv := l.UDP("server", srvAt.String())
	// arrives reports whether payload reaches c, and from where, without
	// ending the test, so that each check below is made.
	arrives := func(c *labtest.UDPConn, payload string, wait time.Duration) (netip.AddrPort, bool) {
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if got, from, ok := c.Recv(time.Until(deadline)); ok && got == payload {
				return from, true
			}
		}
		return netip.AddrPort{}, false
	}

	// Unsolicited UDP, to a port nobody behind either NAT has used.
	vm := l.UDP("vm", ":40001")
	srv.Send(netip.AddrPortFrom(cloud, 40001), "to a port vm never used")
	if from, ok := arrives(vm, "to a port vm never used", arrival); !ok || from != srvAt {
		t.Errorf("a packet from the server to the one-to-one NAT's public address, port 40001: arrived=%v from %v; want it at vm from %v", ok, from, srvAt)
	}
	laptop := l.UDP("laptop", ":40001")
	srv.Send(netip.AddrPortFrom(home, 40001), "to a port laptop never used")
	if _, ok := arrives(laptop, "to a port laptop never used", silence); ok {
		t.Error("a full-cone NAT let an unsolicited packet in to a port nobody behind it had used")
	}

	// Unsolicited TCP, the same.
	l.TCPListen("vm", ":40002")
	if line, err := l.TCPDial("server", net.JoinHostPort(cloud.String(), "40002"), arrival); err != nil || line != "hello from vm" {
		t.Errorf("TCP from the server to the one-to-one NAT's public address, port 40002: %q, %v; want hello from vm", line, err)
	}
	l.TCPListen("laptop", ":40002")
	if line, err := l.TCPDial("server", net.JoinHostPort(home.String(), "40002"), silence); err == nil {
		t.Errorf("TCP from the server through the full-cone NAT to an unused port got %q", line)
	}

	// Outbound, the public address and the host's own port; 999 is
	// outside the 1024-65535 a classic NAT allocates from.
	for _, port := range []uint16{999, 41000} {
		c := l.UDP("vm", fmt.Sprintf(":%d", port))
		msg := fmt.Sprintf("from vm's port %d", port)
		c.Send(srvAt, msg)
		if from, ok := arrives(srv, msg, arrival); !ok || from != netip.AddrPortFrom(cloud, port) {
			t.Errorf("vm's UDP packet from port %d: arrived=%v from %v; want it from %v", port, ok, from, netip.AddrPortFrom(cloud, port))
		}
	}
	if from, want := tcpSource(t, l, "vm", 41001), netip.AddrPortFrom(cloud, 41001); from != want {
		t.Errorf("the server saw vm's TCP connection from %v, want %v", from, want)
	}

	// Hairpin: vm reaches itself through its public address, and its
	// packet arrives from the public address, as from outside.
	in, out := l.UDP("vm", ":40003"), l.UDP("vm", ":40004")
	out.Send(netip.AddrPortFrom(cloud, 40003), "to itself")
	if from, ok := arrives(in, "to itself", arrival); !ok || from != netip.AddrPortFrom(cloud, 40004) {
		t.Errorf("vm's packet to its own public address: arrived=%v from %v; want it from %v", ok, from, netip.AddrPortFrom(cloud, 40004))
	}

	// Rebooted, the NAT still gives vm every port; renumbered, it gives
	// vm its new address, and the old one is nobody's.
	if _, err := lab.Reboot(context.Background(), l.Topo.Name, "cloud", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	srv.Send(netip.AddrPortFrom(cloud, 40001), "after the reboot")
	if _, ok := arrives(vm, "after the reboot", arrival); !ok {
		t.Error("after cloud's reboot, an unsolicited packet to vm's port did not arrive")
	}
	renumbered := netip.MustParseAddr("203.0.113.77")
	if _, err := lab.Renumber(context.Background(), l.Topo.Name, "cloud", renumbered); err != nil {
		t.Fatal(err)
	}
	srv.Send(netip.AddrPortFrom(renumbered, 40001), "after the renumber")
	if _, ok := arrives(vm, "after the renumber", arrival); !ok {
		t.Error("after cloud's renumber, an unsolicited packet to its new address did not reach vm")
	}
	srv.Send(netip.AddrPortFrom(cloud, 40001), "to the old address")
	if _, ok := arrives(vm, "to the old address", silence); ok {
		t.Error("after cloud's renumber, a packet to its old address still reached vm")
	}

	// The full cone switched to one-to-one on the running lab (the
	// page's switch): laptop is reached on a port it never used, and
	// the record says so, so that rules and status show it.
	if _, err := lab.SwitchNAT(context.Background(), l.Topo.Name, "home", nat.OneToOne); err != nil {
		t.Fatal(err)
	}
	srv.Send(netip.AddrPortFrom(home, 40001), "after the switch")
	if _, ok := arrives(laptop, "after the switch", arrival); !ok {
		t.Error("after home's switch to one-to-one, an unsolicited packet to laptop's unused port did not arrive")
	}
	topo := recorded(t, l)
	if got := topo.Node("home").NAT.Type; got != nat.OneToOne {
		t.Errorf("the record has home as %q, want one-to-one", got)
	}
	rs, err := lab.Rules(topo, topo.Node("home"), false)
	if err != nil || !strings.Contains(rs.String(), "dnat to "+laptopAddr(topo)) {
		t.Errorf("the recorded home's rules (%v) do not send everything to laptop:\n%v", err, rs)
	}
}

// laptopAddr is laptop's address in topo.
func laptopAddr(topo *topology.Topology) string { return topo.Node("laptop").Addresses[0].String() }

// A NAT becomes one-to-one on a running lab only as a file could make
// it one: with two hosts behind it, the switch is refused and changes
// nothing.
func TestSwitchToOneToOneRefused(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: full-cone")
	_, err := lab.SwitchNAT(context.Background(), l.Topo.Name, "nat", nat.OneToOne)
	if !errors.Is(err, lab.ErrBadChange) || !strings.Contains(err.Error(), "2 nodes are behind nat") {
		t.Errorf("switching a NAT with two hosts to one-to-one: %v, want an ErrBadChange saying two nodes are behind it", err)
	}
	if got := recorded(t, l).Node("nat").NAT.Type; got != nat.FullCone {
		t.Errorf("after the refused switch the record has the NAT as %q, want full-cone", got)
	}
}

// tcpSource connects from node, bound to port, to a TCP listener of the
// server and returns the source the server saw.
func tcpSource(t *testing.T, l *labtest.Lab, node string, port int) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	l.Do("server", func() error {
		var err error
		ln, err = net.Listen("tcp4", "203.0.113.10:3479")
		return err
	})
	defer ln.Close()
	accepted := make(chan netip.AddrPort, 1)
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
		c.Close()
	}()
	l.Do(node, func() error {
		d := net.Dialer{Timeout: arrival, LocalAddr: &net.TCPAddr{Port: port}}
		c, err := d.Dial("tcp4", "203.0.113.10:3479")
		if err != nil {
			return err
		}
		return c.Close()
	})
	select {
	case from := <-accepted:
		return netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	case <-time.After(arrival):
		ln.Close()
		<-accepted
		t.Fatal("the server accepted no connection")
	}
	return netip.AddrPort{}
}
