package relay

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// An answer slower than the resend interval is timed from the try it
// answers, not from the last send: a 250ms echo pinged every 100ms takes
// at least 250ms.
func TestPingUntilTimesTheTryAnswered(t *testing.T) {
	echo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("no loopback UDP: %v", err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const delay = 250 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			reply := []byte("PONG " + strings.TrimPrefix(string(buf[:n]), "PING "))
			time.AfterFunc(delay, func() { echo.WriteToUDPAddrPort(reply, from) })
		}
	}()
	defer func() { echo.Close(); <-done }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := pingUntil(ctx, c, echo.LocalAddr().(*net.UDPAddr).AddrPort(), "slow", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rtt < delay {
		t.Errorf("rtt %v through a %v echo", rtt, delay)
	}
	// The echo's timers may still fire; let them, before it closes.
	time.Sleep(2 * delay)
}
