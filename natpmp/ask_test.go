package natpmp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// An answer queued on the socket before a request is sent belongs to an
// earlier request (one sent again and answered twice): ask must not take
// it for the answer to this one, which may be the same request with the
// same nonce, as a PCP renewal is.
func TestAskIgnoresAnswersQueuedBefore(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Skipf("no loopback UDP: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	server, client := listen(), listen()
	serverAt := server.LocalAddr().(*net.UDPAddr).AddrPort()
	clientAt := client.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := server.WriteToUDPAddrPort([]byte("old answer"), clientAt); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // queued on the client's socket
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, from, err := server.ReadFromUDPAddrPort(buf)
		if err == nil {
			_, err = server.WriteToUDPAddrPort([]byte("new answer"), from)
		}
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := ask(ctx, client, "test", serverAt, []byte("request"), func(b []byte, from netip.AddrPort) bool { return from == serverAt })
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "new answer" {
		t.Errorf("ask returned %q, want the answer to its own request", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
