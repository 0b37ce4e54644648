package labtest_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/natlab/natlab/labtest"
)

// serveEcho is the program under test: a UDP server that answers every
// datagram with the address and port it came from, as STUN does.
func serveEcho(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		c.WriteToUDPAddrPort([]byte(from.String()), from)
	}
}

// testEchoThroughSymmetricNAT is the test a project writes, in its own
// _test.go file as func TestEchoThroughSymmetricNAT(t *testing.T); here
// TestExample runs it. go test -exec sudo runs it for real; without root
// it is skipped, saying why.
func testEchoThroughSymmetricNAT(t *testing.T) {
	lb := labtest.Up(t, `
nodes:
  echo:  {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  home:  {kind: nat, type: symmetric}
  alice: {kind: host, behind: home}
`)
	// Two echo servers, one on each of the server's addresses.
	var servers []netip.AddrPort
	for _, a := range lb.Node("echo").Addrs() {
		c, err := lb.Node("echo").ListenUDP("udp4", netip.AddrPortFrom(a, 3478).String())
		if err != nil {
			t.Fatal(err)
		}
		go serveEcho(c)
		servers = append(servers, netip.AddrPortFrom(a, 3478))
	}

	// One socket in alice asks both.
	c, err := lb.Node("alice").ListenUDP("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	var seen []netip.AddrPort
	for _, s := range servers {
		c.WriteToUDPAddrPort([]byte("who am I?"), s)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer from %v: %v", s, err)
		}
		seen = append(seen, netip.MustParseAddrPort(string(buf[:n])))
	}

	// Both saw the NAT's public address, and a symmetric NAT gave each
	// destination a port of its own.
	public := lb.Node("alice").PublicAddr()
	if seen[0].Addr() != public || seen[1].Addr() != public {
		t.Errorf("the servers saw %v, want %v", seen, public)
	}
	if seen[0].Port() == seen[1].Port() {
		t.Errorf("both servers saw port %d through a symmetric NAT", seen[0].Port())
	}
}

// A test brings a lab up with labtest.Up, opens sockets in its nodes and
// checks what the program under test sees through the NAT. It needs root,
// so this example has no output to check; its test function is run by
// natlab's own tests (as root) as TestExample.
func Example() {
	// In a project's _test.go file:
	//
	//	func TestEchoThroughSymmetricNAT(t *testing.T) { ... }
	//
	// with the body of testEchoThroughSymmetricNAT above.
	_ = testEchoThroughSymmetricNAT
}
