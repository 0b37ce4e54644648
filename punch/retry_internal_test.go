package punch

// The punch sends again what a lossy path loses: its STUN requests and
// the pings that time the path.

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunserver"
)

// A ping that is lost is sent again: here a forwarder between the sides
// drops the first try of every ping, as a lossy link may, and the pings
// must still measure every round trip, each from the try that got through.
func TestPingsSendALostPingAgain(t *testing.T) {
	a, b, lossy := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		dropped []string
	)
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := lossy.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if msg := string(buf[:n]); strings.HasSuffix(msg, ".0") {
				mu.Lock()
				dropped = append(dropped, msg)
				mu.Unlock()
				continue
			}
			lossy.WriteToUDPAddrPort(buf[:n], localAddr(b))
		}
	})
	t.Cleanup(func() { lossy.SetReadDeadline(time.Unix(1, 0)); wg.Wait() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := withDefaults(Config{Session: "lossy"})
	rtts, err := pings(ctx, cfg, a, b, localAddr(lossy), localAddr(a))
	if err != nil {
		t.Fatalf("pings over a path that loses each first try: %v", err)
	}
	if len(rtts) != cfg.Pings {
		t.Errorf("%d round trips measured, want %d", len(rtts), cfg.Pings)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dropped) != cfg.Pings {
		t.Errorf("the forwarder dropped %q, want the first try of each of %d pings", dropped, cfg.Pings)
	}
}

// A ping that nothing answers is sent again a few times, backing off,
// until the punch's time is up; never in a burst as its time runs out.
func TestPingsBackOffUntilTheDeadline(t *testing.T) {
	a, b, sink := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	var (
		wg    sync.WaitGroup
		tries int
	)
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			tries++
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := pings(ctx, withDefaults(Config{Session: "void"}), a, b, localAddr(sink), localAddr(a))
	sink.SetReadDeadline(time.Unix(1, 0))
	wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "no pong") {
		t.Errorf("pings that nothing answers: %v", err)
	}
	// 2 s hold the tries after 0, 100, 300, 700 and 1,500 ms, and the
	// one in flight: a burst at the deadline would be hundreds.
	if tries < 3 || tries > 8 {
		t.Errorf("%d tries of a ping nothing answered within 2s, want 5 or so", tries)
	}
}

// A punch asks STUN again while its time lasts: here the first five
// requests, all that stunclient's own schedule sends, are lost on the
// way, and the sixth gets its answer.
func TestDiscoverAsksSTUNAgain(t *testing.T) {
	layout := service.STUNLayout{Addrs: [2]netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")}, Ports: [2]uint16{45610, 45611}}
	srv, err := stunserver.Listen(layout)
	if err != nil {
		t.Skipf("no loopback STUN server: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(nil) })
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	client, lossy := listenLoopback(t), listenLoopback(t)
	server := layout.At(service.STUNEndpoint{})
	dropped := 0
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := lossy.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			switch {
			case from == server:
				lossy.WriteToUDPAddrPort(buf[:n], localAddr(client))
			case dropped < 5:
				dropped++
			default:
				lossy.WriteToUDPAddrPort(buf[:n], server)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := withDefaults(Config{Session: "stun", STUN: localAddr(lossy)})
	s := newSide(cfg, Peer{Name: "alice", Conn: client}, "bob", &eventLog{start: time.Now()})
	if err := s.discover(ctx); err != nil {
		t.Fatalf("STUN with its first five requests lost: %v", err)
	}
	if !s.res.Public.IsValid() {
		t.Errorf("no public endpoint learnt: %+v", s.res)
	}
}

// listenLoopback opens a UDP socket on loopback, closed when the test ends.
func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localAddr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }
