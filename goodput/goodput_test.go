package goodput_test

import (
	"context"
	"fmt"
	"net"
	"strings"
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
// pacing holds the rate it is given, and every datagram arrives. A
// receiver starved of the CPU (the race detector's run of every package
// at once on two cores) drops some and reads the rest late, so one
// measurement out of two may miss; a pacer or a count that is wrong
// misses both.
func TestGoodputOfAFastPathIsTheOffer(t *testing.T) {
	offer := 20e6
	// 20 Mbit/s for 0.5s of 1200-byte datagrams.
	want := int(offer / 8 / goodput.Size / 2)
	var problems []string
	for range 2 {
		out, in := pair(t)
		// Room for all of them, should the receiver fall behind.
		in.SetReadBuffer(4 << 20)
		to := in.LocalAddr().(*net.UDPAddr).AddrPort()
		res, err := goodput.Measure(context.Background(), goodput.Config{Offer: uint64(offer), For: 500 * time.Millisecond, Session: "loop"},
			func(b []byte) error { _, err := out.WriteToUDPAddrPort(b, to); return err }, in)
		if err != nil {
			t.Fatal(err)
		}
		problems = problems[:0]
		if res.Goodput < 0.9*offer || res.Goodput > 1.1*offer {
			problems = append(problems, fmt.Sprintf("goodput %s, want the offer %s ± 10%%", goodput.Mbps(res.Goodput), goodput.Mbps(offer)))
		}
		if res.Sent < want-2 || res.Sent > want+2 || res.Received < res.Sent*99/100 {
			problems = append(problems, fmt.Sprintf("%d sent, %d received; want about %d sent and all of them received", res.Sent, res.Received, want))
		}
		if len(problems) == 0 {
			return
		}
		t.Logf("measured off the offer: %s", strings.Join(problems, "; "))
	}
	t.Error(strings.Join(problems, "; "))
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
