package turnserver

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
)

// A TURN server on loopback with a quota of two allocations per client.
func start(t *testing.T, perClient int) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Config{UDP: c, RelayAddress: netip.MustParseAddr("127.0.0.1"), Realm: "natlab", User: "u", Password: "p", MaxPerClient: perClient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func allocate(t *testing.T, server netip.AddrPort, password string) (net.PacketConn, error) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	client, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server.String(), STUNServerAddr: server.String(),
		Username: "u", Password: password, Realm: "natlab", Conn: c, RTO: 100 * time.Millisecond,
		LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	return client.Allocate()
}

func TestQuota(t *testing.T) {
	server := start(t, 2)
	for i := 0; i < 2; i++ {
		if _, err := allocate(t, server, "p"); err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
	}
	if _, err := allocate(t, server, "p"); err == nil || !strings.Contains(err.Error(), "486") {
		t.Errorf("a third allocation from the same client: %v, want 486 Allocation Quota Reached", err)
	}
}

func TestWrongPassword(t *testing.T) {
	server := start(t, 0)
	if _, err := allocate(t, server, "wrong"); err == nil {
		t.Error("an allocation with the wrong password was granted")
	}
}

func TestConfigRequired(t *testing.T) {
	if _, err := Start(Config{RelayAddress: netip.MustParseAddr("127.0.0.1")}); err == nil {
		t.Error("a server without credentials started")
	}
}
