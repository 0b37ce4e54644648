package lab_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/natrules"
)

// A host's own stateful firewall on real namespaces, on a host on the
// internet (vps), where it is the only wall, and on one behind a
// full-cone NAT (laptop), where it is stricter than the NAT and walls the
// LAN off too, and still after it moves behind another NAT; open and tv,
// the same without a firewall, are reached as before.
func TestHostFirewall(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  vps:    {kind: host, address: 203.0.113.20, firewall: stateful}
  open:   {kind: host, address: 203.0.113.21}
  home:   {kind: nat, type: full-cone, public: 203.0.113.1, lan: 192.168.1.0/24}
  laptop: {kind: host, behind: home, address: 192.168.1.2, firewall: stateful}
  tv:     {kind: host, behind: home, address: 192.168.1.3}
  cafe:   {kind: nat, type: full-cone, public: 203.0.113.2, lan: 192.168.2.0/24}
`)
	vpsAt, openAt := netip.MustParseAddr("203.0.113.20"), netip.MustParseAddr("203.0.113.21")
	home := netip.MustParseAddr("203.0.113.1")
	laptopAt, tvAt := netip.MustParseAddr("192.168.1.2"), netip.MustParseAddr("192.168.1.3")
	srvAt := netip.MustParseAddrPort("203.0.113.10:3478")
	srv := l.UDP("server", srvAt.String())
	srvPort := l.UDP("server", "203.0.113.10:3479")
	srvAddr := l.UDP("server", "203.0.113.11:3478")

	// Unsolicited, UDP and TCP: the firewall drops it, and counts it;
	// the host without one is reached.
	vps, open := l.UDP("vps", ":40001"), l.UDP("open", ":40001")
	before := firewallDrops(t, l, "vps")
	srv.Send(netip.AddrPortFrom(vpsAt, 40001), "knock")
	if vps.Arrives("knock", silence) {
		t.Error("an unsolicited UDP packet reached vps through its firewall")
	}
	if after := firewallDrops(t, l, "vps"); after <= before {
		t.Errorf("vps's firewall counted %d drops before the knock and %d after; want more", before, after)
	}
	srv.Send(netip.AddrPortFrom(openAt, 40001), "knock")
	if !open.Arrives("knock", arrival) {
		t.Error("an unsolicited UDP packet did not reach open, which has no firewall")
	}
	l.TCPListen("vps", ":40002")
	l.TCPListen("open", ":40002")
	if line, err := l.TCPDial("server", net.JoinHostPort(vpsAt.String(), "40002"), silence); err == nil {
		t.Errorf("TCP from the server reached vps through its firewall: %q", line)
	}
	if line, err := l.TCPDial("server", net.JoinHostPort(openAt.String(), "40002"), arrival); err != nil || line != "hello from open" {
		t.Errorf("TCP from the server to open: %q, %v; want hello from open", line, err)
	}

	// What vps asked for gets in: the reply to what it sent, from that
	// endpoint only (address-and-port-dependent filtering), and TCP it
	// started.
	vps.Send(srvAt, "hello")
	from := srv.Expect("hello", arrival)
	if from != netip.AddrPortFrom(vpsAt, 40001) {
		t.Errorf("the server saw vps as %v, want %v", from, netip.AddrPortFrom(vpsAt, 40001))
	}
	srv.Send(from, "reply")
	if !vps.Arrives("reply", arrival) {
		t.Error("the reply to vps's packet did not get through its firewall")
	}
	srvPort.Send(from, "from another port")
	if vps.Arrives("from another port", silence) {
		t.Error("a packet from another port of the server reached vps, which sent only to 3478")
	}
	srvAddr.Send(from, "from another address")
	if vps.Arrives("from another address", silence) {
		t.Error("a packet from another address of the server reached vps, which sent only to 203.0.113.10")
	}
	l.TCPListen("server", "203.0.113.10:3480")
	if line, err := l.TCPDial("vps", "203.0.113.10:3480", arrival); err != nil || line != "hello from server" {
		t.Errorf("TCP from vps to the server: %q, %v; want hello from server", line, err)
	}
	// The ICMP error about its flow gets in too: a connected socket hears
	// that the server's port is closed.
	if err := portUnreachable(l, "vps", "203.0.113.10:9"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("vps sending to a closed port of the server: %v; want the ICMP error, connection refused", err)
	}
	// Its loopback is its own.
	lo := l.UDP("vps", "127.0.0.1:40003")
	l.UDP("vps", "127.0.0.1:0").Send(netip.MustParseAddrPort("127.0.0.1:40003"), "on loopback")
	if !lo.Arrives("on loopback", arrival) {
		t.Error("a packet on vps's loopback did not arrive")
	}

	// Behind a full-cone NAT, which lets anyone in to laptop's mapping,
	// laptop's firewall lets in only the endpoint it sent to.
	laptop := l.UDP("laptop", ":40004")
	laptop.Send(srvAt, "from laptop")
	from = srv.Expect("from laptop", arrival)
	if from.Addr() != home {
		t.Fatalf("the server saw laptop as %v, want home's public address %v", from, home)
	}
	srv.Send(from, "reply")
	if !laptop.Arrives("reply", arrival) {
		t.Error("the reply to laptop's packet did not get through its firewall")
	}
	srvAddr.Send(from, "full cone")
	if laptop.Arrives("full cone", silence) {
		t.Error("the full-cone NAT let another address in, and laptop's firewall did not stop it")
	}
	tv := l.UDP("tv", ":40004")
	tv.Send(srvAt, "from tv")
	from = srv.Expect("from tv", arrival)
	srvAddr.Send(from, "full cone")
	if !tv.Arrives("full cone", arrival) {
		t.Error("the full-cone NAT did not let another address in to tv, which has no firewall")
	}

	// On the LAN: tv cannot reach laptop unasked; laptop reaches tv,
	// which may answer.
	tv.Send(netip.AddrPortFrom(laptopAt, 40004), "over the LAN")
	if laptop.Arrives("over the LAN", silence) {
		t.Error("tv reached laptop over the LAN unasked")
	}
	laptop.Send(netip.AddrPortFrom(tvAt, 40004), "hi tv")
	if from := tv.Expect("hi tv", arrival); from != netip.AddrPortFrom(laptopAt, 40004) {
		t.Errorf("tv heard laptop from %v, want %v", from, netip.AddrPortFrom(laptopAt, 40004))
	}
	tv.Send(netip.AddrPortFrom(laptopAt, 40004), "hi laptop")
	if !laptop.Arrives("hi laptop", arrival) {
		t.Error("tv's answer to laptop did not get through laptop's firewall")
	}

	// Moved behind another NAT, laptop keeps its firewall: it is the
	// host's own, and names no address.
	if _, err := lab.Move(context.Background(), l.Topo.Name, "laptop", "cafe"); err != nil {
		t.Fatal(err)
	}
	laptop.Send(srvAt, "from the cafe")
	from = srv.Expect("from the cafe", arrival)
	if from.Addr() != netip.MustParseAddr("203.0.113.2") {
		t.Fatalf("the server saw laptop, moved, as %v, want cafe's public address", from)
	}
	srv.Send(from, "reply at the cafe")
	if !laptop.Arrives("reply at the cafe", arrival) {
		t.Error("the reply to laptop, moved behind cafe, did not get through its firewall")
	}
	srvAddr.Send(from, "full cone at the cafe")
	if laptop.Arrives("full cone at the cafe", silence) {
		t.Error("moved behind cafe's full cone, laptop's firewall let another address in")
	}
}

// A host with IPv6 and a firewall works over IPv6 (neighbour discovery
// gets in) and is walled there as over IPv4.
func TestHostFirewallIPv6(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
internet6: 2001:db8::/32
nodes:
  server: {kind: server}
  vps:    {kind: host, firewall: stateful}
`)
	vps := l.UDP6("vps", "[::]:5000")
	srv := l.UDP6("server", "[::]:3478")
	srv2 := l.UDP6("server", "[::]:3479")
	srv2.Send(v6(l, "vps", 5000), "knock")
	if vps.Arrives("knock", silence) {
		t.Error("an unsolicited IPv6 packet reached vps through its firewall")
	}
	vps.Send(v6(l, "server", 3478), "hello")
	from := srv.Expect("hello", arrival)
	srv.Send(from, "reply")
	if !vps.Arrives("reply", arrival) {
		t.Error("the reply to vps's IPv6 packet did not get through its firewall")
	}
	srv2.Send(from, "other port")
	if vps.Arrives("other port", silence) {
		t.Error("a packet from another port of the server reached vps over IPv6")
	}
}

// portUnreachable sends a datagram from node to addr on a connected
// socket and returns the error reading an answer gives: ECONNREFUSED once
// the ICMP port unreachable arrives.
func portUnreachable(l *labtest.Lab, node, addr string) error {
	var got error
	l.Do(node, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("anyone there?")); err != nil {
			got = err
			return nil
		}
		c.SetReadDeadline(time.Now().Add(arrival))
		_, got = c.Read(make([]byte, 64))
		return nil
	})
	return got
}

var dropCounter = regexp.MustCompile(`counter packets (\d+) bytes \d+ log prefix "` + regexp.QuoteMeta(natrules.DropHostFirewall) + `"`)

// firewallDrops reads, with nft, an independent reader, how many packets
// the firewall of node has dropped.
func firewallDrops(t *testing.T, l *labtest.Lab, node string) uint64 {
	t.Helper()
	testutil.RequireTool(t, "nft")
	out, err := exec.Command("ip", "netns", "exec", l.Namespace(node), "nft", "list", "table", "inet", natrules.HostFirewallTable).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table in %s: %v\n%s", node, err, out)
	}
	m := dropCounter.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no drop counter in %s's firewall:\n%s", node, out)
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n
}
