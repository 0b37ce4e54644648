package lab

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
)

func TestListeners(t *testing.T) {
	tcp := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0A7100CB:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0A7100CB:0050 0B7100CB:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 00000000:115B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: garbage
`)
	udp := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0A7100CB:0D96 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4 2 0000000000000000 0
  101: 0B7100CB:0D97 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5 2 0000000000000000 0
  102: 0A7100CB:C350 0B7100CB:0D96 01 00000000:00000000 00:00000000 00000000     0        0 6 2 0000000000000000 0
`)
	ap := netip.MustParseAddrPort
	if got, want := listeners(tcp, true), []netip.AddrPort{ap("203.0.113.10:7000"), ap("0.0.0.0:4443")}; !slices.Equal(got, want) {
		t.Errorf("tcp: %v, want %v", got, want)
	}
	if got, want := listeners(udp, false), []netip.AddrPort{ap("203.0.113.10:3478"), ap("203.0.113.11:3479")}; !slices.Equal(got, want) {
		t.Errorf("udp: %v, want %v", got, want)
	}
}

// TestListeningOfThisProcess checks Listening against sockets this
// process opens and closes.
func TestListeningOfThisProcess(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAt, tcpAt := c.LocalAddr().(*net.UDPAddr).AddrPort(), l.Addr().(*net.TCPAddr).AddrPort()
	for _, tc := range []struct {
		network string
		addr    netip.AddrPort
		want    bool
	}{
		{"udp", udpAt, true},
		{"tcp", tcpAt, true},
		{"tcp", udpAt, false},
		{"udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), udpAt.Port()), false},
	} {
		if got, err := Listening(os.Getpid(), tc.network, tc.addr); err != nil || got != tc.want {
			t.Errorf("%s %v: %v, %v; want %v", tc.network, tc.addr, got, err, tc.want)
		}
	}
	c.Close()
	l.Close()
	if got, _ := Listening(os.Getpid(), "tcp", tcpAt); got {
		t.Errorf("tcp %v listens after Close", tcpAt)
	}
}
