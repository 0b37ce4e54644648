package natpmp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
)

// A client asking a gateway that never answers gives up when its context
// ends, saying so, rather than when its tries run out; and leaves the
// socket without a deadline, as it found it.
func TestClientContext(t *testing.T) {
	testutil.CheckRoutines(t)
	// Nothing answers NAT-PMP on loopback: the requests go nowhere.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := Client{Conn: c, Gateway: netip.MustParseAddr("127.0.0.1")}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled before", func() (context.Context, context.CancelFunc) { return cancelled, cancel }, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancelled while waiting", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			// Well before the first try's wait (250ms) is over.
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		ctx, cancel := tc.ctx()
		_, err := client.Map(ctx, "udp", 5000, 5000, time.Minute)
		cancel()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		// The deadline exchange set is gone: a read waits for data.
		probe := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFromUDPAddrPort(make([]byte, 16))
			probe <- err
		}()
		self := c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.WriteToUDPAddrPort([]byte("probe"), self)
		if err := <-probe; err != nil {
			t.Errorf("%s: the socket reads %v afterwards", tc.name, err)
		}
	}
	if _, err := client.ExternalAddress(cancelled); !errors.Is(err, context.Canceled) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("external address, cancelled: %v", err)
	}
}
