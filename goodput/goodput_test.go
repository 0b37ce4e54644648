package goodput_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/natlab/natlab/goodput"
)

func pair(t *testing.T) (out, in *net.UDPConn) {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Skipf("no loopback: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return listen(), listen()
}

// Over loopback, which carries far more, the goodput is the offer: the
// pacing holds the rate it is given, and every datagram arrives.
func TestGoodputOfAFastPathIsTheOffer(t *testing.T) {
	out, in := pair(t)
	to := in.LocalAddr().(*net.UDPAddr).AddrPort()
	offer := 20e6
	res, err := goodput.Measure(context.Background(), goodput.Config{Offer: uint64(offer), For: 500 * time.Millisecond, Session: "loop"},
		func(b []byte) error { _, err := out.WriteToUDPAddrPort(b, to); return err }, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Goodput < 0.9*offer || res.Goodput > 1.1*offer {
		t.Errorf("goodput %s, want the offer %s ± 10%%", goodput.Mbps(res.Goodput), goodput.Mbps(offer))
	}
	// 20 Mbit/s for 0.5s of 1200-byte datagrams.
	if want := int(offer / 8 / goodput.Size / 2); res.Sent < want-2 || res.Sent > want+2 || res.Received < res.Sent*99/100 {
		t.Errorf("%d sent, %d received; want about %d sent and all of them received", res.Sent, res.Received, want)
	}
}

// A datagram that arrives twice (a link that duplicates) counts once,
// and others' datagrams on the socket not at all.
func TestGoodputCountsEachDatagramOnce(t *testing.T) {
	out, in := pair(t)
	to := in.LocalAddr().(*net.UDPAddr).AddrPort()
	res, err := goodput.Measure(context.Background(), goodput.Config{Offer: 1e6, For: 200 * time.Millisecond, Session: "dup"},
		func(b []byte) error {
			out.WriteToUDPAddrPort([]byte("NATLAB DATA other 1 "), to)
			out.WriteToUDPAddrPort(b, to)
			_, err := out.WriteToUDPAddrPort(b, to)
			return err
		}, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != res.Sent || res.Bytes != int64(res.Sent*goodput.Size) {
		t.Errorf("%d sent, %d received, %d bytes; want each counted once", res.Sent, res.Received, res.Bytes)
	}
}
